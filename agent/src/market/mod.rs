//! Market data: the [`Candle`] every assistant reasons about, and where candles come from.
//!
//! - [`binance`]: Binance's REST klines (paginated, rate-limit aware);
//! - [`bundled`]: real candles built into the binary for the local backtest;
//! - [`stream`]: Binance's WebSocket kline streams with reconnects and REST back-fill;
//! - [`file`]: replay from a candle file (our OHLCV CSV or Binance's kline CSV, optionally gzipped);
//! - [`check`]: the sanity rules every source applies (monotonic time, finite positive prices, ...).

pub mod binance;
pub mod book;
pub mod bundled;
pub mod check;
pub mod file;
pub mod live;
pub mod stream;

pub use check::{CandleChecker, CandleProblem};
pub use file::{read_candles, CandleFileError};

/// One OHLCV candle. Prices and volume are `f64`: they feed analytics, never money arithmetic
/// (the paper exchange converts to exact decimals at its boundary).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Candle {
    /// Open time of the candle, milliseconds since the Unix epoch (UTC).
    pub open_time: i64,
    /// First trade's price in the candle.
    pub open: f64,
    /// Highest trade's price in the candle.
    pub high: f64,
    /// Lowest trade's price in the candle.
    pub low: f64,
    /// Last trade's price in the candle: the price decisions are taken on.
    pub close: f64,
    /// Volume in the base asset.
    pub volume: f64,
}

impl Candle {
    /// The typical price (high + low + close) / 3, as CCI uses it.
    pub fn typical_price(&self) -> f64 {
        (self.high + self.low + self.close) / 3.0
    }
}
