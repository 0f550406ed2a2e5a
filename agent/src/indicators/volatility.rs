//! Volatility: true range, ATR (Wilder) and Bollinger Bands.

use super::oscillators::EPSILON;
use super::window::Window;

/// Wilder's true range of a candle given the previous close.
#[inline]
pub fn true_range(high: f64, low: f64, previous_close: f64) -> f64 {
    (high - low)
        .max((high - previous_close).abs())
        .max((low - previous_close).abs())
}

/// Average True Range: the mean of the first `period` true ranges, then Wilder's smoothing.
#[derive(Debug, Clone)]
pub struct Atr {
    period: f64,
    /// 1 / period, for the steady-state smoothing
    inv: f64,
    previous_close: Option<f64>,
    ranges: usize,
    value: f64,
}

impl Atr {
    /// An ATR over `period` true ranges (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1) as f64;
        Self {
            period,
            inv: 1.0 / period,
            previous_close: None,
            ranges: 0,
            value: 0.0,
        }
    }

    /// Feeds a candle; the ATR, in price units, once `period` true ranges are in (the first
    /// candle has none).
    #[inline]
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        let previous = self.previous_close.replace(close)?;
        self.push_true_range(true_range(high, low, previous))
    }

    /// Feeds the true range of a candle (after the first) computed elsewhere.
    #[inline]
    pub fn push_true_range(&mut self, tr: f64) -> Option<f64> {
        self.ranges += 1;
        let period = self.period;
        if (self.ranges as f64) < period {
            self.value += tr;
            return None;
        }
        if (self.ranges as f64) == period {
            self.value = (self.value + tr) / period;
        } else {
            self.value = (self.value * (period - 1.0) + tr) * self.inv;
        }
        Some(self.value)
    }
}

/// Bollinger Bands: an SMA of `period` closes ± `deviations` population standard deviations.
#[derive(Debug, Clone)]
pub struct Bollinger {
    /// the last `period` closes: one ring for both running sums
    closes: Window,
    sum: f64,
    sum_of_squares: f64,
    /// 1 / period
    inv_period: f64,
    deviations: f64,
}

/// One Bollinger reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bands {
    /// `middle` plus the deviations.
    pub upper: f64,
    /// The SMA of the closes.
    pub middle: f64,
    /// `middle` minus the deviations.
    pub lower: f64,
}

impl Bollinger {
    /// Bands over `period` closes, `deviations` standard deviations wide each side (usually 20, 2).
    pub fn new(period: usize, deviations: f64) -> Self {
        Self {
            closes: Window::new(period),
            sum: 0.0,
            sum_of_squares: 0.0,
            inv_period: 1.0 / period.max(1) as f64,
            deviations,
        }
    }

    /// Feeds a close; the bands once `period` closes are in.
    #[inline]
    pub fn update(&mut self, close: f64) -> Option<Bands> {
        self.sum += close;
        self.sum_of_squares += close * close;
        if let Some(old) = self.closes.push(close) {
            self.sum -= old;
            self.sum_of_squares -= old * old;
        }
        if !self.closes.is_full() {
            return None;
        }
        let middle = self.sum * self.inv_period;
        let variance = self.sum_of_squares * self.inv_period - middle * middle;
        let deviation = if variance < EPSILON {
            0.0
        } else {
            variance.sqrt()
        };
        let width = self.deviations * deviation;
        Some(Bands {
            upper: middle + width,
            middle,
            lower: middle - width,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn true_range_covers_gaps() {
        assert_eq!(true_range(10.0, 8.0, 9.0), 2.0);
        assert_eq!(true_range(10.0, 8.0, 5.0), 5.0); // gap up
        assert_eq!(true_range(10.0, 8.0, 14.0), 6.0); // gap down
    }

    #[test]
    fn atr_averages_then_smooths() {
        let mut atr = Atr::new(2);
        assert_eq!(atr.update(10.0, 8.0, 9.0), None);
        assert_eq!(atr.update(10.0, 8.0, 9.0), None);
        assert_eq!(atr.update(11.0, 9.0, 10.0), Some(2.0));
        assert_eq!(atr.update(14.0, 10.0, 12.0), Some(3.0)); // (2 × 1 + 4) / 2
    }

    #[test]
    fn bands_are_symmetric_and_collapse_on_a_flat_market() {
        let mut bb = Bollinger::new(2, 2.0);
        bb.update(1.0);
        let b = bb.update(3.0).unwrap();
        assert_eq!((b.upper, b.middle, b.lower), (4.0, 2.0, 0.0));
        let mut flat = Bollinger::new(3, 2.0);
        let b = (0..5).filter_map(|_| flat.update(5.0)).last().unwrap();
        assert_eq!((b.upper, b.lower), (5.0, 5.0));
    }
}
