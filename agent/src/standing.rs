//! The portfolio's standing against its risk limits: drawdown from the recent equity peak and the
//! loss of the current UTC day. The coordinator feeds it equity samples and puts its readings in every
//! snapshot's [`PortfolioContext`](protocol::messages::PortfolioContext).
//!
//! The peak is the highest equity of the last [`PEAK_WINDOW_MS`] (30 days): a drawdown breach stops
//! new entries until the portfolio recovers or the old peak leaves the window, a cool-down rather than
//! a permanent lock (a permanent stop is what `spec.paused` is for).

use std::collections::VecDeque;

/// How far back the drawdown's peak is taken.
pub const PEAK_WINDOW_MS: i64 = 30 * DAY_MS;
const DAY_MS: i64 = 86_400_000;

/// Drawdown and daily loss from the equity samples recorded so far.
#[derive(Debug, Clone, Default)]
pub struct Standing {
    /// (time, equity), equities strictly decreasing from front to back: the front is the window's peak.
    peaks: VecDeque<(i64, f64)>,
    day: Option<i64>,
    day_start: f64,
}

impl Standing {
    /// No sample yet: drawdown and daily loss read 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the equity at time `t` (ms); times must not go backwards.
    pub fn record(&mut self, t: i64, equity: f64) {
        let day = t.div_euclid(DAY_MS);
        if self.day != Some(day) {
            self.day = Some(day);
            self.day_start = equity;
        }
        while self.peaks.back().is_some_and(|&(_, e)| e <= equity) {
            self.peaks.pop_back();
        }
        self.peaks.push_back((t, equity));
        while self
            .peaks
            .front()
            .is_some_and(|&(at, _)| t - at > PEAK_WINDOW_MS)
        {
            self.peaks.pop_front();
        }
    }

    /// Drawdown of `equity` from the window's peak, as a fraction.
    pub fn drawdown(&self, equity: f64) -> f64 {
        match self.peaks.front() {
            Some(&(_, peak)) if peak > 0.0 => (1.0 - equity / peak).max(0.0),
            _ => 0.0,
        }
    }

    /// Today's loss of `equity` against the day's opening equity, as a fraction (0 when up).
    pub fn daily_loss(&self, equity: f64) -> f64 {
        if self.day_start > 0.0 {
            (1.0 - equity / self.day_start).max(0.0)
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawdown_is_from_the_recent_peak_and_cools_down() {
        let mut s = Standing::new();
        s.record(0, 100.0);
        s.record(DAY_MS, 80.0);
        assert!((s.drawdown(80.0) - 0.2).abs() < 1e-12);
        // 31 days later the peak of day 0 has left the window
        s.record(31 * DAY_MS, 80.0);
        assert_eq!(s.drawdown(80.0), 0.0);
        s.record(32 * DAY_MS, 120.0);
        assert!((s.drawdown(90.0) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn daily_loss_resets_each_utc_day() {
        let mut s = Standing::new();
        s.record(0, 100.0);
        s.record(3_600_000, 95.0);
        assert!((s.daily_loss(95.0) - 0.05).abs() < 1e-12);
        assert_eq!(s.daily_loss(101.0), 0.0);
        s.record(DAY_MS, 95.0);
        assert_eq!(s.daily_loss(95.0), 0.0);
    }
}
