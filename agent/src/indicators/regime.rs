//! The slow view of a market: time-series momentum over three horizons and realised volatility.
//!
//! - [`Momentum`]: the return over the last 168, 720 and 2,160 candles (a week, a month and a
//!   quarter of hourly candles), each `None` until that much history has been seen. Time-series
//!   momentum over several horizons is the best documented trend signal in futures and crypto; the
//!   team's regime view rests on it (docs/architecture.md, "How the team decides").
//! - [`RealisedVolatility`]: an exponentially weighted standard deviation of log returns (half-life
//!   168 candles), annualised from the spacing of the candles' open times, so that one volatility
//!   target means the same on minute and on hourly candles. `None` for the first 24 returns.

use super::window::Window;

/// The momentum horizons, in candles.
pub const HORIZONS: [usize; 3] = [168, 720, 2160];

/// Returns over [`HORIZONS`].
#[derive(Debug, Clone)]
pub struct Momentum {
    closes: Window,
}

impl Default for Momentum {
    fn default() -> Self {
        Self::new()
    }
}

impl Momentum {
    /// No closes yet: every horizon `None`.
    pub fn new() -> Self {
        Self {
            closes: Window::new(HORIZONS[2] + 1),
        }
    }

    /// Feeds a close; returns the momentum over each horizon.
    #[inline]
    pub fn update(&mut self, close: f64) -> [Option<f64>; 3] {
        self.closes.push(close);
        HORIZONS.map(|h| {
            self.closes
                .ago(h)
                .filter(|p| *p > 0.0)
                .map(|p| close / p - 1.0)
        })
    }
}

/// The weight of the newest squared return, `1 − 0.5^(1 / 168)`: a half-life of 168 candles
/// (a constant, so no `powf` per candle).
const ALPHA: f64 = 0.004117376341702617;
/// Returns seen before the estimate is given.
const WARM_UP: u32 = 24;
const YEAR_MS: f64 = 365.25 * 86_400_000.0;

/// Annualised realised volatility.
#[derive(Debug, Clone, Default)]
pub struct RealisedVolatility {
    previous: Option<(i64, f64)>,
    variance: f64,
    seen: u32,
    spacing_ms: Option<i64>,
}

impl RealisedVolatility {
    /// Feeds a candle's open time and close; returns the annualised volatility once warm.
    #[inline]
    pub fn update(&mut self, open_time: i64, close: f64) -> Option<f64> {
        let previous = self.previous.replace((open_time, close));
        let (at, before) = previous?;
        if before <= 0.0 || close <= 0.0 || open_time <= at {
            return self.annualised();
        }
        // the first gap sets the spacing: a later gap in the data is not a longer candle
        let spacing = *self.spacing_ms.get_or_insert(open_time - at);
        let r = (close / before).ln();
        self.variance = if self.seen == 0 {
            r * r
        } else {
            (1.0 - ALPHA) * self.variance + ALPHA * r * r
        };
        self.seen += 1;
        self.spacing_ms = Some(spacing);
        self.annualised()
    }

    fn annualised(&self) -> Option<f64> {
        let spacing = self.spacing_ms? as f64;
        (self.seen >= WARM_UP).then(|| (self.variance * YEAR_MS / spacing).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn momentum_waits_for_each_horizon_then_measures_it() {
        let mut m = Momentum::new();
        let mut last = [None; 3];
        for i in 0..=2160 {
            last = m.update(100.0 + i as f64);
            if i == 167 {
                assert_eq!(last, [None, None, None]);
            }
        }
        let close = 2260.0;
        assert_eq!(last[0], Some(close / (close - 168.0) - 1.0));
        assert_eq!(last[1], Some(close / (close - 720.0) - 1.0));
        assert_eq!(last[2], Some(close / 100.0 - 1.0));
    }

    #[test]
    fn volatility_is_annualised_from_the_candle_spacing() {
        // alternating ±1% log moves: per-candle σ = 1%
        let hour = 3_600_000;
        let mut hourly = RealisedVolatility::default();
        let mut daily = RealisedVolatility::default();
        let (mut v_hour, mut v_day) = (None, None);
        for i in 0..2000i64 {
            let close = 100.0 * if i % 2 == 0 { 1.0 } else { 0.01f64.exp() };
            v_hour = hourly.update(i * hour, close);
            v_day = daily.update(i * 24 * hour, close);
        }
        let expect_hour = 0.01 * (YEAR_MS / hour as f64).sqrt();
        assert!((v_hour.unwrap() / expect_hour - 1.0).abs() < 1e-6);
        assert!((v_hour.unwrap() / v_day.unwrap() - 24f64.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn the_weight_is_the_half_life_s() {
        assert!((ALPHA - (1.0 - 0.5f64.powf(1.0 / 168.0))).abs() < 1e-15);
    }

    #[test]
    fn volatility_waits_for_its_warm_up() {
        let mut v = RealisedVolatility::default();
        for i in 0..=WARM_UP as i64 {
            let got = v.update(i, 100.0 + i as f64);
            assert_eq!(got.is_some(), i >= WARM_UP as i64, "at {i}");
        }
    }
}
