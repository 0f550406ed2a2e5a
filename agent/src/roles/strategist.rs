//! The strategist: reads the market regime and combines it with the ML ensemble's forecast.
//!
//! Regime, from ADX and the Bollinger width:
//! - volatile (band width ≥ 12% of price): stand aside (HOLD);
//! - trending (ADX ≥ 25): follow the trend (sign of the MACD histogram and of close − EMA 20);
//! - ranging (ADX < 25): fade the extremes (Bollinger %B below 0.2 buys, above 0.8 sells).
//!
//! When a [`Forecaster`] is loaded, its probability of a rise `p` adds `2 × (p − 0.5)` to the
//! regime's score with equal weight; without one the regime decides alone.

use super::{Analyst, Judgement};
use protocol::messages::{MarketSnapshot, RoundRequest};
use protocol::{Action, Role};
use std::sync::Arc;

/// A model's view of the next candles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    /// Probability that the price rises over the model's horizon.
    pub probability_up: f64,
}

/// Anything that forecasts from a snapshot (the ML ensemble).
pub trait Forecaster: Send + Sync {
    fn forecast(&self, snapshot: &MarketSnapshot) -> Option<Forecast>;
}

/// The market regime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regime {
    Volatile,
    Trending,
    Ranging,
}

#[derive(Clone, Default)]
pub struct Strategist {
    pub forecaster: Option<Arc<dyn Forecaster>>,
}

impl std::fmt::Debug for Strategist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Strategist")
            .field("forecaster", &self.forecaster.is_some())
            .finish()
    }
}

/// The regime and its score in [-1, 1], `None` until the indicators are warm.
pub fn regime(s: &MarketSnapshot) -> Option<(Regime, f64)> {
    let i = &s.indicators;
    let (adx, upper, lower, middle, hist, ema) = (
        i.adx_14?,
        i.bb_upper?,
        i.bb_lower?,
        i.bb_middle?,
        i.macd_hist?,
        i.ema_20?,
    );
    let width = (upper - lower) / middle;
    if width >= 0.12 {
        return Some((Regime::Volatile, 0.0));
    }
    if adx >= 25.0 {
        let direction = (hist.signum() + (s.close - ema).signum()) / 2.0;
        return Some((Regime::Trending, direction * (adx / 50.0).min(1.0)));
    }
    let percent_b = if upper > lower {
        (s.close - lower) / (upper - lower)
    } else {
        0.5
    };
    let score = if percent_b < 0.2 {
        (0.2 - percent_b) / 0.2
    } else if percent_b > 0.8 {
        -(percent_b - 0.8) / 0.2
    } else {
        0.0
    };
    Some((Regime::Ranging, score.clamp(-1.0, 1.0)))
}

impl Analyst for Strategist {
    fn role(&self) -> Role {
        Role::Strategist
    }

    fn analyze(&self, request: &RoundRequest) -> Judgement {
        let s = &request.snapshot;
        let Some((regime, regime_score)) = regime(s) else {
            return Judgement::new(Action::Hold, 0.1, "indicators are still warming up");
        };
        if regime == Regime::Volatile {
            return Judgement::new(
                Action::Hold,
                0.6,
                "volatile regime (wide bands): standing aside",
            )
            .with("regime_score", 0.0);
        }
        let forecast = self.forecaster.as_ref().and_then(|f| f.forecast(s));
        let score = match forecast {
            Some(f) => (regime_score + 2.0 * (f.probability_up - 0.5)) / 2.0,
            None => regime_score,
        };
        let (action, confidence) = if score >= 0.2 {
            (Action::Buy, 0.3 + 0.6 * score.min(1.0))
        } else if score <= -0.2 {
            (Action::Sell, 0.3 + 0.6 * (-score).min(1.0))
        } else {
            (Action::Hold, 0.4)
        };
        let model = forecast.map_or("no model loaded".to_string(), |f| {
            format!("model: {:.0}% chance of a rise", f.probability_up * 100.0)
        });
        let mut judgement = Judgement::new(
            action,
            confidence,
            format!("{regime:?} regime, score {score:+.2}; {model}"),
        )
        .with("regime_score", regime_score)
        .with("score", score);
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

    fn indicators(adx: f64, upper: f64, lower: f64, hist: f64, ema: f64) -> Indicators {
        Indicators {
            adx_14: Some(adx),
            bb_upper: Some(upper),
            bb_lower: Some(lower),
            bb_middle: Some((upper + lower) / 2.0),
            macd_hist: Some(hist),
            ema_20: Some(ema),
            ..Default::default()
        }
    }

    struct Bullish;
    impl Forecaster for Bullish {
        fn forecast(&self, _: &MarketSnapshot) -> Option<Forecast> {
            Some(Forecast {
                probability_up: 0.9,
            })
        }
    }

    #[test]
    fn follows_trends_fades_ranges_and_avoids_chaos() {
        let s = Strategist::default();
        let trend = s.analyze(&request(
            104.0,
            indicators(40.0, 105.0, 95.0, 0.5, 101.0),
            Default::default(),
        ));
        assert_eq!(trend.action, Action::Buy, "{}", trend.reasoning);
        let range = s.analyze(&request(
            104.8,
            indicators(15.0, 105.0, 95.0, 0.5, 101.0),
            Default::default(),
        ));
        assert_eq!(range.action, Action::Sell, "{}", range.reasoning);
        let chaos = s.analyze(&request(
            100.0,
            indicators(40.0, 110.0, 90.0, 0.5, 99.0),
            Default::default(),
        ));
        assert_eq!(chaos.action, Action::Hold);
        assert!(chaos.reasoning.contains("volatile"), "{}", chaos.reasoning);
    }

    #[test]
    fn a_forecast_tips_a_neutral_range() {
        let r = request(
            100.0,
            indicators(15.0, 105.0, 95.0, 0.0, 100.0),
            Default::default(),
        );
        assert_eq!(Strategist::default().analyze(&r).action, Action::Hold);
        let with_model = Strategist {
            forecaster: Some(Arc::new(Bullish)),
        };
        let j = with_model.analyze(&r);
        assert_eq!(j.action, Action::Buy, "{}", j.reasoning);
        assert_eq!(j.evidence["probability_up"], 0.9);
    }
}
