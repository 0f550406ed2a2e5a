//! The WebSocket kline stream against local servers speaking Binance's formats: closed candles flow,
//! a dropped connection is re-established, the gap is back-filled from REST, and nothing is repeated.

use test_support as support;
use test_support::binance;

use agent::market::binance::BinanceRest;
use agent::market::stream::KlineStream;
use binance::{current_minute, kline_frame, MINUTE};
use futures::SinkExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use warp::Filter;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_disconnect_without_losing_or_repeating_candles() {
    let current = current_minute().await; // the minute still forming
    let connections = Arc::new(AtomicU32::new(0));
    let counter = connections.clone();
    let ws = warp::path("stream")
        .and(warp::ws())
        .map(move |ws: warp::ws::Ws| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            ws.on_upgrade(move |mut socket| async move {
                let frames: Vec<String> = if n == 0 {
                    // the last back-filled minute again (must not repeat), a forming one, a bad one, a new one
                    vec![
                        kline_frame(current - MINUTE, true),
                        kline_frame(current, false),
                        "{not json".to_string(),
                        kline_frame(current, true),
                    ]
                } else {
                    vec![kline_frame(current + MINUTE, true)]
                };
                for f in frames {
                    let _ = socket.send(warp::ws::Message::text(f)).await;
                }
                if n == 0 {
                    let _ = socket.close().await; // the disconnect
                } else {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            })
        });
    let addr = binance::serve(ws.or(binance::klines_before(current))).await;

    let stream = KlineStream {
        ws_url: format!("ws://{addr}"),
        rest: BinanceRest::new(&format!("http://{addr}")),
        symbols: vec!["BTCUSDT".into()],
        interval: "1m".into(),
        interval_ms: MINUTE,
        idle_timeout: Duration::from_secs(10),
        max_backoff: Duration::from_millis(200),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    // we hold candles up to five minutes ago: four closed minutes are missing
    let since: HashMap<String, i64> = [("BTCUSDT".to_string(), current - 5 * MINUTE)].into();
    let task = tokio::spawn(stream.run(since, tx));
    let mut got = vec![];
    while got.len() < 6 {
        let sc = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("candles keep coming")
            .unwrap();
        got.push(sc.candle.open_time);
    }
    drop(rx);
    task.abort();
    let expected: Vec<i64> = (-4..=1).map(|k| current + k * MINUTE).collect();
    assert_eq!(
        got, expected,
        "back-filled, streamed, reconnected: each minute once, in order"
    );
    assert!(connections.load(Ordering::SeqCst) >= 2, "it reconnected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_local_warms_up_then_decides_on_live_candles() {
    let (addr, current) = binance::with_live_candles(3).await;
    let dir = tempfile::tempdir().unwrap();
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/samples/strategy.yaml"
    ))
    .unwrap();
    let strategy = dir.path().join("strategy.yaml");
    std::fs::write(
        &strategy,
        sample
            .replace("interval: 1h", "interval: 1m")
            .replace("analysis: \"0 * * * *\"", "analysis: \"* * * * *\""),
    )
    .unwrap();
    let out = dir.path().to_str().unwrap().to_string();
    let output = tokio::task::block_in_place(|| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_trading-agent"));
        command
            .args([
                "run",
                "--local",
                "--symbols",
                "BTCUSDT",
                "--warmup",
                "60",
                "--max-cycles",
                "3",
                "--json",
            ])
            .args(["--strategy-file", strategy.to_str().unwrap()])
            .args([
                "--policy-file",
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../config/samples/consensuspolicy.yaml"
                ),
            ])
            .args([
                "--rest-url",
                &format!("http://{addr}"),
                "--ws-url",
                &format!("ws://{addr}"),
                "--out",
                &out,
            ]);
        support::output_within(command, Duration::from_secs(60))
    });
    let lines = support::processes::json_lines(&output);
    // the 60 warm-up candles are history (no cycle on them); the three live candles are decided
    // on, and the run ends with the last of them (the feed sends no fourth)
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines
        .iter()
        .all(|l| l["decided_at"].as_i64().unwrap() > current));
    assert!(String::from_utf8_lossy(&output.stderr).contains("60 warm-up candles"));

    let unknown = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_trading-agent"))
            .args([
                "run",
                "--local",
                "--symbols",
                "DOGEUSDT",
                "--rest-url",
                &format!("http://{addr}/nope"),
                "--out",
                &out,
            ])
            .output()
            .unwrap()
    });
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("warming up DOGEUSDT"));
}
