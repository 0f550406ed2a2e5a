//! Volume indicators: On-Balance Volume and the ratio of volume to its moving average.

use super::moving::Sma;

/// On-Balance Volume, starting at the first candle's volume.
#[derive(Debug, Clone, Default)]
pub struct Obv {
    previous_close: Option<f64>,
    value: f64,
}

impl Obv {
    /// No candle yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a candle; OBV so far: volume added on a higher close, taken away on a lower one.
    #[inline]
    pub fn update(&mut self, close: f64, volume: f64) -> f64 {
        match self.previous_close.replace(close) {
            None => self.value = volume,
            // a select, not a branch on the (unpredictable) direction of the close
            Some(previous) => {
                self.value += if close > previous {
                    volume
                } else if close < previous {
                    -volume
                } else {
                    0.0
                }
            }
        }
        self.value
    }
}

/// This candle's volume over the average volume of the last `period` candles (1.0 = usual volume);
/// what the market monitor reads as a volume anomaly.
#[derive(Debug, Clone)]
pub struct VolumeRatio {
    average: Sma,
}

impl VolumeRatio {
    /// A ratio to the average of the last `period` volumes.
    pub fn new(period: usize) -> Self {
        Self {
            average: Sma::new(period),
        }
    }

    /// Feeds a volume; the ratio once `period` volumes are in (0 while the average is 0).
    #[inline]
    pub fn update(&mut self, volume: f64) -> Option<f64> {
        let average = self.average.update(volume)?;
        Some(if average > 0.0 { volume / average } else { 0.0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obv_adds_on_up_closes_and_subtracts_on_down_closes() {
        let mut obv = Obv::new();
        let out: Vec<_> = [(10.0, 5.0), (11.0, 2.0), (11.0, 9.0), (9.0, 4.0)]
            .map(|(c, v)| obv.update(c, v))
            .to_vec();
        assert_eq!(out, vec![5.0, 7.0, 7.0, 3.0]);
    }

    #[test]
    fn volume_ratio_compares_with_the_average() {
        let mut ratio = VolumeRatio::new(2);
        assert_eq!(ratio.update(1.0), None);
        assert_eq!(ratio.update(3.0), Some(1.5));
        assert_eq!(ratio.update(0.0), Some(0.0));
    }
}
