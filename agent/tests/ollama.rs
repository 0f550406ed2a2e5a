//! The LLM path against a local HTTP server that speaks Ollama's `/api/chat` and `/api/tags`:
//! a good answer is used, and a slow, malformed or failing one falls back to the deterministic rule
//! and is counted; requests per model are bounded.

use agent::llm::{LlmReasoner, LLM_FALLBACKS};
use agent::roles::Judgement;
use protocol::messages::{MarketSnapshot, RoundRequest};
use protocol::{Action, Role};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use warp::Filter;

/// Behaviour by model name: good, slow, delay (200 ms, good), garbage, broken.
async fn ollama() -> SocketAddr {
    let tags = warp::path!("api" / "tags").map(|| {
        warp::reply::json(&serde_json::json!({"models": [{"name": "good", "modified_at": "2026-11-25T00:00:00Z", "size": 1}]}))
    });
    let chat = warp::path!("api" / "chat").and(warp::body::json()).then(
        |body: serde_json::Value| async move {
            let model = body["model"].as_str().unwrap_or_default().to_string();
            assert_eq!(body["format"], "json", "JSON output is requested");
            assert!(
                body["messages"][1]["content"]
                    .as_str()
                    .unwrap()
                    .contains("BTCUSDT"),
                "the prompt carries the market"
            );
            let content = match model.as_str() {
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    r#"{"action":"SELL","confidence":0.9,"reasoning":"too late"}"#.to_string()
                }
                "delay" => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    r#"{"action":"SELL","confidence":0.6,"reasoning":"later"}"#.to_string()
                }
                "garbage" => "the market will go up, trust me".to_string(),
                "broken" => {
                    return warp::http::Response::builder()
                        .status(500)
                        .body(r#"{"error":"model crashed"}"#.to_string())
                        .unwrap()
                }
                _ => r#"{"action":"SELL","confidence":0.8,"reasoning":"momentum is fading"}"#
                    .to_string(),
            };
            let reply = serde_json::json!({
                "model": model, "created_at": "2026-11-25T00:00:00Z",
                "message": {"role": "assistant", "content": content}, "done": true
            });
            warp::http::Response::builder()
                .status(200)
                .body(reply.to_string())
                .unwrap()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(tags.or(chat)).incoming(listener).run());
    addr
}

fn request() -> RoundRequest {
    RoundRequest {
        cycle_id: "c".into(),
        round: 1,
        strategy: "s".into(),
        snapshot: MarketSnapshot::flat("BTCUSDT", 0, 1.0),
        debate: vec![],
        deadline: 0,
        round_timeout_ms: 0,
    }
}

fn rule() -> Judgement {
    Judgement::new(Action::Buy, 0.55, "rule says buy").with("score", 0.3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_answers_are_used_and_bad_ones_fall_back() {
    let addr = ollama().await;
    let url = format!("http://{addr}");
    let reasoner =
        |model: &str| LlmReasoner::new(&url, model, 0.2, Duration::from_millis(500), 4).unwrap();

    let (j, llm) = reasoner("good")
        .judge(Role::TechnicalAnalyst, &request(), rule())
        .await;
    assert!(llm);
    assert_eq!(
        (j.action, j.confidence, j.reasoning.as_str()),
        (Action::Sell, 0.8, "momentum is fading")
    );
    assert_eq!(j.evidence["score"], 0.3, "the figures stay the rule's");

    for (model, reason) in [
        ("slow", "timeout"),
        ("garbage", "invalid"),
        ("broken", "error"),
    ] {
        let before = LLM_FALLBACKS
            .with_label_values(&["technicalAnalyst", reason])
            .get();
        let (j, llm) = reasoner(model)
            .judge(Role::TechnicalAnalyst, &request(), rule())
            .await;
        assert!(!llm, "{model}");
        assert_eq!(
            j.action,
            Action::Buy,
            "{model}: the deterministic rule decides"
        );
        assert!(j.reasoning.contains("LLM fallback"), "{}", j.reasoning);
        assert_eq!(
            LLM_FALLBACKS
                .with_label_values(&["technicalAnalyst", reason])
                .get(),
            before + 1,
            "{model}"
        );
    }

    // nobody listening: an error, not a hang
    let (_, llm) = LlmReasoner::new("http://127.0.0.1:1", "good", 0.2, Duration::from_secs(2), 1)
        .unwrap()
        .judge(Role::Strategist, &request(), rule())
        .await;
    assert!(!llm);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_model_gives_way_to_the_rule_within_the_round() {
    let addr = ollama().await;
    // the model may take 20 s, but the round waits only 400 ms: the assistant must answer in time
    let patient = LlmReasoner::new(
        &format!("http://{addr}"),
        "slow",
        0.2,
        Duration::from_secs(20),
        1,
    )
    .unwrap();
    let in_a_short_round = RoundRequest {
        round_timeout_ms: 400,
        ..request()
    };
    assert_eq!(
        patient.budget(&in_a_short_round),
        Duration::from_millis(360)
    );
    assert_eq!(
        patient.budget(&request()),
        Duration::from_secs(20),
        "no round timeout said"
    );
    let long_round = RoundRequest {
        round_timeout_ms: 60_000,
        ..request()
    };
    assert_eq!(patient.budget(&long_round), Duration::from_secs(20));

    let started = Instant::now();
    let (j, llm) = patient
        .judge(Role::Strategist, &in_a_short_round, rule())
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert!(!llm);
    assert_eq!(j.action, Action::Buy, "the deterministic rule answers");
    assert!(
        j.reasoning.contains("no answer within 360ms"),
        "{}",
        j.reasoning
    );

    // a request waiting for the model's only slot counts that wait against the round too
    let busy = patient.clone();
    let first = tokio::spawn(async move {
        let long = RoundRequest {
            round_timeout_ms: 60_000,
            ..request()
        };
        busy.judge(Role::Strategist, &long, rule()).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let (_, llm) = patient
        .judge(Role::Strategist, &in_a_short_round, rule())
        .await;
    assert!(!llm);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert!(
        first.await.unwrap().1,
        "the first request got the model's answer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_model_are_bounded() {
    let addr = ollama().await;
    let one_at_a_time = LlmReasoner::new(
        &format!("http://{addr}"),
        "delay",
        0.2,
        Duration::from_secs(5),
        1,
    )
    .unwrap();
    let started = Instant::now();
    let r = request();
    let asks = (0..3).map(|_| one_at_a_time.judge(Role::Strategist, &r, rule()));
    let results = futures::future::join_all(asks).await;
    assert!(results.iter().all(|(_, llm)| *llm));
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_bad_url_is_named() {
    let e = LlmReasoner::new("not a url", "m", 0.2, Duration::from_secs(1), 1)
        .err()
        .unwrap();
    assert!(e.contains("\"not a url\""), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backtest_reasons_with_the_model_and_records_it() {
    use sqlx::Row;
    let addr = ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap().to_string();
    let url = format!("http://{addr}");
    let output = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_trading-agent"))
            .args([
                "backtest",
                "--symbols",
                "BTCUSDT",
                "--from",
                "2020-03-01",
                "--to",
                "2020-03-01",
                "--out",
                &out,
            ])
            .args(["--ollama-url", &url, "--model", "good"])
            .output()
            .unwrap()
    });
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{out}/ia-agents.db"))
        .await
        .unwrap();
    let by_llm = |llm: bool, role: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query("SELECT COUNT(*) FROM opinions WHERE llm = $1 AND role = $2")
                .bind(llm)
                .bind(role)
                .fetch_one(&pool)
                .await
                .unwrap()
                .get::<i64, _>(0)
        }
    };
    assert!(
        by_llm(true, "technicalAnalyst").await >= 24,
        "every cycle asked the model"
    );
    assert_eq!(
        by_llm(true, "riskManager").await,
        0,
        "the risk manager stays rule-bound"
    );
}
