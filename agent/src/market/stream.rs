//! Binance's WebSocket kline streams (`<symbol>@kline_<interval>`, combined), yielding each candle
//! once it closes. The connection is kept alive (Binance pings, tungstenite answers; a silent
//! connection is dropped after a timeout) and re-established with backoff; after every (re)connect
//! the gap since the last closed candle is back-filled from the REST API, so no candle is lost or
//! repeated across a disconnect. Bad frames are skipped and counted.

use super::binance::BinanceRest;
use super::{Candle, CandleChecker};
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Frame;

/// Binance's public market-data WebSocket endpoint.
pub const MAINNET_WS: &str = "wss://stream.binance.com:9443";

/// Frames or candles the stream skipped, by reason.
pub static SKIPPED: LazyLock<prometheus::IntCounterVec> = LazyLock::new(|| {
    prometheus::register_int_counter_vec!(
        "ia_agent_market_skipped_total",
        "Market-data frames or candles skipped, by reason",
        &["reason"]
    )
    .expect("the metric is registered once")
});

/// The next text frame of a market-data WebSocket, answering pings on the way; `None` when the
/// connection is over (closed, failed, or silent for `idle_timeout`) and the caller should reconnect.
/// `what` names the stream in the logs.
pub(super) async fn next_text<S>(
    socket: &mut S,
    idle_timeout: Duration,
    what: &str,
) -> Option<tokio_tungstenite::tungstenite::Utf8Bytes>
where
    S: futures::Stream<Item = Result<Frame, tokio_tungstenite::tungstenite::Error>>
        + futures::Sink<Frame>
        + Unpin,
{
    loop {
        match tokio::time::timeout(idle_timeout, socket.next()).await {
            Err(_) => {
                tracing::warn!("{what} silent; reconnecting");
                return None;
            }
            Ok(None) => return None,
            Ok(Some(Err(error))) => {
                tracing::warn!(%error, "{what} error; reconnecting");
                return None;
            }
            Ok(Some(Ok(Frame::Text(text)))) => return Some(text),
            Ok(Some(Ok(Frame::Ping(payload)))) => {
                let _ = socket.send(Frame::Pong(payload)).await;
            }
            Ok(Some(Ok(Frame::Close(_)))) => return None,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// A closed candle of one symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolCandle {
    /// The symbol, upper case as Binance sends it (`BTCUSDT`).
    pub symbol: String,
    /// The closed candle.
    pub candle: Candle,
}

/// The live kline feed of some symbols.
#[derive(Clone)]
pub struct KlineStream {
    /// Base URL (`wss://stream.binance.com:9443`); the client connects to `<base>/stream`.
    pub ws_url: String,
    /// The REST client that back-fills what closed while the stream was away.
    pub rest: BinanceRest,
    /// The symbols followed, in any case (stream names are lower-cased).
    pub symbols: Vec<String>,
    /// Binance's name for the interval (`1h`), as in `<symbol>@kline_1h`.
    pub interval: String,
    /// The same interval in ms: a candle has closed once its open time plus this has passed.
    pub interval_ms: i64,
    /// Drop a connection that has been silent this long.
    pub idle_timeout: Duration,
    /// Longest wait between reconnects.
    pub max_backoff: Duration,
}

/// A closed kline from a stream frame, if the frame is one.
pub fn parse_frame(text: &str) -> Result<Option<SymbolCandle>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let data = v.get("data").unwrap_or(&v);
    if data.get("e").and_then(|e| e.as_str()) != Some("kline") {
        return Ok(None);
    }
    let k = data.get("k").ok_or("kline event without field k")?;
    if k.get("x").and_then(|x| x.as_bool()) != Some(true) {
        return Ok(None); // still forming
    }
    let num = |f: &str| -> Result<f64, String> {
        k.get(f)
            .and_then(|x| x.as_str())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("field k.{f} is not a number"))
    };
    Ok(Some(SymbolCandle {
        symbol: k
            .get("s")
            .and_then(|s| s.as_str())
            .ok_or("field k.s is missing")?
            .to_string(),
        candle: Candle {
            open_time: k
                .get("t")
                .and_then(|t| t.as_i64())
                .ok_or("field k.t is not an integer")?,
            open: num("o")?,
            high: num("h")?,
            low: num("l")?,
            close: num("c")?,
            volume: num("v")?,
        },
    }))
}

impl KlineStream {
    fn url(&self) -> String {
        let streams: Vec<String> = self
            .symbols
            .iter()
            .map(|s| format!("{}@kline_{}", s.to_ascii_lowercase(), self.interval))
            .collect();
        format!(
            "{}/stream?streams={}",
            self.ws_url.trim_end_matches('/'),
            streams.join("/")
        )
    }

    /// Streams closed candles into `out` until it is closed, starting after `since` per symbol
    /// (the REST back-fill covers everything from there).
    pub async fn run(self, mut since: HashMap<String, i64>, out: mpsc::Sender<SymbolCandle>) {
        let mut checkers: HashMap<String, CandleChecker> = HashMap::new();
        let mut backoff = Duration::from_millis(500);
        loop {
            // back-fill what closed since the last candle we have
            let now = chrono::Utc::now().timestamp_millis();
            let to = now - now.rem_euclid(self.interval_ms);
            for symbol in &self.symbols {
                let from = since
                    .get(symbol)
                    .map_or(to - self.interval_ms, |t| t + self.interval_ms);
                if from >= to {
                    continue;
                }
                let mut page_out = Vec::new();
                let result = self
                    .rest
                    .klines_range(symbol, self.interval_ms, &self.interval, from, to, |page| {
                        page_out.extend_from_slice(page);
                        Ok(())
                    })
                    .await;
                if let Err(error) = result {
                    tracing::warn!(%symbol, %error, "back-fill failed; the stream goes on");
                }
                for candle in page_out {
                    if !self
                        .emit(&mut since, &mut checkers, &out, symbol, candle)
                        .await
                    {
                        return;
                    }
                }
            }
            let url = self.url();
            match tokio_tungstenite::connect_async(&url).await {
                Err(error) => {
                    tracing::warn!(%url, %error, ?backoff, "market stream connect failed; retrying");
                }
                Ok((mut socket, _)) => {
                    tracing::info!(%url, "market stream connected");
                    backoff = Duration::from_millis(500);
                    while let Some(text) =
                        next_text(&mut socket, self.idle_timeout, "market stream").await
                    {
                        match parse_frame(&text) {
                            Ok(Some(sc)) => {
                                let symbol = sc.symbol.clone();
                                if !self
                                    .emit(&mut since, &mut checkers, &out, &symbol, sc.candle)
                                    .await
                                {
                                    return;
                                }
                            }
                            Ok(None) => {}
                            Err(error) => {
                                SKIPPED.with_label_values(&["bad_frame"]).inc();
                                tracing::warn!(%error, "skipped a market frame");
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

    /// Sends a candle unless it is old, repeated or bad; `false` when the receiver is gone.
    async fn emit(
        &self,
        since: &mut HashMap<String, i64>,
        checkers: &mut HashMap<String, CandleChecker>,
        out: &mpsc::Sender<SymbolCandle>,
        symbol: &str,
        candle: Candle,
    ) -> bool {
        if since.get(symbol).is_some_and(|t| candle.open_time <= *t) {
            return true; // already delivered (back-fill and stream overlap)
        }
        if let Err(problem) = checkers
            .entry(symbol.to_string())
            .or_default()
            .check(&candle)
        {
            SKIPPED.with_label_values(&["bad_candle"]).inc();
            tracing::warn!(%symbol, %problem, "skipped a bad candle");
            return true;
        }
        since.insert(symbol.to_string(), candle.open_time);
        out.send(SymbolCandle {
            symbol: symbol.to_string(),
            candle,
        })
        .await
        .is_ok()
    }
}

/// Generators shared by the property tests of the agent's decoders of outside input (Binance's
/// frames and replies are JSON): any JSON value, and structure-aware and byte-level mutations.
#[cfg(test)]
pub(crate) mod arbitrary {
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    pub(crate) use test_support::arbitrary::{json, mutate};

    /// `text` with one byte replaced and cut short, read back lossily (a frame is text).
    pub(crate) fn corrupt(
        text: &str,
        flip: prop::sample::Index,
        byte: u8,
        cut: prop::sample::Index,
    ) -> String {
        let mut bytes = text.as_bytes().to_vec();
        if !bytes.is_empty() {
            let at = flip.index(bytes.len());
            bytes[at] = byte;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Decimals of every magnitude and sign, the extremes of `Decimal` included.
    pub(crate) fn decimal() -> impl Strategy<Value = Decimal> + Clone {
        prop_oneof![
            (any::<[u32; 3]>(), any::<bool>(), 0u32..=28).prop_map(
                |([lo, mid, hi], negative, scale)| Decimal::from_parts(
                    lo, mid, hi, negative, scale
                )
            ),
            (0i64..1_000_000, 0u32..=28).prop_map(|(m, scale)| Decimal::new(m, scale)),
            prop::sample::select(vec![
                Decimal::MAX,
                Decimal::MIN,
                Decimal::ZERO,
                Decimal::new(1, 28)
            ]),
        ]
    }

    /// A finite `f64` of any magnitude, as Binance's decimal strings carry.
    pub(crate) fn finite() -> impl Strategy<Value = f64> {
        any::<f64>().prop_filter("finite", |x| x.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::arbitrary::{corrupt, finite, json, mutate};
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    #[test]
    fn only_closed_klines_are_candles() {
        let closed = r#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":60000,"T":119999,"s":"BTCUSDT","i":"1m","o":"1.0","c":"2.0","h":"2.5","l":"0.5","v":"10","x":true}}}"#;
        let forming = closed.replace("\"x\":true", "\"x\":false");
        let sc = parse_frame(closed).unwrap().unwrap();
        assert_eq!(
            (sc.symbol.as_str(), sc.candle.open_time, sc.candle.close),
            ("BTCUSDT", 60_000, 2.0)
        );
        assert_eq!(parse_frame(&forming).unwrap(), None);
        assert_eq!(parse_frame(r#"{"result":null,"id":1}"#).unwrap(), None);
        let e = parse_frame(&closed.replace("\"c\":\"2.0\"", "\"c\":\"two\"")).unwrap_err();
        assert_eq!(e, "field k.c is not a number");
    }

    /// A closed kline frame, combined (`{"stream", "data"}`) or bare, and the candle it carries.
    fn arb_frame() -> impl Strategy<Value = (Value, SymbolCandle)> {
        (
            "[A-Z0-9]{2,12}",
            any::<i64>(),
            prop::array::uniform5(finite()),
            any::<bool>(),
        )
            .prop_map(|(symbol, t, [o, h, l, c, v], combined)| {
                let event = json!({"e": "kline", "E": 1, "s": symbol, "k": {
                    "t": t, "T": t.wrapping_add(59_999), "s": symbol, "i": "1m",
                    "o": o.to_string(), "h": h.to_string(), "l": l.to_string(),
                    "c": c.to_string(), "v": v.to_string(), "x": true}});
                let frame = if combined {
                    json!({"stream": format!("{}@kline_1m", symbol.to_lowercase()), "data": event})
                } else {
                    event
                };
                let candle = Candle {
                    open_time: t,
                    open: o,
                    high: h,
                    low: l,
                    close: c,
                    volume: v,
                };
                (frame, SymbolCandle { symbol, candle })
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// A closed kline reads back exactly.
        #[test]
        fn closed_klines_read_back((frame, expected) in arb_frame()) {
            prop_assert_eq!(parse_frame(&frame.to_string()), Ok(Some(expected)));
        }

        /// A frame with any field replaced by any JSON value, or removed: a candle, nothing or an
        /// error, never a panic.
        #[test]
        fn mutated_frames_never_panic((mut frame, _) in arb_frame(), node in any::<usize>(), by in prop::option::of(json())) {
            mutate(&mut frame, node, by);
            if let Err(e) = parse_frame(&frame.to_string()) {
                prop_assert!(!e.is_empty());
            }
        }

        /// Corrupted frames and any text: never a panic.
        #[test]
        fn corrupted_frames_and_any_text_never_panic((frame, _) in arb_frame(), flip in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>(), text in ".{0,200}") {
            let _ = parse_frame(&corrupt(&frame.to_string(), flip, byte, cut));
            let _ = parse_frame(&text);
        }
    }
}
