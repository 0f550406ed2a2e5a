//! The HTTP API over a real SQLite store filled by a backtest: listings with paging and filters,
//! 4xx JSON errors naming the field, bearer-token escalation answers (401/403/202, rate limit),
//! the OpenAPI document, metrics and the WebSocket stream.

use agent::api::{serve, ApiState};
use agent::store::Store;
use futures::StreamExt;
use serde_json::Value;
use std::time::Duration;

async fn api() -> (
    String,
    tokio::sync::mpsc::Receiver<protocol::messages::EscalationResolution>,
    ApiState,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap().to_string();
    let status = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_trading-agent"))
            .args([
                "backtest",
                "--symbols",
                "BTCUSDT,ETHUSDT",
                "--from",
                "2020-03-01",
                "--to",
                "2020-03-10",
                "--out",
                &out,
            ])
            .output()
            .unwrap()
    });
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let store = Store::connect(&format!("sqlite://{out}/ia-agents.db"))
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let state = ApiState::new(store, "btc-eth-paper", Some("s3cret-token".into()), tx);
    let addr = serve(
        state.clone(),
        "127.0.0.1:0".parse().unwrap(),
        std::future::pending(),
    )
    .await
    .unwrap();
    (format!("http://{addr}"), rx, state, dir)
}

async fn get(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_the_record_with_paging_and_filters() {
    let (base, _rx, _state, _dir) = api().await;
    let (status, page) = get(&format!("{base}/api/v1/decisions?limit=10")).await;
    assert_eq!(status, 200);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 10);
    assert!(
        items
            .windows(2)
            .all(|w| w[0]["decidedAt"].as_i64() >= w[1]["decidedAt"].as_i64()),
        "newest first"
    );
    let (_, next) = get(&format!("{base}/api/v1/decisions?limit=10&offset=10")).await;
    assert_ne!(next["items"][0]["id"], items[0]["id"]);
    let (_, eth) = get(&format!(
        "{base}/api/v1/decisions?symbol=ETHUSDT&limit=1000"
    ))
    .await;
    assert!(eth["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["symbol"] == "ETHUSDT"));
    let from = items[5]["decidedAt"].as_i64().unwrap();
    let (_, recent) = get(&format!("{base}/api/v1/decisions?from={from}&limit=1000")).await;
    assert!(recent["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["decidedAt"].as_i64().unwrap() >= from));
    for route in ["orders", "assistants", "portfolio", "positions"] {
        let (status, _) = get(&format!("{base}/api/v1/{route}")).await;
        assert_eq!(status, 200, "{route}");
    }
    let (_, weights) = get(&format!("{base}/api/v1/assistants")).await;
    assert_eq!(weights["items"].as_array().unwrap().len(), 5);
    let (status, _) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 200);
    // the document is generated from the response types: a listing's items have their schema
    let (status, doc) = get(&format!("{base}/api/v1/openapi.json")).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert!(
        doc["components"]["schemas"]["DecisionItem"]["properties"]["decidedAt"].is_object(),
        "{doc}"
    );
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.is_empty() || metrics.contains("# TYPE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_4xx_naming_the_field() {
    let (base, _rx, _state, _dir) = api().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("symbol=btc-usdt", "symbol"),
        ("from=10&to=5", "from"),
        ("colour=red", "colour"),
    ] {
        let (status, body) = get(&format!("{base}/api/v1/decisions?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["field"], field, "{query}: {body}");
    }
    let (status, body) = get(&format!("{base}/api/v1/nothing")).await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalations_need_the_token_and_reach_the_coordinator() {
    let (base, mut rx, state, _dir) = api().await;
    let client = reqwest::Client::new();
    let post = |auth: Option<&str>, path: &str| {
        let mut r = client.post(format!("{base}/api/v1/escalations/{path}"));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    let first = post(None, "e1/approve").await.unwrap();
    let status = first.status().as_u16();
    assert_eq!(status, 401, "{}", first.text().await.unwrap());
    assert_eq!(
        post(Some("Bearer wrong"), "e1/approve")
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );
    let ok = post(
        Some("Bearer s3cret-token"),
        "btc-eth-paper_BTCUSDT_1_schedule/approve",
    )
    .await
    .unwrap();
    assert_eq!(ok.status().as_u16(), 202);
    let r = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.id.as_str(), r.approved),
        ("btc-eth-paper_BTCUSDT_1_schedule", true)
    );
    assert_eq!(
        post(Some("Bearer s3cret-token"), "e2/reject")
            .await
            .unwrap()
            .status()
            .as_u16(),
        202
    );
    assert!(!rx.recv().await.unwrap().approved);
    assert_eq!(
        post(Some("Bearer s3cret-token"), "e2/maybe")
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    // a connection whose body the server refused to read is closed after the 413; a client of
    // its own keeps that closed connection out of the pool the next requests reuse
    let big = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
        .post(format!("{base}/api/v1/escalations/e3/approve"))
        .header("authorization", "Bearer s3cret-token")
        .body(vec![b'x'; 64 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status().as_u16(), 413, "request size limit");
    // the mutating routes are rate limited
    let mut limited = false;
    for _ in 0..40 {
        if post(Some("Bearer s3cret-token"), "e4/approve")
            .await
            .unwrap()
            .status()
            .as_u16()
            == 429
        {
            limited = true;
            break;
        }
        let _ = rx.try_recv();
    }
    assert!(limited);

    // the stream carries what the coordinator broadcasts
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut ws = (base.replace("http://", "ws://") + "/api/v1/stream")
        .into_client_request()
        .unwrap();
    ws.headers_mut()
        .insert("authorization", "Bearer s3cret-token".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    state
        .events
        .send(serde_json::json!({"type": "decision", "id": "d1"}))
        .unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(2), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(frame.to_text().unwrap().contains("\"d1\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_and_its_reads_are_served() {
    let (base, _rx, state, _dir) = api().await;
    let page = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("connect-src 'self'"));
    assert!(page.text().await.unwrap().contains("/console.js"));

    // one decision with its debate, named by id; an unknown one is a 404 naming the id
    let (_, list) = get(&format!("{base}/api/v1/decisions?limit=1")).await;
    let id = list["items"][0]["id"].as_str().unwrap().to_string();
    let (status, one) = get(&format!("{base}/api/v1/decisions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["id"], id.as_str());
    let transcript = one["transcript"].as_array().unwrap();
    assert!(transcript.len() >= 5, "every voter's opinion: {one}");
    assert!(transcript.iter().all(|o| o["reasoning"].is_string()));
    assert!(one["rounds"].as_array().is_some_and(|r| !r.is_empty()));
    let (status, missing) = get(&format!("{base}/api/v1/decisions/nope")).await;
    assert_eq!((status, missing["field"].as_str()), (404, Some("id")));

    // the equity curve, oldest first, bounded; a bad limit names the field
    let (status, curve) = get(&format!("{base}/api/v1/equity?limit=50")).await;
    assert_eq!(status, 200);
    let points = curve["items"].as_array().unwrap();
    assert!(!points.is_empty() && points.len() <= 50);
    assert!(points
        .windows(2)
        .all(|w| w[0]["at"].as_i64() < w[1]["at"].as_i64()));
    let (status, bad) = get(&format!("{base}/api/v1/equity?limit=0")).await;
    assert_eq!((status, bad["field"].as_str()), (400, Some("limit")));

    // the team: stored weights and the opinion each gave in the latest decision
    let (_, team) = get(&format!("{base}/api/v1/assistants")).await;
    let team = team["items"].as_array().unwrap();
    assert_eq!(team.len(), 5, "{team:?}");
    assert!(team.iter().all(|a| a["weight"].is_f64()));
    assert!(team.iter().all(|a| a["lastOpinion"]["action"].is_string()));
    assert!(
        team.iter().all(|a| a["healthy"] == false),
        "no heartbeat in a backtest"
    );

    // nothing pending, and who the API serves
    let (_, pending) = get(&format!("{base}/api/v1/escalations")).await;
    assert_eq!(pending["items"], serde_json::json!([]));
    let (_, info) = get(&format!("{base}/api/v1/info")).await;
    assert_eq!(info["strategy"], state.strategy.as_str());
    let (status, _) = get(&format!("{base}/api/v1/assistants?x=1")).await;
    assert_eq!(status, 400, "unknown parameters are refused");
}
