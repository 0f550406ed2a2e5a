//! Streaming technical indicators: O(1) work per candle for a fixed period, no allocation per update,
//! and TA-Lib's definitions (seeding and smoothing), so that after the warm-up they agree with TA-Lib.
//!
//! [`IndicatorSet`] runs them all over a candle stream and yields one [`IndicatorValues`] per candle;
//! [`CSV_HEADER`] and [`IndicatorValues::write_csv_row`] are the `trading-agent indicators` format.

pub mod moving;
pub mod oscillators;
pub mod regime;
pub mod trend;
pub mod volatility;
pub mod volume;
mod window;

pub use moving::{Ema, Sma};
pub use oscillators::{Cci, Rsi, Stochastic, WilliamsR};
pub use trend::{Adx, Macd, MacdValue};
pub use volatility::{true_range, Atr, Bands, Bollinger};
pub use volume::{Obv, VolumeRatio};

use crate::market::Candle;
use protocol::messages::Indicators;
use std::io::{self, Write};
use window::Window;

/// The header of `trading-agent indicators`' CSV output.
pub const CSV_HEADER: &str = "open_time,close,sma_20,ema_20,rsi_14,macd,macd_signal,macd_hist,bb_upper,bb_middle,bb_lower,stoch_k,stoch_d,willr_14,cci_20,adx_14,atr_14,obv";

/// Every indicator at one candle; `None` while an indicator warms up.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct IndicatorValues {
    /// Open time of the candle, ms since the epoch.
    pub open_time: i64,
    /// The candle's close.
    pub close: f64,
    /// Every indicator after this candle, as the team's snapshots carry them.
    pub indicators: Indicators,
}

impl IndicatorValues {
    /// Writes one CSV row in [`CSV_HEADER`]'s order: empty cells during warm-up, values in Rust's
    /// shortest round-trip formatting (full precision).
    pub fn write_csv_row(&self, out: &mut impl Write) -> io::Result<()> {
        let i = &self.indicators;
        write!(out, "{},{}", self.open_time, self.close)?;
        for value in [
            i.sma_20,
            i.ema_20,
            i.rsi_14,
            i.macd,
            i.macd_signal,
            i.macd_hist,
            i.bb_upper,
            i.bb_middle,
            i.bb_lower,
            i.stoch_k,
            i.stoch_d,
            i.willr_14,
            i.cci_20,
            i.adx_14,
            i.atr_14,
        ] {
            match value {
                Some(v) => write!(out, ",{v}")?,
                None => out.write_all(b",")?,
            }
        }
        writeln!(out, ",{}", i.obv)
    }
}

/// All indicators with the standard parameters, fed one candle at a time.
#[derive(Debug, Clone)]
pub struct IndicatorSet {
    ema: Ema,
    rsi: Rsi,
    macd: Macd,
    /// Bollinger (20, 2), whose middle band is also the set's SMA 20 (one running sum, not two).
    bollinger: Bollinger,
    /// The 14-candle high/low range, shared by the Stochastic and Williams %R.
    range: oscillators::Range,
    stochastic: Stochastic,
    cci: Cci,
    adx: Adx,
    atr: Atr,
    obv: Obv,
    volume_ratio: VolumeRatio,
    /// The last 13 closes, for the 1- and 12-candle returns.
    closes: Window,
    momentum: regime::Momentum,
    volatility: regime::RealisedVolatility,
    previous_close: Option<f64>,
}

impl Default for IndicatorSet {
    fn default() -> Self {
        Self::new()
    }
}

impl IndicatorSet {
    /// SMA/EMA 20, RSI 14, MACD 12/26/9, Bollinger 20/2, Stochastic 14/3/3, Williams %R 14, CCI 20,
    /// ADX 14, ATR 14, OBV, volume ratio 20, the 1- and 12-candle returns, momentum over 168, 720
    /// and 2,160 candles and the annualised realised volatility.
    pub fn new() -> Self {
        Self {
            ema: Ema::new(20),
            rsi: Rsi::new(14),
            macd: Macd::new(12, 26, 9),
            bollinger: Bollinger::new(20, 2.0),
            range: oscillators::Range::new(14),
            stochastic: Stochastic::new(14, 3, 3),
            cci: Cci::new(20),
            adx: Adx::new(14),
            atr: Atr::new(14),
            obv: Obv::new(),
            volume_ratio: VolumeRatio::new(20),
            closes: Window::new(13),
            momentum: regime::Momentum::new(),
            volatility: regime::RealisedVolatility::default(),
            previous_close: None,
        }
    }

    /// Feeds one candle and returns every indicator's value at it.
    #[inline]
    pub fn update(&mut self, c: &Candle) -> IndicatorValues {
        let macd = self.macd.update(c.close);
        let bands = self.bollinger.update(c.close);
        let range = self.range.update(c.high, c.low);
        let stoch = range.and_then(|r| self.stochastic.update_in_range(r, c.close));
        let previous = self.previous_close.replace(c.close);
        // one true range for the ATR and the ADX
        let tr = previous.map(|p| true_range(c.high, c.low, p));
        self.closes.push(c.close);
        let [momentum_168, momentum_720, momentum_2160] = self.momentum.update(c.close);
        IndicatorValues {
            open_time: c.open_time,
            close: c.close,
            indicators: Indicators {
                sma_20: bands.map(|b| b.middle),
                ema_20: self.ema.update(c.close),
                rsi_14: self.rsi.update(c.close),
                macd: macd.map(|m| m.macd),
                macd_signal: macd.map(|m| m.signal),
                macd_hist: macd.map(|m| m.histogram),
                bb_upper: bands.map(|b| b.upper),
                bb_middle: bands.map(|b| b.middle),
                bb_lower: bands.map(|b| b.lower),
                stoch_k: stoch.map(|s| s.0),
                stoch_d: stoch.map(|s| s.1),
                willr_14: range.map(|r| WilliamsR::in_range(r, c.close)),
                cci_20: self.cci.update(c.typical_price()),
                adx_14: self
                    .adx
                    .update_with_true_range(c.high, c.low, c.close, tr.unwrap_or(0.0)),
                atr_14: tr.and_then(|tr| self.atr.push_true_range(tr)),
                obv: self.obv.update(c.close, c.volume),
                volume_ratio_20: self.volume_ratio.update(c.volume),
                return_1: previous.map(|p| c.close / p - 1.0),
                return_12: self.closes.oldest().map(|p| c.close / p - 1.0),
                momentum_168,
                momentum_720,
                momentum_2160,
                volatility: self.volatility.update(c.open_time, c.close),
            },
        }
    }
}

/// Writes the indicators of every candle as CSV ([`CSV_HEADER`] first).
pub fn write_csv(candles: &[Candle], out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "{CSV_HEADER}")?;
    let mut set = IndicatorSet::new();
    for candle in candles {
        set.update(candle).write_csv_row(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_have_a_cell_per_header_column_with_empty_warm_up() {
        let candles: Vec<Candle> = (0..40)
            .map(|i| {
                let p = 100.0 + (i as f64 * 0.7).sin() * 5.0;
                Candle {
                    open_time: i * 60_000,
                    open: p,
                    high: p + 1.0,
                    low: p - 1.0,
                    close: p + 0.25,
                    volume: 10.0 + i as f64,
                }
            })
            .collect();
        let mut out = Vec::new();
        write_csv(&candles, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(lines.len(), 41);
        let columns = CSV_HEADER.split(',').count();
        for line in &lines[1..] {
            assert_eq!(line.split(',').count(), columns, "{line}");
        }
        // the first row: only open_time, close and obv are known
        assert_eq!(
            lines[1],
            format!("0,{},,,,,,,,,,,,,,,,10", candles[0].close)
        );
        // by the last row everything has warmed up
        assert!(!lines[40].contains(",,"), "{}", lines[40]);
    }
}
