//! The Binance REST client and `trading-agent data download` against a local server on 127.0.0.1
//! that speaks Binance's documented kline format, including a 429 with Retry-After and an unknown symbol.

use agent::market::binance::{BinanceError, BinanceRest};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use warp::Filter;

const HOUR: i64 = 3_600_000;

/// A kline row as Binance sends it.
fn kline(open_time: i64) -> serde_json::Value {
    let p = 100.0 + ((open_time / HOUR) as f64 * 0.1).sin();
    serde_json::json!([
        open_time,
        format!("{p:.8}"),
        format!("{:.8}", p + 1.0),
        format!("{:.8}", p - 1.0),
        format!("{:.8}", p + 0.5),
        "12.5",
        open_time + HOUR - 1,
        "1250.0",
        42,
        "6.0",
        "600.0",
        "0"
    ])
}

/// Serves /api/v3/klines; the first `rate_limited` requests get 429 with Retry-After: 1.
async fn binance(rate_limited: u32) -> (SocketAddr, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let route = warp::path!("api" / "v3" / "klines")
        .and(warp::query::<HashMap<String, String>>())
        .map(move |q: HashMap<String, String>| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            if n < rate_limited {
                return warp::http::Response::builder()
                    .status(429)
                    .header("Retry-After", "1")
                    .body(r#"{"code":-1003,"msg":"Too many requests."}"#.to_string())
                    .unwrap();
            }
            if q.get("symbol").map(String::as_str) != Some("BTCUSDT") {
                return warp::http::Response::builder()
                    .status(400)
                    .body(r#"{"code":-1121,"msg":"Invalid symbol."}"#.to_string())
                    .unwrap();
            }
            let start: i64 = q["startTime"].parse().unwrap();
            let end: i64 = q.get("endTime").map_or(i64::MAX, |e| e.parse().unwrap());
            let limit: usize = q["limit"].parse().unwrap();
            let first = (start + HOUR - 1) / HOUR * HOUR;
            let rows: Vec<_> = (0..limit as i64)
                .map(|i| first + i * HOUR)
                .take_while(|t| *t <= end)
                .map(kline)
                .collect();
            warp::http::Response::builder()
                .status(200)
                .body(serde_json::to_string(&rows).unwrap())
                .unwrap()
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(route).incoming(listener).run());
    (addr, calls)
}

#[tokio::test]
async fn pages_through_a_range_and_honours_retry_after() {
    let (addr, calls) = binance(1).await;
    let client = BinanceRest::new(&format!("http://{addr}"));
    let started = Instant::now();
    let mut pages = vec![];
    let from = 1_600_000_000_000 / HOUR * HOUR;
    let n = client
        .klines_range("BTCUSDT", HOUR, "1h", from, from + 2500 * HOUR, |page| {
            pages.push(page.len());
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(n, 2500);
    assert_eq!(pages, vec![1000, 1000, 500]);
    assert_eq!(calls.load(Ordering::SeqCst), 4); // one 429, then three pages
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After"
    );
}

#[tokio::test]
async fn unknown_symbols_and_persistent_rate_limits_are_named() {
    let (addr, _) = binance(0).await;
    let client = BinanceRest::new(&format!("http://{addr}"));
    let e = client.klines("NOPEUSDT", "1h", 0, None).await.unwrap_err();
    assert!(matches!(e, BinanceError::UnknownSymbol { .. }), "{e}");
    assert!(e.to_string().contains("unknown symbol \"NOPEUSDT\""));

    let (addr, _) = binance(100).await;
    let mut client = BinanceRest::new(&format!("http://{addr}"));
    client.max_attempts = 2;
    let e = client
        .klines("BTCUSDT", "1h", 0, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("gave up after 2 attempts: rate limited (429"),
        "{e}"
    );

    let mut nobody = BinanceRest::new("http://127.0.0.1:1");
    nobody.max_attempts = 2;
    nobody.backoff = Duration::from_millis(10);
    let e = nobody
        .klines("BTCUSDT", "1h", 0, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("http://127.0.0.1:1/api/v3/klines") && e.contains("network error"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_download_writes_a_resumable_cache_the_backtest_reads() {
    let (addr, _) = binance(0).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().to_str().unwrap().to_string();
    let url = format!("http://{addr}");
    let run = move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_trading-agent"))
            .args([
                "data",
                "download",
                "--symbol",
                "BTCUSDT",
                "--interval",
                "1h",
                "--days",
                "3",
            ])
            .args(["--dir", &cache, "--base-url", &url])
            .output()
            .unwrap()
    };
    let first = tokio::task::block_in_place(&run);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let path = dir.path().join("BTCUSDT-1h.csv");
    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
    assert_eq!(lines, 1 + 72, "header and three days of hours");
    // a second run resumes: nothing new (or the hour that closed meanwhile), no duplicates
    let second = tokio::task::block_in_place(&run);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(String::from_utf8_lossy(&second.stderr).contains("resuming after"));
    let candles = agent::market::read_candles(&path).unwrap(); // checks: ascending, no duplicates
    assert!(candles.len() == 72 || candles.len() == 73);
}
