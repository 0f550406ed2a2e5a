//! Live market data for a team on Binance (docs/architecture.md, "The embedded default"): a
//! warm-up of recent closed candles from the REST API, then closed candles from the WebSocket kline
//! streams as they come, and the streamed order books that price paper fills.

use super::binance::{BinanceRest, RangeError};
use super::book::{BookEvent, BookStream};
use super::stream::{KlineStream, SymbolCandle};
use crate::engine::{Series, SharedBooks};
use protocol::crd::Interval;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc::Receiver;
use tokio::task::JoinHandle;

/// Why the warm-up failed, naming the symbol, interval and server.
#[derive(Debug, thiserror::Error)]
pub enum WarmUpError {
    #[error("warming up {symbol} {interval} from {url} (is the network or the symbol reachable?): {error}")]
    /// The recent klines could not be fetched or failed the checks.
    Fetch {
        /// The symbol being warmed up.
        symbol: String,
        /// The Strategy's candle interval.
        interval: Interval,
        /// The REST base URL.
        url: String,
        /// What went wrong.
        error: RangeError,
    },
    #[error("{url}: no {symbol} {interval} candles for the warm-up")]
    /// The server returned no closed candle for the warm-up range.
    Empty {
        /// The symbol being warmed up.
        symbol: String,
        /// The Strategy's candle interval.
        interval: Interval,
        /// The REST base URL.
        url: String,
    },
}

/// The `warmup` (at least 50) most recent closed candles of every symbol from the REST API at
/// `rest_url`, and the start of the interval now forming (where live trading may begin).
pub async fn warm_up(
    rest: &BinanceRest,
    rest_url: &str,
    symbols: &[String],
    interval: Interval,
    warmup: u32,
) -> Result<(Vec<Series>, i64), WarmUpError> {
    let now = chrono::Utc::now().timestamp_millis();
    let to = now - now.rem_euclid(interval.millis());
    let from = to - i64::from(warmup.max(50)) * interval.millis();
    let mut series = Vec::new();
    for symbol in symbols {
        let mut candles = Vec::new();
        rest.klines_range(
            symbol,
            interval.millis(),
            interval.as_str(),
            from,
            to,
            |page| {
                candles.extend_from_slice(page);
                Ok(())
            },
        )
        .await
        .map_err(|error| WarmUpError::Fetch {
            symbol: symbol.clone(),
            interval,
            url: rest_url.to_string(),
            error,
        })?;
        if candles.is_empty() {
            return Err(WarmUpError::Empty {
                symbol: symbol.clone(),
                interval,
                url: rest_url.to_string(),
            });
        }
        eprintln!("{symbol}: {} warm-up candles", candles.len());
        series.push(Series {
            symbol: symbol.clone(),
            candles,
        });
    }
    Ok((series, to))
}

/// The live kline feed after a warm-up: closed candles of every symbol of `series` from the
/// WebSocket streams at `ws_url`, from the task that reads them.
pub fn live_feed(
    rest: &BinanceRest,
    ws_url: &str,
    series: &[Series],
    interval: Interval,
) -> (JoinHandle<()>, Receiver<SymbolCandle>) {
    let since: HashMap<String, i64> = series
        .iter()
        .filter_map(|s| s.candles.last().map(|c| (s.symbol.clone(), c.open_time)))
        .collect();
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let stream = KlineStream {
        ws_url: ws_url.to_string(),
        rest: rest.clone(),
        symbols: series.iter().map(|s| s.symbol.clone()).collect(),
        interval: interval.as_str().to_string(),
        interval_ms: interval.millis(),
        idle_timeout: Duration::from_secs(300),
        max_backoff: Duration::from_secs(60),
    };
    (tokio::spawn(stream.run(since, tx)), rx)
}

/// Streams the 20-level order books of `symbols` into the returned map (symbol → book, arrival
/// ms) until `feed` (the candle feed's task) ends.
pub fn stream_books(ws_url: &str, symbols: Vec<String>, feed: &JoinHandle<()>) -> SharedBooks {
    let books = SharedBooks::default();
    let stream = BookStream {
        ws_url: ws_url.to_string(),
        symbols,
        depth_levels: 20,
        idle_timeout: Duration::from_secs(60),
        max_backoff: Duration::from_secs(30),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let task = tokio::spawn(stream.run(tx));
    let shared = books.clone();
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            if let BookEvent::Depth(depth) = event {
                let at = chrono::Utc::now().timestamp_millis();
                shared
                    .lock()
                    .expect("books lock")
                    .insert(depth.symbol.clone(), (depth, at));
            }
        }
    });
    let feed_done = feed.abort_handle();
    tokio::spawn(async move {
        // the book stream ends with the candle feed
        while !feed_done.is_finished() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        task.abort();
    });
    books
}
