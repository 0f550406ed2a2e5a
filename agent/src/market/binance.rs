//! Binance's public REST klines (`GET /api/v3/klines`), paginated by time and rate-limit aware:
//! HTTP 429 and 418 are retried after the server's `Retry-After`, 5xx and network errors with
//! exponential backoff, up to a limit. The base URL is configurable (mainnet, the spot testnet, or a
//! local server in tests).

use super::{Candle, CandleChecker};
use std::time::Duration;

/// Binance's mainnet REST API.
pub const MAINNET: &str = "https://api.binance.com";
/// The most klines one request returns.
pub const PAGE: u32 = 1000;

/// Why klines could not be fetched, naming the request.
#[derive(Debug, thiserror::Error)]
pub enum BinanceError {
    #[error("{url}: Binance refused the request ({status}): {message}")]
    /// Binance answered with a client error that retrying will not fix.
    Refused {
        /// The request's URL, query included.
        url: String,
        /// The HTTP status (4xx other than 418 and 429).
        status: u16,
        /// Binance's `msg`, or the raw body when it has none.
        message: String,
    },
    #[error("{url}: unknown symbol {symbol:?} on Binance")]
    /// Binance does not list the symbol.
    UnknownSymbol {
        /// The request's URL, query included.
        url: String,
        /// The symbol asked for.
        symbol: String,
    },
    #[error("{url}: gave up after {attempts} attempts: {last}")]
    /// Rate limits, server errors or network errors on every attempt.
    GaveUp {
        /// The request's URL, query included.
        url: String,
        /// Attempts made ([`BinanceRest::max_attempts`]).
        attempts: u32,
        /// What went wrong on the last one.
        last: String,
    },
    #[error("{url}: unexpected reply: {error}")]
    /// A success whose body is not the kline array expected.
    Decode {
        /// The request's URL, query included.
        url: String,
        /// What is wrong with the body.
        error: String,
    },
}

/// A client of the klines endpoint.
#[derive(Debug, Clone)]
pub struct BinanceRest {
    client: reqwest::Client,
    base_url: String,
    /// Attempts per request before giving up.
    pub max_attempts: u32,
    /// First backoff after a 5xx or network error (doubles each time).
    pub backoff: Duration,
    /// Longest wait a `Retry-After` may impose.
    pub max_wait: Duration,
}

impl BinanceRest {
    /// A client of `base_url` (e.g. [`MAINNET`]; a trailing `/` is ignored): 20 s per request, six
    /// attempts, backoff from 500 ms, `Retry-After` waits capped at 120 s.
    pub fn new(base_url: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .user_agent(concat!("ia-agents/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("a TLS backend is compiled in"),
            base_url: base_url.trim_end_matches('/').to_string(),
            max_attempts: 6,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(120),
        }
    }

    /// One page of klines from `start_ms` (inclusive), at most [`PAGE`].
    pub async fn klines(
        &self,
        symbol: &str,
        interval: &str,
        start_ms: i64,
        end_ms: Option<i64>,
    ) -> Result<Vec<Candle>, BinanceError> {
        let mut url = format!(
            "{}/api/v3/klines?symbol={symbol}&interval={interval}&startTime={start_ms}&limit={PAGE}",
            self.base_url
        );
        if let Some(end) = end_ms {
            url.push_str(&format!("&endTime={end}"));
        }
        let mut backoff = self.backoff;
        let mut last = String::new();
        for attempt in 1..=self.max_attempts {
            let wait = match self.client.get(&url).send().await {
                Err(e) => {
                    last = format!("network error: {e}");
                    backoff
                }
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        let body = response.text().await.map_err(|e| BinanceError::Decode {
                            url: url.clone(),
                            error: e.to_string(),
                        })?;
                        return parse_klines(&body).map_err(|error| BinanceError::Decode {
                            url: url.clone(),
                            error,
                        });
                    }
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = response.text().await.unwrap_or_default();
                    match status.as_u16() {
                        429 | 418 => {
                            last = format!("rate limited ({status})");
                            tracing::warn!(%url, %status, ?retry_after, "Binance rate limit; waiting");
                            retry_after.unwrap_or(backoff).min(self.max_wait)
                        }
                        500..=599 => {
                            last = format!("server error {status}: {body}");
                            backoff
                        }
                        code => {
                            let message = serde_json::from_str::<serde_json::Value>(&body)
                                .ok()
                                .and_then(|v| v["msg"].as_str().map(String::from))
                                .unwrap_or(body);
                            if message.contains("Invalid symbol") {
                                return Err(BinanceError::UnknownSymbol {
                                    url,
                                    symbol: symbol.to_string(),
                                });
                            }
                            return Err(BinanceError::Refused {
                                url,
                                status: code,
                                message,
                            });
                        }
                    }
                }
            };
            if attempt < self.max_attempts {
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(self.max_wait);
            }
        }
        Err(BinanceError::GaveUp {
            url,
            attempts: self.max_attempts,
            last,
        })
    }

    /// Every closed kline from `from_ms` up to `to_ms`, page by page; `on_page` receives each page
    /// (already checked: ascending, no duplicates) as soon as it arrives, so callers can persist it.
    pub async fn klines_range(
        &self,
        symbol: &str,
        interval_ms: i64,
        interval: &str,
        from_ms: i64,
        to_ms: i64,
        mut on_page: impl FnMut(&[Candle]) -> std::io::Result<()>,
    ) -> Result<u64, RangeError> {
        let mut start = from_ms;
        let mut checker = CandleChecker::new();
        let mut total = 0;
        while start < to_ms {
            let page = self
                .klines(symbol, interval, start, Some(to_ms - 1))
                .await?;
            // only candles that have closed by `to_ms`
            let page: Vec<Candle> = page
                .into_iter()
                .filter(|c| c.open_time + interval_ms <= to_ms && c.open_time >= start)
                .collect();
            let Some(last) = page.last().map(|c| c.open_time) else {
                break;
            };
            for c in &page {
                checker.check(c).map_err(|problem| RangeError::BadCandle {
                    symbol: symbol.to_string(),
                    open_time: c.open_time,
                    problem,
                })?;
            }
            on_page(&page).map_err(RangeError::Write)?;
            total += page.len() as u64;
            start = last + interval_ms;
        }
        Ok(total)
    }
}

/// Why a range of klines could not be fetched or kept.
#[derive(Debug, thiserror::Error)]
pub enum RangeError {
    #[error(transparent)]
    /// A page could not be fetched.
    Binance(#[from] BinanceError),
    #[error("{symbol} kline at {open_time}: {problem}")]
    /// A kline fails the candle checks (bad prices, or out of order across pages).
    BadCandle {
        /// The symbol fetched.
        symbol: String,
        /// The kline's open time, ms since the epoch.
        open_time: i64,
        /// What is wrong with it.
        problem: super::CandleProblem,
    },
    #[error("writing klines: {0}")]
    /// `on_page` failed to keep a page.
    Write(std::io::Error),
}

/// Parses Binance's kline array-of-arrays.
pub fn parse_klines(body: &str) -> Result<Vec<Candle>, String> {
    let rows: Vec<Vec<serde_json::Value>> =
        serde_json::from_str(body).map_err(|e| format!("not a kline array: {e}"))?;
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let number = |j: usize, field: &str| -> Result<f64, String> {
                let v = row
                    .get(j)
                    .ok_or_else(|| format!("kline {i}: missing field {field}"))?;
                v.as_str()
                    .and_then(|s| s.parse::<f64>().ok())
                    .or_else(|| v.as_f64())
                    .ok_or_else(|| format!("kline {i}: field {field} is not a number: {v}"))
            };
            Ok(Candle {
                open_time: row
                    .first()
                    .and_then(serde_json::Value::as_i64)
                    .ok_or_else(|| format!("kline {i}: field open_time is not an integer"))?,
                open: number(1, "open")?,
                high: number(2, "high")?,
                low: number(3, "low")?,
                close: number(4, "close")?,
                volume: number(5, "volume")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::stream::arbitrary::{corrupt, finite, json, mutate};
    use proptest::prelude::*;
    use serde_json::{json, Value};

    #[test]
    fn parses_binance_klines_and_names_bad_fields() {
        let body = r#"[[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100","148976.11427815",1499644799999,"2434.19055334",308,"1756.87402397","28.46694368","0"]]"#;
        let candles = parse_klines(body).unwrap();
        assert_eq!(candles[0].open_time, 1_499_040_000_000);
        assert_eq!(candles[0].close, 0.015771);
        let e = parse_klines(r#"[[1, "x", "1", "1", "1", "1"]]"#).unwrap_err();
        assert_eq!(e, "kline 0: field open is not a number: \"x\"");
        assert!(parse_klines("{}")
            .unwrap_err()
            .starts_with("not a kline array"));
    }

    /// A page of klines as Binance sends it (12 columns, prices as strings), and its candles.
    fn arb_page() -> impl Strategy<Value = (Value, Vec<Candle>)> {
        let kline =
            (any::<i64>(), prop::array::uniform5(finite())).prop_map(|(t, [o, h, l, c, v])| {
                let row = json!([
                    t,
                    o.to_string(),
                    h.to_string(),
                    l.to_string(),
                    c.to_string(),
                    v.to_string(),
                    t.wrapping_add(3_599_999),
                    "2434.19055334",
                    308,
                    "1756.87402397",
                    "28.46694368",
                    "0"
                ]);
                let candle = Candle {
                    open_time: t,
                    open: o,
                    high: h,
                    low: l,
                    close: c,
                    volume: v,
                };
                (row, candle)
            });
        prop::collection::vec(kline, 0..5).prop_map(|rows| {
            let (rows, candles): (Vec<Value>, Vec<Candle>) = rows.into_iter().unzip();
            (Value::Array(rows), candles)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// A page of klines reads back exactly.
        #[test]
        fn kline_pages_read_back((page, candles) in arb_page()) {
            prop_assert_eq!(parse_klines(&page.to_string()), Ok(candles));
        }

        /// A page with any cell replaced by any JSON value, or removed: candles or an error naming
        /// the kline, never a panic.
        #[test]
        fn mutated_kline_pages_never_panic((mut page, _) in arb_page(), node in any::<usize>(), by in prop::option::of(json())) {
            mutate(&mut page, node, by);
            if let Err(e) = parse_klines(&page.to_string()) {
                prop_assert!(!e.is_empty());
            }
        }

        /// Corrupted pages and any text never panic.
        #[test]
        fn corrupted_kline_pages_never_panic((page, _) in arb_page(), flip in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>(), text in ".{0,200}") {
            let _ = parse_klines(&corrupt(&page.to_string(), flip, byte, cut));
            let _ = parse_klines(&text);
        }
    }
}
