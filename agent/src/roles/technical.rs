//! The technical analyst: scores the indicators' signals into BUY / SELL / HOLD.
//!
//! Each signal gives a score in [-1, 1] (positive = bullish):
//! - trend: MACD histogram relative to price, and the close against its EMA 20;
//! - mean reversion: RSI beyond 30/70, Bollinger %B beyond the bands, Stochastic %K beyond 20/80
//!   turning, CCI beyond ±100.
//!
//! ADX weighs the two families: a trending market (ADX ≥ 25) gives trend signals weight 2 and
//! mean-reversion ones 0.25 (fading a trend is how a rule-based trader loses most), a ranging market
//! (ADX < 20) gives trend 0.5 and mean reversion 2, in between both weigh 1. The weighted mean is the score;
//! |score| ≥ 0.15 gives BUY or SELL, anything weaker is no signal and the analyst abstains
//! (confidence 0). Confidence grows with the score's size and with the share of
//! active signals that agree with it, so a lone strong signal is less sure than a chorus.

use super::{Analyst, Judgement};
use protocol::messages::{Indicators, RoundRequest};
use protocol::{Action, Role};

/// The score beyond which the analyst takes a side.
const ACTION_THRESHOLD: f64 = 0.15;

/// Votes the ADX-weighted mean of the indicator [`signals`] (see the module): BUY or SELL at
/// |score| ≥ 0.15; abstains on a weaker score or while the indicators warm up.
#[derive(Debug, Clone, Default)]
pub struct TechnicalAnalyst;

/// The signals, each in [-1, 1], with their family weights applied; `None` until warmed up.
pub fn signals(close: f64, i: &Indicators) -> Option<[(&'static str, f64, f64); 6]> {
    let (rsi, hist, ema, upper, lower, k, d, cci, adx) = (
        i.rsi_14?,
        i.macd_hist?,
        i.ema_20?,
        i.bb_upper?,
        i.bb_lower?,
        i.stoch_k?,
        i.stoch_d?,
        i.cci_20?,
        i.adx_14?,
    );
    let (trend_weight, reversion_weight) = if adx >= 25.0 {
        (2.0, 0.25)
    } else if adx < 20.0 {
        (0.5, 2.0)
    } else {
        (1.0, 1.0)
    };
    let macd = (hist / (0.002 * close)).clamp(-1.0, 1.0);
    let ema_trend = ((close / ema - 1.0) / 0.02).clamp(-1.0, 1.0);
    let rsi_signal = if rsi < 30.0 {
        ((30.0 - rsi) / 15.0 + 0.5).min(1.0)
    } else if rsi > 70.0 {
        -((rsi - 70.0) / 15.0 + 0.5).min(1.0)
    } else {
        0.0
    };
    let width = upper - lower;
    let percent_b = if width > 0.0 {
        (close - lower) / width
    } else {
        0.5
    };
    let bollinger = if percent_b < 0.0 {
        (0.5 - percent_b * 2.0).min(1.0)
    } else if percent_b > 1.0 {
        -(0.5 + (percent_b - 1.0) * 2.0).min(1.0)
    } else {
        0.0
    };
    let stochastic = if k < 20.0 && k > d {
        0.6
    } else if k > 80.0 && k < d {
        -0.6
    } else {
        0.0
    };
    let cci_signal = if cci < -100.0 {
        ((-100.0 - cci) / 100.0 + 0.5).min(1.0)
    } else if cci > 100.0 {
        -((cci - 100.0) / 100.0 + 0.5).min(1.0)
    } else {
        0.0
    };
    Some([
        ("macd", macd, trend_weight),
        ("ema_trend", ema_trend, trend_weight),
        ("rsi", rsi_signal, reversion_weight),
        ("bollinger", bollinger, reversion_weight),
        ("stochastic", stochastic, reversion_weight),
        ("cci", cci_signal, reversion_weight),
    ])
}

impl Analyst for TechnicalAnalyst {
    fn role(&self) -> Role {
        Role::TechnicalAnalyst
    }

    fn analyze(&self, request: &RoundRequest) -> Judgement {
        let snapshot = &request.snapshot;
        let Some(signals) = signals(snapshot.close, &snapshot.indicators) else {
            return Judgement::abstain("indicators are still warming up");
        };
        let total_weight: f64 = signals.iter().map(|(_, _, w)| w).sum();
        let score = signals.iter().map(|(_, s, w)| s * w).sum::<f64>() / total_weight;
        let active = signals.iter().filter(|(_, s, _)| *s != 0.0).count();
        let agreeing = signals
            .iter()
            .filter(|(_, s, _)| *s != 0.0 && s.signum() == score.signum())
            .count();
        let agreement = if active == 0 {
            0.0
        } else {
            agreeing as f64 / active as f64
        };
        let (action, confidence) = if score >= ACTION_THRESHOLD {
            (Action::Buy, 0.4 + 0.6 * (score / 0.6).min(1.0) * agreement)
        } else if score <= -ACTION_THRESHOLD {
            (
                Action::Sell,
                0.4 + 0.6 * (-score / 0.6).min(1.0) * agreement,
            )
        } else {
            // no signal is no evidence: abstain rather than vote for standing still
            (Action::Hold, 0.0)
        };
        let strongest = signals
            .iter()
            .max_by(|a, b| (a.1 * a.2).abs().total_cmp(&(b.1 * b.2).abs()))
            .map_or("none", |s| s.0);
        let i = &snapshot.indicators;
        let mut judgement = Judgement::new(
            action,
            confidence,
            format!(
                "score {score:+.2} from {active} active signals ({agreeing} agree), strongest {strongest}; RSI {:.1}, ADX {:.1}",
                i.rsi_14.unwrap_or_default(),
                i.adx_14.unwrap_or_default()
            ),
        )
        .with("score", score);
        for (name, signal, _) in signals {
            judgement = judgement.with(name, signal);
        }
        judgement
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::testing::request;
    use protocol::messages::PortfolioContext;

    fn indicators(rsi: f64, hist: f64, ema: f64, k: f64, d: f64, cci: f64, adx: f64) -> Indicators {
        Indicators {
            rsi_14: Some(rsi),
            macd_hist: Some(hist),
            ema_20: Some(ema),
            bb_upper: Some(110.0),
            bb_lower: Some(90.0),
            stoch_k: Some(k),
            stoch_d: Some(d),
            cci_20: Some(cci),
            adx_14: Some(adx),
            ..Indicators::default()
        }
    }

    fn judge(close: f64, i: Indicators) -> Judgement {
        TechnicalAnalyst.analyze(&request(close, i, PortfolioContext::default()))
    }

    #[test]
    fn oversold_in_a_range_is_a_buy() {
        let j = judge(89.0, indicators(22.0, 0.0, 95.0, 12.0, 9.0, -180.0, 15.0));
        assert_eq!(j.action, Action::Buy, "{}", j.reasoning);
        assert!(j.confidence > 0.6, "{}", j.confidence);
        assert!(j.evidence["rsi"] > 0.0 && j.evidence["bollinger"] > 0.0);
    }

    #[test]
    fn a_strong_downtrend_is_a_sell() {
        let j = judge(95.0, indicators(40.0, -0.5, 99.0, 40.0, 45.0, -50.0, 35.0));
        assert_eq!(j.action, Action::Sell, "{}", j.reasoning);
    }

    #[test]
    fn no_signal_and_warm_up_abstain() {
        let j = judge(100.0, indicators(50.0, 0.0, 100.0, 50.0, 50.0, 0.0, 22.0));
        assert_eq!((j.action, j.confidence), (Action::Hold, 0.0));
        let warm = judge(100.0, Indicators::default());
        assert_eq!((warm.action, warm.confidence), (Action::Hold, 0.0));
    }

    #[test]
    fn agreement_raises_confidence() {
        let lone = judge(100.0, indicators(15.0, 0.0, 100.0, 50.0, 50.0, 0.0, 22.0));
        let chorus = judge(89.0, indicators(15.0, 0.0, 89.0, 10.0, 5.0, -250.0, 22.0));
        assert_eq!(chorus.action, Action::Buy);
        assert!(chorus.confidence > lone.confidence);
    }
}
