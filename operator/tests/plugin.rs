//! `kubectl ia-agents` against the in-memory API server: status (text, JSON, YAML), approve and
//! reject by annotation, pause and resume, why through the service proxy with the Secret's token,
//! and the report bundle.

use operator::fake_api::FakeApi;
use operator::plugin::{run, Command, Output};
use serde_json::{json, Value};

const NS: &str = "trading";
const ID: &str = "btc_BTCUSDT_1583373600000_schedule";

fn strategy() -> Value {
    json!({
        "apiVersion": "trading.ia-agents.dev/v1alpha1", "kind": "Strategy",
        "metadata": {"name": "btc", "namespace": NS},
        "spec": {"symbols": ["BTCUSDT"], "consensusPolicyRef": {"name": "balanced"}, "capital": 10000.0},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "TeamReady", "message": "7 of 7 assistants ready",
                            "lastTransitionTime": "2026-12-03T10:00:00Z"}],
            "lastDecision": {"id": "btc_BTCUSDT_1583370000000_schedule", "symbol": "BTCUSDT", "action": "HOLD",
                             "confidence": 0.8, "consensusReached": true, "rounds": 1, "at": "2026-12-03T10:00:00Z"},
            "pendingEscalations": [{"id": ID, "symbol": "BTCUSDT", "since": "2026-12-03T11:00:00Z"}],
            "portfolio": {"equity": 10234.5, "pnl": 234.5, "openPositions": 1},
            "apiTokenSecret": "btc-api-token"
        }
    })
}

fn assistant(name: &str, role: &str, strategy: &str) -> Value {
    json!({
        "apiVersion": "trading.ia-agents.dev/v1alpha1", "kind": "TradingAssistant",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"strategyRef": {"name": strategy}, "role": role, "replicas": 1, "weight": 1.0},
        "status": {"replicas": 1, "readyReplicas": 1, "weight": 1.2}
    })
}

fn cluster() -> (kube::Client, FakeApi) {
    let (client, api) = FakeApi::start();
    api.insert(strategy());
    api.insert(assistant("strategist", "strategist", "btc"));
    api.insert(assistant("risk-manager", "riskManager", "btc"));
    api.insert(assistant("someone-else", "strategist", "eth"));
    (client, api)
}

#[tokio::test]
async fn status_shows_readiness_the_last_decision_escalations_equity_and_the_team() {
    let (client, _api) = cluster();
    let screen = run(
        client.clone(),
        NS,
        Output::Text,
        Command::Status {
            strategy: "btc".into(),
        },
    )
    .await
    .unwrap();
    for expected in [
        "Ready=True",
        "equity 10234.50",
        ID,
        "strategist",
        "risk-manager",
        "1/1",
        "btc-api-token",
    ] {
        assert!(
            screen.contains(expected),
            "{expected:?} missing from:\n{screen}"
        );
    }
    assert!(
        !screen.contains("someone-else"),
        "only the Strategy's own assistants"
    );
    println!("{screen}"); // the README shows this screen
    let json: Value = serde_json::from_str(
        &run(
            client.clone(),
            NS,
            Output::Json,
            Command::Status {
                strategy: "btc".into(),
            },
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(json["pendingEscalations"][0]["id"], ID);
    assert_eq!(json["assistants"].as_array().unwrap().len(), 2);
    let yaml: Value = serde_yaml::from_str(
        &run(
            client.clone(),
            NS,
            Output::Yaml,
            Command::Status {
                strategy: "btc".into(),
            },
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(yaml["portfolio"]["equity"], 10234.5);
    let missing = run(
        client,
        NS,
        Output::Text,
        Command::Status {
            strategy: "nope".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("strategy trading/nope: not found"),
        "{missing}"
    );
}

#[tokio::test]
async fn approve_reject_pause_and_resume_change_what_the_operator_acts_on() {
    let (client, api) = cluster();
    let said = run(
        client.clone(),
        NS,
        Output::Text,
        Command::Approve { id: ID.into() },
    )
    .await
    .unwrap();
    assert!(said.contains("approved"), "{said}");
    let stored = api
        .get("trading.ia-agents.dev/v1alpha1", "Strategy", NS, "btc")
        .unwrap();
    assert_eq!(
        stored["metadata"]["annotations"]["trading.ia-agents.dev/approve"],
        ID
    );
    run(
        client.clone(),
        NS,
        Output::Text,
        Command::Reject { id: ID.into() },
    )
    .await
    .unwrap();
    let stored = api
        .get("trading.ia-agents.dev/v1alpha1", "Strategy", NS, "btc")
        .unwrap();
    assert_eq!(
        stored["metadata"]["annotations"]["trading.ia-agents.dev/reject"],
        ID
    );
    let unknown = run(
        client.clone(),
        NS,
        Output::Text,
        Command::Approve {
            id: "nope_X_1_schedule".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(
        unknown
            .to_string()
            .contains("no Strategy in trading has it pending"),
        "{unknown}"
    );

    run(
        client.clone(),
        NS,
        Output::Text,
        Command::Pause {
            strategy: "btc".into(),
        },
    )
    .await
    .unwrap();
    let stored = api
        .get("trading.ia-agents.dev/v1alpha1", "Strategy", NS, "btc")
        .unwrap();
    assert_eq!(stored["spec"]["paused"], true);
    run(
        client,
        NS,
        Output::Text,
        Command::Resume {
            strategy: "btc".into(),
        },
    )
    .await
    .unwrap();
    let stored = api
        .get("trading.ia-agents.dev/v1alpha1", "Strategy", NS, "btc")
        .unwrap();
    assert_eq!(stored["spec"]["paused"], false);
}

#[tokio::test]
async fn why_reads_the_debate_through_the_service_proxy() {
    let (client, api) = cluster();
    api.insert(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "btc-api-token", "namespace": NS},
                      "data": {"token": "czNjcmV0"}}));
    api.serve_at(
        &format!("/api/v1/namespaces/{NS}/services/btc-coordinator:http/proxy/api/v1/decisions/{ID}"),
        json!({"id": ID, "symbol": "BTCUSDT", "action": "BUY", "confidence": 0.69, "price": 8919.89,
               "consensusReached": false, "escalated": true, "vetoed": false, "rejected": false,
               "rounds": [{"round": 1, "scores": {"BUY": 1.34, "HOLD": 0.47}}],
               "transcript": [
                   {"round": 1, "assistant": "technical-analyst", "role": "technicalAnalyst", "action": "BUY", "confidence": 0.7, "reasoning": "score +0.63 from 4 active signals"},
                   {"round": 1, "assistant": "fundamental-analyst", "role": "fundamentalAnalyst", "action": "HOLD", "confidence": 0.0, "reasoning": "no news"}]}),
    );
    let text = run(
        client.clone(),
        NS,
        Output::Text,
        Command::Why {
            decision: ID.into(),
            strategy: None,
        },
    )
    .await
    .unwrap();
    assert!(text.contains("escalated to a human"), "{text}");
    assert!(
        text.contains("technical-analyst") && text.contains("score +0.63"),
        "{text}"
    );
    assert!(text.contains("abstains"), "{text}");
    let requests = api.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.contains("/secrets/btc-api-token")),
        "{requests:?}"
    );
    let missing = run(
        client,
        NS,
        Output::Json,
        Command::Why {
            decision: "btc_X_1_schedule".into(),
            strategy: None,
        },
    )
    .await
    .unwrap_err();
    assert!(
        missing.to_string().contains("btc_X_1_schedule"),
        "{missing}"
    );
}

#[tokio::test]
async fn report_writes_the_crs_events_children_and_logs_without_secrets() {
    let (client, api) = cluster();
    api.insert(json!({"apiVersion": "trading.ia-agents.dev/v1alpha1", "kind": "ConsensusPolicy",
                      "metadata": {"name": "balanced", "namespace": NS}, "spec": {"voters": ["strategist"]}}));
    api.insert(json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1", "namespace": NS},
                      "involvedObject": {"kind": "Strategy", "name": "btc"}, "reason": "EscalationPending", "message": "waiting"}));
    api.insert(json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e2", "namespace": NS},
                      "involvedObject": {"kind": "Strategy", "name": "unrelated"}, "reason": "Other"}));
    api.insert(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                      "metadata": {"name": "btc-coordinator", "namespace": NS, "labels": {"trading.ia-agents.dev/strategy": "btc"}},
                      "status": {"replicas": 1, "readyReplicas": 1}}));
    api.insert(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "btc-api-token", "namespace": NS},
                      "data": {"token": "czNjcmV0"}}));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle");
    let said = run(
        client,
        NS,
        Output::Text,
        Command::Report {
            strategy: "btc".into(),
            out: out.clone(),
        },
    )
    .await
    .unwrap();
    assert!(said.contains("1 events, 1 deployments"), "{said}");
    for file in [
        "strategy.yaml",
        "consensuspolicy.yaml",
        "tradingassistants.yaml",
        "events.yaml",
        "children.yaml",
    ] {
        assert!(out.join(file).exists(), "{file} missing: {said}");
    }
    let events = std::fs::read_to_string(out.join("events.yaml")).unwrap();
    assert!(events.contains("EscalationPending") && !events.contains("unrelated"));
    let children = std::fs::read_to_string(out.join("children.yaml")).unwrap();
    assert!(children.contains("btc-coordinator") && children.contains("readyReplicas"));
    let everything: String = walk(&out)
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(
        !everything.contains("czNjcmV0") && !everything.contains("s3cret"),
        "no Secret in the bundle"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
