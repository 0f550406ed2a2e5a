//! Momentum oscillators: RSI (Wilder), Stochastic (slow, SMA-smoothed), Williams %R and CCI.

use super::moving::Sma;
use super::window::Window;

/// TA-Lib's "is zero" tolerance for ratios whose denominator may vanish on flat markets.
pub(crate) const EPSILON: f64 = 1e-14;

/// Relative Strength Index with Wilder's smoothing; the first value averages the first `period` moves.
#[derive(Debug, Clone)]
pub struct Rsi {
    period: f64,
    /// 1 / period: a multiplication in the steady state instead of a division
    inv: f64,
    moves: usize,
    previous: Option<f64>,
    gain: f64,
    loss: f64,
}

impl Rsi {
    /// An RSI over `period` moves (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1) as f64;
        Self {
            period,
            inv: 1.0 / period,
            moves: 0,
            previous: None,
            gain: 0.0,
            loss: 0.0,
        }
    }

    /// Feeds a close; the RSI on a 0..100 scale once `period` moves are in (0 when flat).
    #[inline]
    pub fn update(&mut self, close: f64) -> Option<f64> {
        let previous = self.previous.replace(close)?;
        let change = close - previous;
        // selects, not a branch: whether a close rises or falls is the least predictable bit there is
        let up = if change > 0.0 { change } else { 0.0 };
        let down = if change < 0.0 { -change } else { 0.0 };
        self.moves += 1;
        let period = self.period;
        if (self.moves as f64) < period {
            self.gain += up;
            self.loss += down;
            return None;
        }
        if (self.moves as f64) == period {
            self.gain = (self.gain + up) / period;
            self.loss = (self.loss + down) / period;
        } else {
            self.gain = (self.gain * (period - 1.0) + up) * self.inv;
            self.loss = (self.loss * (period - 1.0) + down) * self.inv;
        }
        let total = self.gain + self.loss;
        Some(if total.abs() < EPSILON {
            0.0
        } else {
            100.0 * (self.gain / total)
        })
    }
}

/// Highest high and lowest low over the last `period` candles, tracked as TA-Lib does: the
/// extremes and their positions are kept, and the window is rescanned only when an extreme leaves it
/// (amortised O(1), no allocation).
#[derive(Debug, Clone)]
pub struct Range {
    highs: Box<[f64]>,
    lows: Box<[f64]>,
    /// Candles seen so far (the absolute index of the next one).
    seen: u64,
    /// Where the next candle goes (`seen % period`, kept without a division).
    slot: usize,
    highest: (f64, u64),
    lowest: (f64, u64),
}

impl Range {
    /// A range over `period` candles (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Self {
            highs: vec![0.0; period].into_boxed_slice(),
            lows: vec![0.0; period].into_boxed_slice(),
            seen: 0,
            slot: 0,
            highest: (f64::NEG_INFINITY, 0),
            lowest: (f64::INFINITY, 0),
        }
    }

    /// Returns (highest, lowest) once `period` candles are in.
    #[inline]
    pub fn update(&mut self, high: f64, low: f64) -> Option<(f64, f64)> {
        let period = self.highs.len() as u64;
        let i = self.seen;
        self.highs[self.slot] = high;
        self.lows[self.slot] = low;
        self.slot += 1;
        if self.slot == self.highs.len() {
            self.slot = 0;
        }
        self.seen += 1;
        let oldest = (i + 1).saturating_sub(period);
        if high >= self.highest.0 {
            self.highest = (high, i);
        } else if self.highest.1 < oldest {
            self.highest = self.rescan(i, Extreme::Highest);
        }
        if low <= self.lowest.0 {
            self.lowest = (low, i);
        } else if self.lowest.1 < oldest {
            self.lowest = self.rescan(i, Extreme::Lowest);
        }
        (self.seen >= period).then_some((self.highest.0, self.lowest.0))
    }

    /// The extreme of the full window ending at candle `newest` (the latest on ties) and its index.
    ///
    /// Only called once the window is full, so the ring holds exactly the window: the value is a
    /// branch-free reduction over the ring in any order (four independent lanes, no dependency
    /// chain through a compare per element, which is what made a rescan costly), and its position
    /// is found by walking back from the newest slot, which also makes the latest tie win.
    #[cold]
    fn rescan(&self, newest: u64, extreme: Extreme) -> (f64, u64) {
        let (values, best) = match extreme {
            Extreme::Highest => (
                &self.highs,
                reduce(&self.highs, |a, b| if b > a { b } else { a }),
            ),
            Extreme::Lowest => (
                &self.lows,
                reduce(&self.lows, |a, b| if b < a { b } else { a }),
            ),
        };
        let mut slot = self.slot;
        for age in 0..values.len() as u64 {
            slot = if slot == 0 {
                values.len() - 1
            } else {
                slot - 1
            };
            if values[slot] == best {
                return (best, newest - age);
            }
        }
        (best, newest)
    }
}

#[derive(Debug, Clone, Copy)]
enum Extreme {
    Highest,
    Lowest,
}

/// Folds `values` (not empty) with `pick` in four interleaved lanes, then across the lanes.
#[inline(always)]
fn reduce(values: &[f64], pick: impl Fn(f64, f64) -> f64) -> f64 {
    let mut lanes = [values[0]; 4];
    let chunks = values.chunks_exact(4);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = pick(*lane, v);
        }
    }
    let mut best = pick(pick(lanes[0], lanes[1]), pick(lanes[2], lanes[3]));
    for &v in rest {
        best = pick(best, v);
    }
    best
}

/// Slow Stochastic: %K over `k_period`, smoothed by an SMA of `slow_k`, and %D, an SMA of `slow_d`.
#[derive(Debug, Clone)]
pub struct Stochastic {
    range: Range,
    slow_k: Sma,
    slow_d: Sma,
}

impl Stochastic {
    /// %K over `k_period` candles, smoothed over `slow_k`; %D over `slow_d` (the team uses 14, 3, 3).
    pub fn new(k_period: usize, slow_k: usize, slow_d: usize) -> Self {
        Self {
            range: Range::new(k_period),
            slow_k: Sma::new(slow_k),
            slow_d: Sma::new(slow_d),
        }
    }

    /// Returns (%K, %D), both on a 0..100 scale.
    #[inline]
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<(f64, f64)> {
        let range = self.range.update(high, low)?;
        self.update_in_range(range, close)
    }

    /// As [`Stochastic::update`], given the (highest, lowest) of the %K period computed elsewhere
    /// (shared with Williams %R in [`super::IndicatorSet`]).
    #[inline]
    pub fn update_in_range(
        &mut self,
        (highest, lowest): (f64, f64),
        close: f64,
    ) -> Option<(f64, f64)> {
        let width = highest - lowest;
        let fast_k = if width != 0.0 {
            100.0 * (close - lowest) / width
        } else {
            0.0
        };
        let k = self.slow_k.update(fast_k)?;
        let d = self.slow_d.update(k)?;
        Some((k, d))
    }
}

/// Williams %R over `period` candles, on a -100..0 scale.
#[derive(Debug, Clone)]
pub struct WilliamsR {
    range: Range,
}

impl WilliamsR {
    /// Williams %R over `period` candles (at least 1).
    pub fn new(period: usize) -> Self {
        Self {
            range: Range::new(period),
        }
    }

    /// Feeds a candle; %R once `period` candles are in (0 when the range is flat).
    #[inline]
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        let range = self.range.update(high, low)?;
        Some(Self::in_range(range, close))
    }

    /// Williams %R of `close` in a (highest, lowest) range.
    #[inline]
    pub fn in_range((highest, lowest): (f64, f64), close: f64) -> f64 {
        let scale = (highest - lowest) * -0.01;
        if scale != 0.0 {
            (highest - close) / scale
        } else {
            0.0
        }
    }
}

/// Commodity Channel Index over `period` typical prices, with Lambert's 0.015 constant.
///
/// The mean absolute deviation needs every value of the window, so an update costs `period`
/// steps: constant per candle for a fixed period, with no allocation.
#[derive(Debug, Clone)]
pub struct Cci {
    window: Window,
    sum: f64,
    /// 1 / period, for the mean
    inv_period: f64,
    /// period / 0.015: CCI = (tp - mean) / (0.015 × Σ|tp - mean| / period) with one division
    scale: f64,
}

impl Cci {
    /// A CCI over `period` typical prices (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1) as f64;
        Self {
            window: Window::new(period as usize),
            sum: 0.0,
            inv_period: 1.0 / period,
            scale: period / 0.015,
        }
    }

    /// Feeds a typical price ((high + low + close) / 3); the CCI once `period` are in, 0 on a
    /// flat window.
    #[inline]
    pub fn update(&mut self, typical_price: f64) -> Option<f64> {
        self.sum += typical_price;
        if let Some(old) = self.window.push(typical_price) {
            self.sum -= old;
        }
        if !self.window.is_full() {
            return None;
        }
        let mean = self.sum * self.inv_period;
        // a plain left-to-right sum: measured faster here than two-lane SSE2 or four scalar lanes
        let deviation_sum: f64 = self.window.values().iter().map(|v| (v - mean).abs()).sum();
        let distance = typical_price - mean;
        // A flat window leaves rounding noise in the distance: treat it as zero relative to the
        // operands' magnitude, as TA-Lib does (TA_IS_ZERO_SCALED).
        let flat = distance.abs() <= EPSILON * (typical_price.abs() + mean.abs());
        Some(if !flat && deviation_sum != 0.0 {
            distance * self.scale / deviation_sum
        } else {
            0.0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsi_is_100_when_only_rising_and_0_when_only_falling() {
        let mut up = Rsi::new(3);
        let mut down = Rsi::new(3);
        let mut last = (None, None);
        for i in 0..10 {
            last = (up.update(i as f64), down.update(100.0 - i as f64));
        }
        assert_eq!(last, (Some(100.0), Some(0.0)));
        // warm-up: `period` moves, so the first value comes with candle period + 1
        let mut rsi = Rsi::new(3);
        let out: Vec<_> = [1.0, 2.0, 1.0, 2.0]
            .map(|c| rsi.update(c).is_some())
            .to_vec();
        assert_eq!(out, vec![false, false, false, true]);
    }

    #[test]
    fn stochastic_and_williams_place_the_close_in_the_range() {
        let mut stoch = Stochastic::new(2, 1, 1);
        let mut willr = WilliamsR::new(2);
        stoch.update(10.0, 0.0, 5.0);
        willr.update(10.0, 0.0, 5.0);
        assert_eq!(stoch.update(20.0, 10.0, 15.0), Some((75.0, 75.0)));
        assert_eq!(willr.update(20.0, 10.0, 15.0), Some(-25.0));
        // a flat range gives 0, not a division by zero
        let mut flat = WilliamsR::new(1);
        assert_eq!(flat.update(1.0, 1.0, 1.0), Some(0.0));
    }

    #[test]
    fn range_tracks_extremes_as_they_enter_and_leave() {
        let mut range = Range::new(3);
        let highs = [5.0, 9.0, 4.0, 3.0, 2.0, 8.0, 1.0];
        let lows = [5.0, 1.0, 4.0, 3.0, 6.0, 0.5, 2.0];
        let got: Vec<_> = highs
            .iter()
            .zip(lows)
            .map(|(h, l)| range.update(*h, l))
            .collect();
        // windows: [5,9,4] [9,4,3] [4,3,2] [3,2,8] [2,8,1]; lows [5,1,4] [1,4,3] [4,3,6] [3,6,.5] [6,.5,2]
        assert_eq!(
            got,
            vec![
                None,
                None,
                Some((9.0, 1.0)),
                Some((9.0, 1.0)),
                Some((4.0, 3.0)),
                Some((8.0, 0.5)),
                Some((8.0, 0.5))
            ]
        );
    }

    #[test]
    fn cci_measures_distance_in_mean_deviations() {
        let mut cci = Cci::new(3);
        cci.update(1.0);
        cci.update(2.0);
        // mean 2, mean deviation 2/3, distance 1 → 1 / (0.015 × 2/3) = 100
        let value = cci.update(3.0).unwrap();
        assert!((value - 100.0).abs() < 1e-9, "{value}");
    }

    #[test]
    fn cci_of_a_flat_window_is_zero_despite_rounding() {
        let mut cci = Cci::new(20);
        // 4000.37 / 3 × 3 does not round-trip exactly: the mean carries noise of ~1e-12
        let last = (0..40).filter_map(|_| cci.update(4000.37)).last();
        assert_eq!(last, Some(0.0));
    }
}
