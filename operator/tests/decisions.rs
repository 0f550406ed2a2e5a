//! Consensus outcomes from a real nats-server (started on 127.0.0.1 by the test) into Strategy
//! conditions, and the approve annotation relayed to NATS, against the in-memory API server.

// a scenario test reads top to bottom; the 100-line limit is for the code under test
#![allow(clippy::too_many_lines)]

mod common;
use test_support as support;

use common::{sample, samples, CRD, NS};

use futures::StreamExt;
use operator::controllers::{strategy, Context};
use operator::decisions::{DecisionWatchers, TeamNats};
use operator::fake_api::FakeApi;
use protocol::messages::{
    decode, encode, AuditHead, Decision, Escalation, Message, PortfolioSnapshot, RoundTally, Vote,
};
use protocol::subjects::{Subjects, STREAM_AUDIT, STREAM_DECISIONS, STREAM_DECISIONS_SUBJECTS};
use protocol::Action;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn strategy_with_nats(url: &str) -> Value {
    let mut s = sample("strategy.yaml", 0);
    s["spec"]["dependencies"]["nats"] = json!({"url": url});
    s
}

/// A client of the team's NATS at `url`, with the decision stream created as the agents create it.
async fn decision_stream(url: &str) -> (async_nats::Client, async_nats::jetstream::Context) {
    let nats = async_nats::connect(url).await.unwrap();
    let jetstream = async_nats::jetstream::new(nats.clone());
    jetstream
        .get_or_create_stream(async_nats::jetstream::stream::Config {
            name: STREAM_DECISIONS.into(),
            subjects: STREAM_DECISIONS_SUBJECTS.map(String::from).to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    (nats, jetstream)
}

/// Waits until the Strategy's status satisfies `check`.
async fn eventually(api: &FakeApi, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let s = api.get(CRD, "Strategy", NS, "btc-eth-paper").unwrap();
        if check(&s["status"]) {
            return s["status"].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: status is {}",
            s["status"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn condition(status: &Value, type_: &str) -> Option<Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}

fn decision(id: &str, consensus: bool, at: i64) -> Message {
    Message::Decision(Decision {
        id: id.into(),
        strategy: "btc-eth-paper".into(),
        symbol: "BTCUSDT".into(),
        action: Action::Sell,
        confidence: 0.81,
        consensus_reached: consensus,
        escalated: !consensus,
        vetoed: false,
        rejected: false,
        resolved_by: None,
        rounds: vec![RoundTally {
            round: 1,
            votes: vec![Vote {
                assistant: "technical-analyst".into(),
                role: protocol::Role::TechnicalAnalyst,
                action: Action::Sell,
                confidence: 0.9,
                weight: 1.37,
                veto: false,
            }],
            scores: [(Action::Sell, 2.0)].into(),
            answered_weight: 3.0,
            total_weight: 3.0,
        }],
        transcript: vec![],
        price: 100.0,
        decided_at: at,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_and_escalations_become_strategy_conditions() {
    let Some(mut server) = support::NatsServer::start() else {
        return;
    };
    let (client, api) = FakeApi::start();
    api.insert(strategy_with_nats(&server.url()));
    for ta in samples("team.yaml") {
        api.insert(ta);
    }
    // a condition of the reconciler's, which the consumer must leave alone
    let strategies: kube::Api<protocol::crd::Strategy> = kube::Api::namespaced(client.clone(), NS);
    strategies
        .patch_status(
            "btc-eth-paper",
            &kube::api::PatchParams::apply("trading-operator").force(),
            &kube::api::Patch::Apply(json!({"apiVersion": CRD, "kind": "Strategy", "status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "",
                                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})),
        )
        .await
        .unwrap();

    // the stream as the agents create it
    let (nats, jetstream) = decision_stream(&server.url()).await;
    let subjects = Subjects::new(NS, "btc-eth-paper").unwrap();

    let watchers = DecisionWatchers::new(client.clone());
    watchers.ensure(NS, "btc-eth-paper", &TeamNats::anonymous(server.url()));
    assert_eq!(watchers.watched(), ["trading/btc-eth-paper"]);
    // let the consumer subscribe before the core-NATS escalation goes out
    tokio::time::sleep(Duration::from_millis(500)).await;

    let escalation = Message::Escalation(Escalation {
        id: "btc-eth-paper_BTCUSDT_7_schedule".into(),
        strategy: "btc-eth-paper".into(),
        symbol: "BTCUSDT".into(),
        proposed: Action::Sell,
        scores: Default::default(),
        timeout_seconds: 300,
        raised_at: 1_700_000_000_000,
    });
    nats.publish(
        subjects
            .escalation("btc-eth-paper_BTCUSDT_7_schedule")
            .unwrap(),
        encode(&escalation).into(),
    )
    .await
    .unwrap();
    let status = eventually(&api, "escalation pending", |s| {
        condition(s, "EscalationPending").is_some_and(|c| c["status"] == "True")
    })
    .await;
    let pending = condition(&status, "EscalationPending").unwrap();
    assert!(pending["message"]
        .as_str()
        .unwrap()
        .contains("trading.ia-agents.dev/approve=btc-eth-paper_BTCUSDT_7_schedule"));
    assert_eq!(status["pendingEscalations"][0]["symbol"], "BTCUSDT");

    // the escalated cycle ends in a decision: consensus not reached, nothing pending any more
    jetstream
        .publish(
            subjects.decision(),
            encode(&decision(
                "btc-eth-paper_BTCUSDT_7_schedule",
                false,
                1_700_000_100_000,
            ))
            .into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let status = eventually(&api, "decision written", |s| {
        s["lastDecision"]["id"] == "btc-eth-paper_BTCUSDT_7_schedule"
            && condition(s, "EscalationPending").is_some_and(|c| c["status"] == "False")
    })
    .await;
    let reached = condition(&status, "ConsensusReached").unwrap();
    assert_eq!(
        (reached["status"].as_str(), reached["reason"].as_str()),
        (Some("False"), Some("NoConsensus"))
    );
    assert_eq!(status["lastDecision"]["action"], "SELL");
    assert_eq!(status["lastDecision"]["votes"]["SELL"], 2.0);
    assert_eq!(status["pendingEscalations"], json!([]));
    assert_eq!(
        condition(&status, "Ready").unwrap()["status"],
        "True",
        "the reconciler's condition stays"
    );
    // the voter's weight and opinion reach its TradingAssistant
    let started = Instant::now();
    let ta = loop {
        let ta = api
            .get(CRD, "TradingAssistant", NS, "technical-analyst")
            .unwrap();
        if !ta["status"]["weight"].is_null() || started.elapsed() > Duration::from_secs(10) {
            break ta;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ta["status"]["weight"], 1.37);
    assert_eq!(ta["status"]["lastOpinion"]["action"], "SELL");
    assert_eq!(ta["status"]["lastOpinion"]["symbol"], "BTCUSDT");

    // the server restarts (JetStream state kept): the consumer reconnects and goes on
    server.restart();
    let publisher = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let started = Instant::now();
    loop {
        let ack = publisher
            .publish(
                subjects.decision(),
                encode(&decision("cycle_8", true, 1_700_000_200_000)).into(),
            )
            .await;
        if let Ok(ack) = ack {
            if ack.await.is_ok() {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "JetStream back after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = eventually(&api, "decision after a restart", |s| {
        s["lastDecision"]["id"] == "cycle_8"
    })
    .await;
    assert_eq!(
        condition(&status, "ConsensusReached").unwrap()["reason"],
        "Consensus"
    );

    watchers.stop(NS, "btc-eth-paper");
    assert!(watchers.watched().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_anchor_reaches_the_strategy_status() {
    let Some(server) = support::NatsServer::start() else {
        return;
    };
    let (client, api) = FakeApi::start();
    api.insert(strategy_with_nats(&server.url()));
    let (_, jetstream) = decision_stream(&server.url()).await;
    let subjects = Subjects::new(NS, "btc-eth-paper").unwrap();
    let watchers = DecisionWatchers::new(client.clone());
    watchers.ensure(NS, "btc-eth-paper", &TeamNats::anonymous(server.url()));

    // the coordinator anchors its chain twice; the audit stream (created by the consumer, the
    // coordinator being older) keeps the last anchor, which the status shows
    let head = |c: char| c.to_string().repeat(64);
    for (entries, c) in [(40, 'a'), (57, 'b')] {
        let anchor = Message::AuditHead(AuditHead {
            strategy: "btc-eth-paper".into(),
            head: head(c),
            entries,
            at: 1_700_000_000_000 + entries as i64,
            keyed: true,
        });
        let started = Instant::now();
        loop {
            let ack = jetstream
                .publish(subjects.audit(), encode(&anchor).into())
                .await;
            if let Ok(ack) = ack {
                if ack.await.is_ok() {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the consumer creates the audit stream"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let status = eventually(&api, "anchor shown", |s| s["audit"]["entries"] == 57).await;
    assert_eq!(status["audit"]["head"], head('b'));
    assert_eq!(status["audit"]["keyed"], true);
    assert_eq!(status["audit"]["at"], "2023-11-14T22:13:20.057Z");
    let stream = jetstream.get_stream(STREAM_AUDIT).await.unwrap();
    assert_eq!(
        stream.get_info().await.unwrap().state.messages,
        1,
        "the stream keeps the last anchor only"
    );

    // a restarted operator shows it again from the stream
    watchers.stop(NS, "btc-eth-paper");
    api.update(CRD, "Strategy", NS, "btc-eth-paper", |s| {
        s["status"].as_object_mut().unwrap().remove("audit");
    });
    assert!(api.get(CRD, "Strategy", NS, "btc-eth-paper").unwrap()["status"]["audit"].is_null());
    let watchers = DecisionWatchers::new(client.clone());
    watchers.ensure(NS, "btc-eth-paper", &TeamNats::anonymous(server.url()));
    let status = eventually(&api, "anchor shown again", |s| s["audit"]["entries"] == 57).await;
    assert_eq!(status["audit"]["head"], head('b'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_team_s_book_reaches_the_strategy_status() {
    let Some(server) = support::NatsServer::start() else {
        return;
    };
    let (client, api) = FakeApi::start();
    api.insert(strategy_with_nats(&server.url()));
    let (nats, _) = decision_stream(&server.url()).await;
    let subjects = Subjects::new(NS, "btc-eth-paper").unwrap();
    let watchers = DecisionWatchers::new(client.clone());
    watchers.ensure(NS, "btc-eth-paper", &TeamNats::anonymous(server.url()));
    // the coordinator publishes its book about once a second (core NATS): the consumer may not
    // be subscribed yet, so it goes on until the status shows it
    let book = Message::Portfolio(PortfolioSnapshot {
        strategy: "btc-eth-paper".into(),
        equity: 10_234.504_9,
        pnl: 234.504_9,
        open_positions: 1,
        at: 1_700_000_000_000,
    });
    let started = Instant::now();
    let status = loop {
        nats.publish(subjects.portfolio(), encode(&book).into())
            .await
            .unwrap();
        let s = api.get(CRD, "Strategy", NS, "btc-eth-paper").unwrap();
        if !s["status"]["portfolio"].is_null() {
            break s["status"].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no portfolio in {}",
            s["status"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status["portfolio"]["equity"], 10_234.5);
    assert_eq!(status["portfolio"]["pnl"], 234.5);
    assert_eq!(status["portfolio"]["openPositions"], 1);
}

/// Publishes `message` on the decision stream and waits for the stream's acknowledgement.
async fn stored(jetstream: &async_nats::jetstream::Context, subject: String, message: &Message) {
    jetstream
        .publish(subject, encode(message).into())
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_operator_shows_the_decision_made_while_it_was_away() {
    let Some(server) = support::NatsServer::start() else {
        return;
    };
    let (client, api) = FakeApi::start();
    api.insert(strategy_with_nats(&server.url()));
    let (_, jetstream) = decision_stream(&server.url()).await;
    let subjects = Subjects::new(NS, "btc-eth-paper").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    stored(
        &jetstream,
        subjects.decision(),
        &decision("first", true, now - 20_000),
    )
    .await;
    let watchers = DecisionWatchers::new(client.clone());
    watchers.ensure(NS, "btc-eth-paper", &TeamNats::anonymous(server.url()));
    eventually(&api, "the first decision shown", |s| {
        s["lastDecision"]["id"] == "first"
    })
    .await;
    watchers.stop(NS, "btc-eth-paper");

    // while the operator is away the team decides again, and the next candle (with executor and
    // auditor services it shares `….decision`, ahead of its decision) is the subject's last message
    stored(
        &jetstream,
        subjects.decision(),
        &decision("second", true, now - 10_000),
    )
    .await;
    let candle = Message::Candle(protocol::messages::MarketCandle {
        strategy: "btc-eth-paper".into(),
        symbol: "BTCUSDT".into(),
        open_time: now - 3_600_000,
        close_time: now - 1,
        open: 100.0,
        high: 101.0,
        low: 99.0,
        close: 100.5,
        volume: 12.0,
        live: true,
        volatility: None,
    });
    stored(&jetstream, subjects.decision(), &candle).await;
    let watchers = DecisionWatchers::new(client.clone());
    watchers.ensure(NS, "btc-eth-paper", &TeamNats::anonymous(server.url()));
    eventually(&api, "the decision made while away shown", |s| {
        s["lastDecision"]["id"] == "second"
    })
    .await;

    // candles change nothing in the status: the Strategy is not read for each of them
    api.clear_requests();
    for i in 0..100 {
        let mut next = candle.clone();
        if let Message::Candle(c) = &mut next {
            c.open_time += i;
        }
        stored(&jetstream, subjects.decision(), &next).await;
    }
    stored(
        &jetstream,
        subjects.decision(),
        &decision("third", true, now - 5_000),
    )
    .await;
    eventually(&api, "the next decision shown", |s| {
        s["lastDecision"]["id"] == "third"
    })
    .await;
    let reads = api
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET ") && r.ends_with("/strategies/btc-eth-paper"))
        .count();
    assert!(
        reads <= 2,
        "{reads} reads of the Strategy for 100 candles and one decision"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approve_annotation_reaches_the_coordinator_and_is_removed() {
    let Some(server) = support::NatsServer::start() else {
        return;
    };
    let (client, api) = FakeApi::start();
    api.insert(sample("consensuspolicy.yaml", 0));
    let mut s = strategy_with_nats(&server.url());
    s["metadata"]["annotations"] =
        json!({strategy::APPROVE_ANNOTATION: "btc-eth-paper_ETHUSDT_3_alert"});
    api.insert(s);

    // the coordinator waits for the answer on the escalation subject
    let nats = async_nats::connect(server.url()).await.unwrap();
    let subjects = Subjects::new(NS, "btc-eth-paper").unwrap();
    let mut answers = nats
        .subscribe(
            subjects
                .escalation("btc-eth-paper_ETHUSDT_3_alert")
                .unwrap(),
        )
        .await
        .unwrap();
    nats.flush().await.unwrap();

    let ctx = Arc::new(Context::new(
        client,
        "test",
        Arc::new(DecisionWatchers::disabled()),
    ));
    for _ in 0..2 {
        let object = api.get(CRD, "Strategy", NS, "btc-eth-paper").unwrap();
        strategy::reconcile(
            Arc::new(serde_json::from_value(object).unwrap()),
            ctx.clone(),
        )
        .await
        .unwrap();
    }
    let answer = tokio::time::timeout(Duration::from_secs(5), answers.next())
        .await
        .expect("the answer is relayed")
        .unwrap();
    let Message::EscalationResolution(answer) = decode(&answer.payload).unwrap() else {
        panic!("not an answer");
    };
    assert_eq!(answer.id, "btc-eth-paper_ETHUSDT_3_alert");
    assert!(answer.approved);
    assert!(
        answer.by.contains("trading.ia-agents.dev/approve"),
        "{}",
        answer.by
    );
    let s = api.get(CRD, "Strategy", NS, "btc-eth-paper").unwrap();
    assert!(
        s["metadata"]["annotations"]
            .get(strategy::APPROVE_ANNOTATION)
            .is_none(),
        "{}",
        s["metadata"]
    );
    let events: Vec<Value> = api.all("Event");
    assert!(events.iter().any(|e| e["reason"] == "EscalationApproved"));
}
