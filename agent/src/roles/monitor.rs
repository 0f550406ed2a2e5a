//! The market monitor: reads momentum and volume, and raises the ALERT that starts a cycle.
//!
//! Its opinion follows the 12-candle return, scaled by the alert threshold (a move of twice the
//! threshold is full conviction), and is surer when volume is unusually high; a move under half the
//! threshold is no evidence and the monitor abstains.
//! [`AlertDetector`] (the seed's rule: a move of `alertThreshold` within `alertWindowMinutes`, or
//! volume `volumeAnomalyZ` standard deviations above its mean) runs on the monitor's own candle stream.

use super::{Analyst, Judgement, ParamError, Params};
use crate::market::Candle;
use protocol::messages::RoundRequest;
use protocol::{Action, Role};
use std::collections::VecDeque;

/// Votes the 12-candle return: BUY or SELL once it reaches half the alert threshold (full conviction
/// at twice it), surer on unusual volume; abstains on a smaller move or before 12 candles.
#[derive(Debug, Clone)]
pub struct MarketMonitor {
    /// A price move (fraction) the monitor calls significant: `params.alertThreshold`, default 0.03.
    pub alert_threshold: f64,
}

impl Default for MarketMonitor {
    fn default() -> Self {
        Self {
            alert_threshold: 0.03,
        }
    }
}

impl MarketMonitor {
    /// Reads `params.alertThreshold` (default 0.03); an error unless it is a positive number.
    pub fn from_params(params: &Params) -> Result<Self, ParamError> {
        let alert_threshold = params.number("alertThreshold", 0.03)?;
        if alert_threshold <= 0.0 {
            return Err(ParamError {
                name: "alertThreshold".into(),
                value: alert_threshold.to_string(),
                expected: "a positive fraction",
            });
        }
        Ok(Self { alert_threshold })
    }
}

impl Analyst for MarketMonitor {
    fn role(&self) -> Role {
        Role::MarketMonitor
    }

    fn analyze(&self, request: &RoundRequest) -> Judgement {
        let i = &request.snapshot.indicators;
        let Some(change) = i.return_12 else {
            return Judgement::abstain("not enough candles for momentum yet");
        };
        let volume = i.volume_ratio_20.unwrap_or(1.0);
        let momentum = (change / (2.0 * self.alert_threshold)).clamp(-1.0, 1.0);
        let volume_boost = ((volume - 1.0) / 4.0).clamp(0.0, 0.25);
        let (action, confidence) = if momentum >= 0.25 {
            (Action::Buy, 0.3 + 0.5 * momentum + volume_boost)
        } else if momentum <= -0.25 {
            (Action::Sell, 0.3 - 0.5 * momentum + volume_boost)
        } else {
            // a small move is no evidence either way
            (Action::Hold, 0.0)
        };
        Judgement::new(
            action,
            confidence,
            format!(
                "price {:+.2}% over 12 candles, volume {volume:.1}× its average",
                change * 100.0
            ),
        )
        .with("return_12", change)
        .with("volume_ratio", volume)
        .with("momentum", momentum)
    }
}

/// Detects the moves that start a cycle outside the schedule.
#[derive(Debug, Clone)]
pub struct AlertDetector {
    threshold: f64,
    window_ms: i64,
    volume_z: f64,
    recent: VecDeque<(i64, f64)>,
    volumes: VecDeque<f64>,
}

/// Why the monitor raised an alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Alert {
    /// The price moved by at least `alertThreshold` within the window.
    PriceMove {
        /// The close over the open of the window's earliest candle, minus 1 (a signed fraction).
        change: f64,
        /// The window the move happened in (`alertWindowMinutes`), in ms.
        window_ms: i64,
    },
    /// A candle's volume stood at least `volumeAnomalyZ` standard deviations above its mean over
    /// the last 50 candles (judged once 20 have been seen).
    VolumeAnomaly {
        /// The candle volume's z-score against that history.
        z: f64,
    },
}

/// Candles of volume history the anomaly test looks at.
const VOLUME_HISTORY: usize = 50;

impl AlertDetector {
    /// From `alertThreshold` (0.03), `alertWindowMinutes` (15) and `volumeAnomalyZ` (3).
    pub fn from_params(params: &Params) -> Result<Self, ParamError> {
        Ok(Self {
            threshold: params.number("alertThreshold", 0.03)?,
            window_ms: (params.number("alertWindowMinutes", 15.0)? * 60_000.0) as i64,
            volume_z: params.number("volumeAnomalyZ", 3.0)?,
            recent: VecDeque::new(),
            volumes: VecDeque::with_capacity(VOLUME_HISTORY + 1),
        })
    }

    /// Feeds a closed candle; returns the alert it raises, if any.
    pub fn update(&mut self, candle: &Candle) -> Option<Alert> {
        let close_time = candle.open_time;
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| close_time - t > self.window_ms)
        {
            self.recent.pop_front();
        }
        // the reference is the open of the earliest candle still in the window
        let reference = self.recent.front().map_or(candle.open, |&(_, open)| open);
        self.recent.push_back((candle.open_time, candle.open));
        let z = self.volume_z_score(candle.volume);
        let change = candle.close / reference - 1.0;
        if change.abs() >= self.threshold {
            self.recent.clear();
            return Some(Alert::PriceMove {
                change,
                window_ms: self.window_ms,
            });
        }
        z.filter(|z| *z >= self.volume_z)
            .map(|z| Alert::VolumeAnomaly { z })
    }

    fn volume_z_score(&mut self, volume: f64) -> Option<f64> {
        let z = (self.volumes.len() >= 20).then(|| {
            let n = self.volumes.len() as f64;
            let mean = self.volumes.iter().sum::<f64>() / n;
            let var = self.volumes.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            if var > 0.0 {
                (volume - mean) / var.sqrt()
            } else {
                0.0
            }
        });
        self.volumes.push_back(volume);
        if self.volumes.len() > VOLUME_HISTORY {
            self.volumes.pop_front();
        }
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::testing::request;
    use protocol::messages::{Indicators, PortfolioContext};

    fn candle(minute: i64, open: f64, close: f64, volume: f64) -> Candle {
        Candle {
            open_time: minute * 60_000,
            open,
            high: open.max(close),
            low: open.min(close),
            close,
            volume,
        }
    }

    #[test]
    fn momentum_and_volume_shape_the_opinion() {
        let monitor = MarketMonitor::default();
        let i = |r: f64, v: f64| Indicators {
            return_12: Some(r),
            volume_ratio_20: Some(v),
            ..Default::default()
        };
        let up = monitor.analyze(&request(100.0, i(0.05, 1.0), PortfolioContext::default()));
        let loud = monitor.analyze(&request(100.0, i(0.05, 3.0), PortfolioContext::default()));
        let down = monitor.analyze(&request(100.0, i(-0.04, 1.0), PortfolioContext::default()));
        let calm = monitor.analyze(&request(100.0, i(0.001, 1.0), PortfolioContext::default()));
        assert_eq!(
            (up.action, down.action, calm.action),
            (Action::Buy, Action::Sell, Action::Hold)
        );
        assert!(loud.confidence > up.confidence);
    }

    #[test]
    fn a_three_percent_move_within_fifteen_minutes_alerts() {
        let mut detector = AlertDetector::from_params(&Params::default()).unwrap();
        let mut alerts = vec![];
        let mut price = 100.0;
        for minute in 0..30 {
            let next = if (10..14).contains(&minute) {
                price * 1.008
            } else {
                price
            };
            alerts.push(detector.update(&candle(minute, price, next, 1.0)));
            price = next;
        }
        let raised: Vec<_> = alerts
            .iter()
            .enumerate()
            .filter(|(_, a)| a.is_some())
            .collect();
        assert_eq!(raised.len(), 1, "{alerts:?}");
        assert_eq!(raised[0].0, 13); // 1.008^4 − 1 ≥ 3% at the fourth rising minute
    }

    #[test]
    fn a_volume_spike_alerts() {
        let mut detector = AlertDetector::from_params(&Params::default()).unwrap();
        for minute in 0..30 {
            let volume = 10.0 + (minute % 3) as f64;
            assert_eq!(detector.update(&candle(minute, 100.0, 100.0, volume)), None);
        }
        assert!(matches!(
            detector.update(&candle(30, 100.0, 100.0, 60.0)),
            Some(Alert::VolumeAnomaly { z }) if z > 3.0
        ));
    }

    #[test]
    fn bad_params_are_named() {
        let params = Params([("alertThreshold".to_string(), "lots".to_string())].into());
        let error = MarketMonitor::from_params(&params).unwrap_err();
        assert_eq!(
            error.to_string(),
            "params.alertThreshold: \"lots\" is not a finite number"
        );
    }
}
