//! The ticker and depth streams against a local server speaking Binance's combined-stream protocol:
//! the client subscribes, answers pings, skips a bad frame, survives a disconnect and subscribes again.

use agent::market::book::{BookEvent, BookStream};
use futures::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use warp::Filter;

fn ticker(last: &str) -> String {
    serde_json::json!({"stream": "btcusdt@ticker", "data": {"e": "24hrTicker", "E": 1, "s": "BTCUSDT",
        "P": "2.0", "c": last, "b": "99.0", "a": "101.0", "v": "10.0"}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribes_reconnects_and_subscribes_again() {
    let connections = Arc::new(AtomicU32::new(0));
    let subscriptions = Arc::new(Mutex::new(Vec::<serde_json::Value>::new()));
    let pongs = Arc::new(AtomicU32::new(0));
    let (counter, seen, pong_count) = (connections.clone(), subscriptions.clone(), pongs.clone());
    let ws = warp::path("stream").and(warp::ws()).map(move |ws: warp::ws::Ws| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let (seen, pong_count) = (seen.clone(), pong_count.clone());
        ws.on_upgrade(move |mut socket| async move {
            // the client's first frame is its subscription
            if let Some(Ok(m)) = socket.next().await {
                seen.lock().unwrap().push(serde_json::from_str(m.to_str().unwrap_or("null")).unwrap());
            }
            let _ = socket.send(warp::ws::Message::text(r#"{"result":null,"id":1}"#)).await;
            let _ = socket.send(warp::ws::Message::ping(b"hi".to_vec())).await;
            let frames = if n == 0 {
                vec![
                    ticker("100.0"),
                    r#"{"stream":"btcusdt@depth5@100ms","data":{"lastUpdateId":9,"bids":[["99.0","1.0"]],"asks":[["101.0","2.0"]]}}"#.to_string(),
                    r#"{"stream":"btcusdt@depth5@100ms","data":{"lastUpdateId":10,"bids":[["x","1.0"]],"asks":[]}}"#.to_string(),
                ]
            } else {
                vec![ticker("105.0")]
            };
            for f in frames {
                let _ = socket.send(warp::ws::Message::text(f)).await;
            }
            // read the pong, then drop the first connection
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, socket.next()).await {
                if m.is_pong() {
                    pong_count.fetch_add(1, Ordering::SeqCst);
                    break;
                }
            }
            if n == 0 {
                let _ = socket.close().await;
            } else {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        })
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(ws).incoming(listener).run());

    let stream = BookStream {
        ws_url: format!("ws://{addr}"),
        symbols: vec!["BTCUSDT".into()],
        depth_levels: 5,
        idle_timeout: Duration::from_secs(10),
        max_backoff: Duration::from_millis(200),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let task = tokio::spawn(stream.run(tx));
    let mut events = Vec::new();
    while events.len() < 3 {
        let e = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("events keep coming across the disconnect")
            .unwrap();
        events.push(e);
    }
    task.abort();
    let lasts: Vec<f64> = events
        .iter()
        .filter_map(|e| match e {
            BookEvent::Ticker(t) => Some(t.last),
            _ => None,
        })
        .collect();
    assert_eq!(lasts, [100.0, 105.0]);
    let BookEvent::Depth(depth) = &events[1] else {
        panic!("the depth frame: {events:?}")
    };
    assert_eq!(
        (depth.symbol.as_str(), depth.asks[0]),
        ("BTCUSDT", (101.0, 2.0))
    );
    assert_eq!(connections.load(Ordering::SeqCst), 2);
    let subscriptions = subscriptions.lock().unwrap().clone();
    assert_eq!(
        subscriptions.len(),
        2,
        "subscribed again after the reconnect"
    );
    for s in subscriptions {
        assert_eq!(s["method"], "SUBSCRIBE");
        assert_eq!(
            s["params"],
            serde_json::json!(["btcusdt@ticker", "btcusdt@depth5@100ms"])
        );
    }
    assert!(pongs.load(Ordering::SeqCst) >= 1, "pings are answered");
}
