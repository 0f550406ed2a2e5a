//! Trend indicators: MACD and ADX, with TA-Lib's seeding so values agree after the warm-up.

use super::moving::Ema;
use super::oscillators::EPSILON;
use super::volatility::true_range;
use super::window::Window;

/// MACD line, signal and histogram.
///
/// As in TA-Lib, the fast average is seeded on the same candle as the slow one (with the mean of the
/// last `fast` closes), and nothing is reported until the signal line exists.
#[derive(Debug, Clone)]
pub struct Macd {
    fast_period: usize,
    recent: Window,
    fast: Option<Ema>,
    slow: Ema,
    signal: Ema,
}

/// One MACD reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MacdValue {
    /// Fast EMA minus slow EMA.
    pub macd: f64,
    /// EMA of the MACD line.
    pub signal: f64,
    /// MACD minus signal.
    pub histogram: f64,
}

impl Macd {
    /// MACD of `fast` and `slow` EMAs with a `signal` EMA (the usual 12, 26, 9).
    pub fn new(fast: usize, slow: usize, signal: usize) -> Self {
        Self {
            fast_period: fast.max(1),
            recent: Window::new(fast),
            fast: None,
            slow: Ema::new(slow),
            signal: Ema::new(signal),
        }
    }

    /// Feeds a close; None until the slow average and then the signal line have warmed up.
    #[inline]
    pub fn update(&mut self, close: f64) -> Option<MacdValue> {
        let slow = self.slow.update(close);
        let fast = match &mut self.fast {
            Some(fast) => fast.update(close),
            None => {
                self.recent.push(close);
                slow?;
                let seed = self.recent.values().iter().sum::<f64>() / self.fast_period as f64;
                self.fast = Some(Ema::seeded(self.fast_period, seed));
                Some(seed)
            }
        };
        let macd = fast? - slow?;
        let signal = self.signal.update(macd)?;
        Some(MacdValue {
            macd,
            signal,
            histogram: macd - signal,
        })
    }
}

/// Average Directional Index (Wilder), as TA-Lib computes it: directional movement and true range
/// summed over `period - 1` moves, then Wilder-smoothed; the first ADX averages `period` DX values.
#[derive(Debug, Clone)]
pub struct Adx {
    period: f64,
    /// 1 / period, for the steady-state smoothing
    inv: f64,
    moves: usize,
    previous: Option<(f64, f64, f64)>,
    plus_dm: f64,
    minus_dm: f64,
    tr: f64,
    dx_sum: f64,
    adx: f64,
}

impl Adx {
    /// An ADX over `period` (at least 2).
    pub fn new(period: usize) -> Self {
        let period = period.max(2) as f64;
        Self {
            period,
            inv: 1.0 / period,
            moves: 0,
            previous: None,
            plus_dm: 0.0,
            minus_dm: 0.0,
            tr: 0.0,
            dx_sum: 0.0,
            adx: 0.0,
        }
    }

    /// Feeds a candle; the ADX on a 0..100 scale once it has warmed up.
    #[inline]
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        // the first candle has no true range: it only becomes the previous one
        let tr = self
            .previous
            .map_or(0.0, |(_, _, prev_close)| true_range(high, low, prev_close));
        self.update_with_true_range(high, low, close, tr)
    }

    /// As [`Adx::update`], with the candle's true range computed elsewhere (shared with the ATR in
    /// [`super::IndicatorSet`]); `tr` is ignored on the first candle, which has none.
    #[inline]
    pub fn update_with_true_range(
        &mut self,
        high: f64,
        low: f64,
        close: f64,
        tr: f64,
    ) -> Option<f64> {
        let (prev_high, prev_low, _) = self.previous.replace((high, low, close))?;
        self.moves += 1;
        let period = self.period;
        let n = period as usize;
        let up = high - prev_high;
        let down = prev_low - low;
        if self.moves >= n {
            self.minus_dm -= self.minus_dm * self.inv;
            self.plus_dm -= self.plus_dm * self.inv;
        }
        // the two cases exclude each other (up < down, up > down): both as selects, not branches a
        // price series makes unpredictable
        self.minus_dm += if down > 0.0 && up < down { down } else { 0.0 };
        self.plus_dm += if up > 0.0 && up > down { up } else { 0.0 };
        if self.moves < n {
            self.tr += tr;
            return None;
        }
        self.tr = self.tr - self.tr * self.inv + tr;
        let dx = self.dx();
        if self.moves < 2 * n - 1 {
            self.dx_sum += dx.unwrap_or(0.0);
            return None;
        }
        if self.moves == 2 * n - 1 {
            self.dx_sum += dx.unwrap_or(0.0);
            self.adx = self.dx_sum / period;
        } else if let Some(dx) = dx {
            self.adx = (self.adx * (period - 1.0) + dx) * self.inv;
        }
        Some(self.adx)
    }

    /// The directional index of the smoothed movements, when it is defined.
    #[inline]
    fn dx(&self) -> Option<f64> {
        if self.tr.abs() < EPSILON {
            return None;
        }
        // DX = 100 |-DI - +DI| / (-DI + +DI), and both DIs are 100 × DM / TR: the TR cancels, so one
        // division instead of TA-Lib's three (equal to it within rounding); TR > 0 here, so "the DIs'
        // sum is not zero" is compared without dividing either
        let dm_sum = self.minus_dm + self.plus_dm;
        ((100.0 * dm_sum).abs() >= EPSILON * self.tr.abs())
            .then(|| 100.0 * ((self.minus_dm - self.plus_dm).abs() / dm_sum))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macd_waits_for_slow_plus_signal_warm_up() {
        let mut macd = Macd::new(12, 26, 9);
        let first = (0..100)
            .position(|i| macd.update(100.0 + (i as f64).sin()).is_some())
            .unwrap();
        assert_eq!(first, 33); // TA-Lib's lookback: (26 - 1) + (9 - 1)
    }

    #[test]
    fn macd_of_a_constant_series_is_zero() {
        let mut macd = Macd::new(3, 5, 2);
        let last = (0..20).filter_map(|_| macd.update(7.0)).last().unwrap();
        assert_eq!(last.macd, 0.0);
        assert_eq!(last.histogram, 0.0);
    }

    #[test]
    fn adx_is_high_in_a_steady_trend() {
        let mut adx = Adx::new(14);
        let mut first = None;
        let mut last = 0.0;
        for i in 0..100 {
            let p = 100.0 + i as f64;
            if let Some(v) = adx.update(p + 1.0, p - 1.0, p) {
                first.get_or_insert(i);
                last = v;
            }
        }
        assert_eq!(first, Some(27)); // TA-Lib's lookback: 2 × 14 - 1
        assert!(last > 99.0, "{last}");
    }
}
