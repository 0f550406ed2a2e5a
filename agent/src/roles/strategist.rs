//! The strategist: the team's slow view, time-series momentum over a week, a month and a quarter,
//! optionally nudged by the ML ensemble's forecast.
//!
//! The trend score is the mean sign of the three momenta (`momentum168/720/2160`): ±1/3 or ±1
//! when none is exactly flat, which on real prices it almost never is:
//! - above [`ENTRY_SCORE`]: more horizons up than down (two or three of three), BUY (hold a
//!   position);
//! - below −[`ENTRY_SCORE`]: more down than up, SELL (be flat);
//! - otherwise (as many up as down, the rest flat): HOLD, keep what is held.
//!
//! The executor's minimum hold keeps a majority that changes back and forth from flipping the
//! position every hour.
//!
//! Until a quarter of candles has been seen the strategist abstains (confidence 0: out of the
//! tally). Confidence grows with the month's momentum measured in units of its volatility. When a
//! [`Forecaster`] is loaded and agrees with the trend the confidence rises by up to 0.1, and falls
//! by as much when it disagrees; the model never reverses the trend's side.
//! Chosen on BTCUSDT/ETHUSDT 2017–2020 hourly candles (docs/architecture.md, "How the team decides").

use super::{Analyst, Judgement};
use protocol::messages::{MarketSnapshot, RoundRequest};
use protocol::{Action, Role};
use std::sync::Arc;

/// The trend score a side needs: more of the three horizons for it than against (2 of 3, score
/// 1/3, when none is flat). Entering
/// on every horizon (score 1) waited for the quarter's momentum, which turns up only months into a new
/// bull market. Chosen walk-forward on BTCUSDT/ETHUSDT 2018–2020 hourly candles, quarterly and
/// yearly windows (docs/architecture.md, "How the team decides"); the 2021, BNB and ADA files were
/// only scored.
pub const ENTRY_SCORE: f64 = 0.3;

/// A model's view of the next candles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    /// Probability that the price rises over the model's horizon.
    pub probability_up: f64,
}

/// Anything that forecasts from a snapshot (the ML ensemble).
pub trait Forecaster: Send + Sync {
    /// The model's view after `snapshot`; `None` when it has none (e.g. no model trained yet, or
    /// features not warmed up).
    fn forecast(&self, snapshot: &MarketSnapshot) -> Option<Forecast>;
}

/// Votes the trend over a week, a month and a quarter (see the module), its confidence nudged by
/// the forecaster when one is loaded.
#[derive(Clone, Default)]
pub struct Strategist {
    /// The ML model that moves a BUY's or SELL's confidence by 0.2 × (p_up − 0.5) toward or away
    /// from that side (never the side itself); `None` reads the trend alone.
    pub forecaster: Option<Arc<dyn Forecaster>>,
}

impl std::fmt::Debug for Strategist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Strategist")
            .field("forecaster", &self.forecaster.is_some())
            .finish()
    }
}

/// The trend over the three horizons: the mean sign of their momenta in [-1, 1], and the month's
/// momentum over its expected size (volatility × √(720 hourly candles of a year)).
/// `None` until every horizon has been seen.
pub fn trend(s: &MarketSnapshot) -> Option<(f64, f64)> {
    let i = &s.indicators;
    let momenta = [i.momentum_168?, i.momentum_720?, i.momentum_2160?];
    let score = momenta.iter().map(|m| sign(*m)).sum::<f64>() / 3.0;
    let expected = i.volatility.map_or(0.0, |v| v * (720.0f64 / 8766.0).sqrt());
    let strength = if expected > 0.0 {
        momenta[1] / expected
    } else {
        0.0
    };
    Some((score, strength))
}

fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

impl Analyst for Strategist {
    fn role(&self) -> Role {
        Role::Strategist
    }

    fn analyze(&self, request: &RoundRequest) -> Judgement {
        let s = &request.snapshot;
        let Some((score, strength)) = trend(s) else {
            return Judgement::abstain("not a quarter of candles yet: no trend to read");
        };
        let forecast = self.forecaster.as_ref().and_then(|f| f.forecast(s));
        let conviction = 0.5 + 0.3 * (strength.abs() / 2.0).min(1.0);
        let (action, side) = if score > ENTRY_SCORE {
            (Action::Buy, 1.0)
        } else if score < -ENTRY_SCORE {
            (Action::Sell, -1.0)
        } else {
            (Action::Hold, 0.0)
        };
        let nudge = forecast.map_or(0.0, |f| 0.2 * (f.probability_up - 0.5) * side);
        let confidence = if action == Action::Hold {
            0.5
        } else {
            conviction + nudge
        };
        let model = forecast.map_or("no model loaded".to_string(), |f| {
            format!("model: {:.0}% chance of a rise", f.probability_up * 100.0)
        });
        let i = &s.indicators;
        let mut judgement = Judgement::new(
            action,
            confidence,
            format!(
                "trend {score:+.2} (week {:+.1}%, month {:+.1}%, quarter {:+.1}%); {model}",
                i.momentum_168.unwrap_or_default() * 100.0,
                i.momentum_720.unwrap_or_default() * 100.0,
                i.momentum_2160.unwrap_or_default() * 100.0,
            ),
        )
        .with("trend_score", score)
        .with("trend_strength", strength);
        if let Some(f) = forecast {
            judgement = judgement.with("probability_up", f.probability_up);
        }
        judgement
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::testing::request;
    use protocol::messages::Indicators;

    fn momenta(week: f64, month: f64, quarter: f64) -> Indicators {
        Indicators {
            momentum_168: Some(week),
            momentum_720: Some(month),
            momentum_2160: Some(quarter),
            volatility: Some(0.6),
            ..Default::default()
        }
    }

    struct Bearish;
    impl Forecaster for Bearish {
        fn forecast(&self, _: &MarketSnapshot) -> Option<Forecast> {
            Some(Forecast {
                probability_up: 0.1,
            })
        }
    }

    fn judge(s: &Strategist, i: Indicators) -> Judgement {
        s.analyze(&request(100.0, i, Default::default()))
    }

    #[test]
    fn follows_the_majority_of_the_horizons_holds_without_one() {
        let s = Strategist::default();
        assert_eq!(judge(&s, momenta(0.02, 0.1, 0.3)).action, Action::Buy);
        assert_eq!(judge(&s, momenta(0.02, 0.1, -0.3)).action, Action::Buy);
        assert_eq!(judge(&s, momenta(-0.02, -0.1, 0.3)).action, Action::Sell);
        let split = judge(&s, momenta(0.0, 0.1, -0.3));
        assert_eq!((split.action, split.confidence), (Action::Hold, 0.5));
    }

    #[test]
    fn abstains_without_a_quarter_of_history() {
        let j = judge(
            &Strategist::default(),
            Indicators {
                momentum_168: Some(0.1),
                momentum_720: Some(0.1),
                ..Default::default()
            },
        );
        assert_eq!((j.action, j.confidence), (Action::Hold, 0.0));
    }

    #[test]
    fn a_forecast_moves_confidence_never_the_side() {
        let plain = judge(&Strategist::default(), momenta(0.02, 0.1, 0.3));
        let with_model = judge(
            &Strategist {
                forecaster: Some(Arc::new(Bearish)),
            },
            momenta(0.02, 0.1, 0.3),
        );
        assert_eq!(with_model.action, Action::Buy);
        assert!(with_model.confidence < plain.confidence);
        assert_eq!(with_model.evidence["probability_up"], 0.1);
    }
}
