//! Binance's WebSocket ticker (`<symbol>@ticker`) and partial-depth (`<symbol>@depth<N>@100ms`)
//! streams: the latest 24-hour ticker and top of the order book per symbol. The client connects to
//! the combined endpoint, subscribes with a `SUBSCRIBE` request, answers pings, drops a silent
//! connection, and reconnects with backoff, subscribing again each time. Bad frames are skipped and
//! counted; a reply to the subscription that reports an error stops nothing but is logged.
//!
//! The depth snapshots also price a market order against the visible book ([`Depth::sweep`]), which
//! is how a paper fill can follow the real book instead of a fixed slippage.

use super::stream::{next_text, SKIPPED};
use futures::SinkExt;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Frame;

/// The 24-hour rolling ticker of a symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticker {
    /// The symbol, upper case as Binance sends it (`BTCUSDT`).
    pub symbol: String,
    /// The last trade's price.
    pub last: f64,
    /// The best bid's price.
    pub best_bid: f64,
    /// The best ask's price.
    pub best_ask: f64,
    /// Price change over 24 hours, in percent.
    pub change_percent: f64,
    /// Base-asset volume over 24 hours.
    pub volume: f64,
    /// Event time, ms since the epoch.
    pub at: i64,
}

/// The top levels of a symbol's order book: (price, quantity), best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Depth {
    /// The symbol, upper-cased from the stream name.
    pub symbol: String,
    /// Binance's book update id of this snapshot (0 when missing).
    pub last_update_id: u64,
    /// Bids, highest price first.
    pub bids: Vec<(f64, f64)>,
    /// Asks, lowest price first.
    pub asks: Vec<(f64, f64)>,
}

/// One update from the book streams.
#[derive(Debug, Clone, PartialEq)]
pub enum BookEvent {
    /// A `<symbol>@ticker` update.
    Ticker(Ticker),
    /// A `<symbol>@depth<N>@100ms` snapshot.
    Depth(Depth),
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BookFrameError {
    #[error("not JSON: {0}")]
    /// The frame is not JSON; the parser's complaint.
    NotJson(String),
    #[error("{stream}: field {field} is missing or not a number")]
    /// A field is missing, or not a finite number in a string.
    Field {
        /// The stream name (`btcusdt@ticker`), empty when the frame has none.
        stream: String,
        /// Binance's short field name (`c`, `b`, `bids`, ...).
        field: String,
    },
    #[error("{stream}: level {index} of {side} is not [price, quantity]")]
    /// A book level is not a pair of non-negative numbers.
    Level {
        /// The stream name.
        stream: String,
        /// `bids` or `asks`.
        side: &'static str,
        /// The level's position, 0 for the best.
        index: usize,
    },
    #[error("subscription {id} failed: {message}")]
    /// Binance answered the `SUBSCRIBE` request with an error.
    Subscription {
        /// The request's id.
        id: i64,
        /// Binance's `msg`.
        message: String,
    },
}

impl Depth {
    /// Walks the book for a market order of `quantity` (asks for a buy, bids for a sell): the
    /// volume-weighted price, or `None` when the visible levels hold less than `quantity`.
    pub fn sweep(&self, buy: bool, quantity: f64) -> Option<f64> {
        let levels = if buy { &self.asks } else { &self.bids };
        let (mut left, mut cost) = (quantity, 0.0);
        for &(price, available) in levels {
            let take = left.min(available);
            cost += take * price;
            left -= take;
            if left <= 0.0 {
                return Some(cost / quantity);
            }
        }
        None
    }

    /// Best ask minus best bid, relative to the mid price.
    pub fn spread(&self) -> Option<f64> {
        let (bid, ask) = (self.bids.first()?.0, self.asks.first()?.0);
        Some((ask - bid) / ((ask + bid) / 2.0))
    }
}

fn number(v: &serde_json::Value, stream: &str, field: &str) -> Result<f64, BookFrameError> {
    v.get(field)
        .and_then(|x| x.as_str())
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|x| x.is_finite())
        .ok_or_else(|| BookFrameError::Field {
            stream: stream.to_string(),
            field: field.to_string(),
        })
}

fn levels(
    v: &serde_json::Value,
    stream: &str,
    side: &'static str,
) -> Result<Vec<(f64, f64)>, BookFrameError> {
    let rows = v
        .get(side)
        .and_then(|x| x.as_array())
        .ok_or_else(|| BookFrameError::Field {
            stream: stream.to_string(),
            field: side.to_string(),
        })?;
    rows.iter()
        .enumerate()
        .map(|(index, row)| {
            let pair = |i: usize| {
                row.get(i)
                    .and_then(|x| x.as_str())
                    .and_then(|s| s.parse::<f64>().ok())
                    .filter(|x| x.is_finite() && *x >= 0.0)
            };
            match (pair(0), pair(1)) {
                (Some(p), Some(q)) => Ok((p, q)),
                _ => Err(BookFrameError::Level {
                    stream: stream.to_string(),
                    side,
                    index,
                }),
            }
        })
        .collect()
}

/// Reads one frame of the combined stream: an event, `None` for frames that carry none (a
/// successful subscription reply), or why it is unusable.
pub fn parse_book_frame(text: &str) -> Result<Option<BookEvent>, BookFrameError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| BookFrameError::NotJson(e.to_string()))?;
    if let Some(id) = v.get("id").and_then(|i| i.as_i64()) {
        return match v.get("error") {
            Some(e) => Err(BookFrameError::Subscription {
                id,
                message: e
                    .get("msg")
                    .and_then(|m| m.as_str())
                    .unwrap_or("unknown error")
                    .to_string(),
            }),
            None => Ok(None),
        };
    }
    let stream = v
        .get("stream")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_string();
    let data = v.get("data").unwrap_or(&v);
    if data.get("e").and_then(|e| e.as_str()) == Some("24hrTicker") {
        return Ok(Some(BookEvent::Ticker(Ticker {
            symbol: data
                .get("s")
                .and_then(|s| s.as_str())
                .ok_or_else(|| BookFrameError::Field {
                    stream: stream.clone(),
                    field: "s".into(),
                })?
                .to_string(),
            last: number(data, &stream, "c")?,
            best_bid: number(data, &stream, "b")?,
            best_ask: number(data, &stream, "a")?,
            change_percent: number(data, &stream, "P")?,
            volume: number(data, &stream, "v")?,
            at: data.get("E").and_then(|e| e.as_i64()).unwrap_or_default(),
        })));
    }
    if data.get("lastUpdateId").is_some() {
        // partial depth frames name their symbol only in the stream name
        let symbol = stream
            .split('@')
            .next()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| BookFrameError::Field {
                stream: stream.clone(),
                field: "stream".into(),
            })?
            .to_ascii_uppercase();
        return Ok(Some(BookEvent::Depth(Depth {
            symbol,
            last_update_id: data
                .get("lastUpdateId")
                .and_then(|u| u.as_u64())
                .unwrap_or_default(),
            bids: levels(data, &stream, "bids")?,
            asks: levels(data, &stream, "asks")?,
        })));
    }
    Ok(None)
}

/// The ticker and depth feed of some symbols.
#[derive(Debug, Clone)]
pub struct BookStream {
    /// Base URL (`wss://stream.binance.com:9443`); the client connects to `<base>/stream`.
    pub ws_url: String,
    /// The symbols followed, in any case (stream names are lower-cased).
    pub symbols: Vec<String>,
    /// Levels of the partial book: 5, 10 or 20.
    pub depth_levels: u8,
    /// Drop a connection that has been silent this long.
    pub idle_timeout: Duration,
    /// Longest wait between reconnects.
    pub max_backoff: Duration,
}

impl BookStream {
    /// The stream names subscribed to.
    pub fn streams(&self) -> Vec<String> {
        self.symbols
            .iter()
            .flat_map(|s| {
                let s = s.to_ascii_lowercase();
                [
                    format!("{s}@ticker"),
                    format!("{s}@depth{}@100ms", self.depth_levels),
                ]
            })
            .collect()
    }

    /// Streams events into `out` until it is closed, reconnecting and subscribing again after
    /// every disconnect.
    pub async fn run(self, out: mpsc::Sender<BookEvent>) {
        let url = format!("{}/stream", self.ws_url.trim_end_matches('/'));
        let subscribe =
            serde_json::json!({"method": "SUBSCRIBE", "params": self.streams(), "id": 1})
                .to_string();
        let mut backoff = Duration::from_millis(500);
        loop {
            match tokio_tungstenite::connect_async(&url).await {
                Err(error) => {
                    tracing::warn!(%url, %error, ?backoff, "book stream connect failed; retrying");
                }
                Ok((mut socket, _)) => {
                    if let Err(error) = socket.send(Frame::text(subscribe.clone())).await {
                        tracing::warn!(%error, "book stream subscription failed; reconnecting");
                    } else {
                        tracing::info!(%url, streams = self.streams().len(), "book stream subscribed");
                        backoff = Duration::from_millis(500);
                        while let Some(text) =
                            next_text(&mut socket, self.idle_timeout, "book stream").await
                        {
                            match parse_book_frame(&text) {
                                Ok(Some(event)) => {
                                    if out.send(event).await.is_err() {
                                        return;
                                    }
                                }
                                Ok(None) => {}
                                Err(error) => {
                                    SKIPPED.with_label_values(&["bad_book_frame"]).inc();
                                    tracing::warn!(%error, "skipped a book frame");
                                }
                            }
                        }
                    }
                }
            }
            if out.is_closed() {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.max_backoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::stream::arbitrary::{corrupt, finite, json, mutate};
    use proptest::prelude::*;
    use serde_json::{json, Value};

    #[test]
    fn tickers_and_depth_frames_are_read_and_bad_ones_named() {
        let ticker = r#"{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","E":7,"s":"BTCUSDT","P":"-1.5","c":"64000.5","b":"64000.0","a":"64001.0","v":"1234.5"}}"#;
        let Some(BookEvent::Ticker(t)) = parse_book_frame(ticker).unwrap() else {
            panic!("a ticker")
        };
        assert_eq!(
            (t.symbol.as_str(), t.last, t.change_percent, t.at),
            ("BTCUSDT", 64000.5, -1.5, 7)
        );
        let depth = r#"{"stream":"ethusdt@depth5@100ms","data":{"lastUpdateId":42,"bids":[["3000.0","1.0"],["2999.0","2.0"]],"asks":[["3001.0","0.5"],["3002.0","3.0"]]}}"#;
        let Some(BookEvent::Depth(d)) = parse_book_frame(depth).unwrap() else {
            panic!("a depth")
        };
        assert_eq!((d.symbol.as_str(), d.last_update_id), ("ETHUSDT", 42));
        assert_eq!(parse_book_frame(r#"{"result":null,"id":1}"#).unwrap(), None);
        assert_eq!(
            parse_book_frame(r#"{"error":{"code":2,"msg":"Invalid request"},"id":1}"#).unwrap_err(),
            BookFrameError::Subscription {
                id: 1,
                message: "Invalid request".into()
            }
        );
        let bad = depth.replace(r#"["2999.0","2.0"]"#, r#"["2999.0"]"#);
        assert_eq!(
            parse_book_frame(&bad).unwrap_err().to_string(),
            "ethusdt@depth5@100ms: level 1 of bids is not [price, quantity]"
        );
        let bad = ticker.replace(r#""c":"64000.5""#, r#""c":"NaN""#);
        assert_eq!(
            parse_book_frame(&bad).unwrap_err().to_string(),
            "btcusdt@ticker: field c is missing or not a number"
        );
    }

    #[test]
    fn a_market_order_sweeps_the_book() {
        let d = Depth {
            symbol: "ETHUSDT".into(),
            last_update_id: 1,
            bids: vec![(3000.0, 1.0), (2999.0, 2.0)],
            asks: vec![(3001.0, 0.5), (3002.0, 3.0)],
        };
        // 0.5 at 3001 and 1.5 at 3002
        assert_eq!(
            d.sweep(true, 2.0),
            Some((0.5 * 3001.0 + 1.5 * 3002.0) / 2.0)
        );
        assert_eq!(d.sweep(false, 1.0), Some(3000.0));
        assert_eq!(d.sweep(true, 10.0), None, "more than the visible book");
        assert!((d.spread().unwrap() - 1.0 / 3000.5).abs() < 1e-12);
    }

    fn arb_ticker() -> impl Strategy<Value = (Value, BookEvent)> {
        ("[A-Z0-9]{2,12}", prop::array::uniform5(finite()), any::<i64>()).prop_map(
            |(symbol, [last, best_bid, best_ask, change_percent, volume], at)| {
                let frame = json!({"stream": format!("{}@ticker", symbol.to_lowercase()),
                    "data": {"e": "24hrTicker", "E": at, "s": symbol, "P": change_percent.to_string(),
                    "c": last.to_string(), "b": best_bid.to_string(), "a": best_ask.to_string(),
                    "v": volume.to_string()}});
                let ticker = Ticker {
                    symbol,
                    last,
                    best_bid,
                    best_ask,
                    change_percent,
                    volume,
                    at,
                };
                (frame, BookEvent::Ticker(ticker))
            },
        )
    }

    fn arb_depth() -> impl Strategy<Value = (Value, BookEvent)> {
        let level = (0.0f64..1e9, 0.0f64..1e6);
        (
            "[a-z0-9]{1,12}",
            any::<u64>(),
            prop::collection::vec(level.clone(), 0..6),
            prop::collection::vec(level, 0..6),
        )
            .prop_map(|(symbol, last_update_id, bids, asks)| {
                let side = |levels: &[(f64, f64)]| -> Vec<[String; 2]> {
                    levels
                        .iter()
                        .map(|(p, q)| [p.to_string(), q.to_string()])
                        .collect()
                };
                let frame = json!({"stream": format!("{symbol}@depth5@100ms"),
                    "data": {"lastUpdateId": last_update_id, "bids": side(&bids), "asks": side(&asks)}});
                let depth = Depth {
                    symbol: symbol.to_ascii_uppercase(),
                    last_update_id,
                    bids,
                    asks,
                };
                (frame, BookEvent::Depth(depth))
            })
    }

    /// A ticker, a depth snapshot, or a reply to the subscription.
    fn arb_frame() -> impl Strategy<Value = Value> {
        prop_oneof![
            arb_ticker().prop_map(|(frame, _)| frame),
            arb_depth().prop_map(|(frame, _)| frame),
            Just(json!({"result": null, "id": 1})),
            Just(json!({"error": {"code": 2, "msg": "Invalid request"}, "id": 1})),
        ]
    }

    /// What reading a frame must guarantee: no panic, a named error, and a depth that prices
    /// any order without panicking.
    fn check_total(text: &str, quantity: f64) -> Result<(), TestCaseError> {
        match parse_book_frame(text) {
            Ok(Some(BookEvent::Depth(depth))) => {
                let _ = (depth.sweep(true, quantity), depth.sweep(false, quantity));
                let _ = depth.spread();
            }
            Ok(_) => {}
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Tickers and depth snapshots read back exactly.
        #[test]
        fn tickers_and_depths_read_back((frame, expected) in prop_oneof![arb_ticker(), arb_depth()]) {
            prop_assert_eq!(parse_book_frame(&frame.to_string()), Ok(Some(expected)));
        }

        /// A frame with any field replaced by any JSON value, or removed, never panics.
        #[test]
        fn mutated_book_frames_never_panic(mut frame in arb_frame(), node in any::<usize>(), by in prop::option::of(json()), quantity in finite()) {
            mutate(&mut frame, node, by);
            check_total(&frame.to_string(), quantity)?;
        }

        /// Corrupted frames and any text never panic.
        #[test]
        fn corrupted_book_frames_never_panic(frame in arb_frame(), flip in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>(), text in ".{0,200}") {
            check_total(&corrupt(&frame.to_string(), flip, byte, cut), 1.0)?;
            check_total(&text, 1.0)?;
        }
    }
}
