//! Moving averages: simple (running sum) and exponential (seeded with the simple average of the first
//! `period` values, as TA-Lib does by default).

use super::window::Window;

/// Simple moving average over `period` values.
#[derive(Debug, Clone)]
pub struct Sma {
    window: Window,
    sum: f64,
    /// 1 / period: a multiplication per update instead of a division
    inv_period: f64,
}

impl Sma {
    /// An average over `period` values (at least 1).
    pub fn new(period: usize) -> Self {
        Self {
            window: Window::new(period),
            sum: 0.0,
            inv_period: 1.0 / period.max(1) as f64,
        }
    }

    /// Feeds a value; the average of the last `period`, once that many are in.
    #[inline]
    pub fn update(&mut self, value: f64) -> Option<f64> {
        self.sum += value;
        if let Some(old) = self.window.push(value) {
            self.sum -= old;
        }
        self.window.is_full().then_some(self.sum * self.inv_period)
    }
}

/// Exponential moving average with `k = 2 / (period + 1)`.
#[derive(Debug, Clone)]
pub struct Ema {
    period: usize,
    k: f64,
    seen: usize,
    seed_sum: f64,
    value: f64,
}

impl Ema {
    /// An average with `k = 2 / (period + 1)` (period at least 1), seeded after `period` values.
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Self {
            period,
            k: 2.0 / (period as f64 + 1.0),
            seen: 0,
            seed_sum: 0.0,
            value: 0.0,
        }
    }

    /// Starts the average at `seed` (used by MACD, whose fast average TA-Lib seeds late).
    pub fn seeded(period: usize, seed: f64) -> Self {
        let mut ema = Self::new(period);
        ema.seen = ema.period;
        ema.value = seed;
        ema
    }

    /// Feeds a value; None until `period` values have seeded the average.
    #[inline]
    pub fn update(&mut self, value: f64) -> Option<f64> {
        if self.seen < self.period {
            self.seen += 1;
            self.seed_sum += value;
            if self.seen < self.period {
                return None;
            }
            self.value = self.seed_sum / self.period as f64;
        } else {
            self.value += (value - self.value) * self.k;
        }
        Some(self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sma_averages_the_last_period_values() {
        let mut sma = Sma::new(3);
        let out: Vec<_> = [1.0, 2.0, 3.0, 4.0, 8.0].map(|v| sma.update(v)).to_vec();
        assert_eq!(out, vec![None, None, Some(2.0), Some(3.0), Some(5.0)]);
    }

    #[test]
    fn ema_seeds_with_the_sma_then_smooths() {
        let mut ema = Ema::new(3); // k = 0.5
        let out: Vec<_> = [1.0, 2.0, 3.0, 6.0, 2.0].map(|v| ema.update(v)).to_vec();
        assert_eq!(out, vec![None, None, Some(2.0), Some(4.0), Some(3.0)]);
    }
}
