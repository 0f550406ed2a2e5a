//! A managed NATS as the operator provisions it (issue 17): the Strategy reconciler generates one
//! nkey per identity and renders the server's configuration; a real nats-server started with that
//! very configuration refuses a client without credentials, lets the coordinator's seed publish a
//! decision and refuses an assistant's, and lets the operator's seed follow the decision stream
//! into the Strategy's status and relay an escalation answer.

// a scenario test reads top to bottom; the 100-line limit is for the code under test
#![allow(clippy::too_many_lines)]

mod common;
use common::{sample, samples, CRD, NS};

use futures::StreamExt;
use operator::controllers::{strategy, Context};
use operator::decisions::{DecisionWatchers, TeamNats};
use operator::fake_api::FakeApi;
use protocol::messages::{encode, Decision, EscalationResolution, Message, RoundTally};
use protocol::nats_auth::inbox_prefix;
use protocol::subjects::{Subjects, STREAM_DECISIONS, STREAM_DECISIONS_SUBJECTS};
use protocol::Action;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STRATEGY: &str = "btc-eth-paper";

fn decision(id: &str) -> Message {
    Message::Decision(Decision {
        id: id.into(),
        strategy: STRATEGY.into(),
        symbol: "BTCUSDT".into(),
        action: Action::Buy,
        confidence: 0.9,
        consensus_reached: true,
        escalated: false,
        vetoed: false,
        rejected: false,
        rounds: vec![RoundTally {
            round: 1,
            votes: vec![],
            scores: [(Action::Buy, 1.0)].into(),
            answered_weight: 1.0,
            total_weight: 1.0,
        }],
        transcript: vec![],
        price: 100.0,
        decided_at: 1_700_000_000_000,
    })
}

/// The seeds of the generated Secret, by identity.
fn seeds(api: &FakeApi) -> BTreeMap<String, String> {
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(
        api.get("v1", "Secret", NS, "btc-eth-paper-nats-credentials")
            .expect("the generated credentials"),
    )
    .unwrap();
    secret
        .data
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect()
}

/// A client connected as `identity` with its seed; the server's errors to it go to `errors`.
async fn connect_as(
    url: &str,
    seeds: &BTreeMap<String, String>,
    identity: &str,
    errors: Arc<Mutex<Vec<String>>>,
) -> async_nats::Client {
    async_nats::ConnectOptions::with_nkey(seeds[identity].clone())
        .custom_inbox_prefix(inbox_prefix(identity))
        .event_callback(move |event| {
            let errors = errors.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    errors.lock().unwrap().push(e.to_string());
                }
            }
        })
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("{identity} connects: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_managed_nats_lets_each_identity_do_its_own_part_only() {
    // the operator provisions the team: credentials generated, configuration rendered
    let (client, api) = FakeApi::start();
    let ctx = Arc::new(Context::new(
        client.clone(),
        "test",
        Arc::new(DecisionWatchers::disabled()),
    ));
    api.insert(sample("consensuspolicy.yaml", 0));
    api.insert(sample("strategy.yaml", 0));
    for ta in samples("team.yaml") {
        api.insert(ta);
    }
    for _ in 0..2 {
        let s = api.get(CRD, "Strategy", NS, STRATEGY).unwrap();
        strategy::reconcile(Arc::new(serde_json::from_value(s).unwrap()), ctx.clone())
            .await
            .unwrap();
    }
    let config = api
        .get("v1", "ConfigMap", NS, "btc-eth-paper-nats")
        .unwrap();
    let conf = config["data"]["nats.conf"].as_str().unwrap();
    let seeds = seeds(&api);
    // as rendered, but for where JetStream keeps its data (the pod's volume is /data)
    let store = tempfile::tempdir().unwrap();
    let rendered_store = "store_dir: \"/data\"";
    assert!(conf.contains(rendered_store), "{conf}");
    let conf = conf.replace(
        rendered_store,
        &format!("store_dir: \"{}\"", store.path().display()),
    );
    let Some(server) = test_support::NatsServer::start_with_config(&conf) else {
        return;
    };
    let url = server.url();
    let subjects = Subjects::new(NS, STRATEGY).unwrap();

    // no credentials: refused
    let answer = test_support::nats::anonymous_answer(server.port);
    assert!(answer.contains("Authorization Violation"), "{answer}");

    // the coordinator's seed: the stream created as at its start, a decision published
    let errors = Arc::new(Mutex::new(Vec::new()));
    let coordinator = connect_as(&url, &seeds, "coordinator", errors.clone()).await;
    let jetstream = async_nats::jetstream::new(coordinator.clone());
    let mut stream = jetstream
        .get_or_create_stream(async_nats::jetstream::stream::Config {
            name: STREAM_DECISIONS.into(),
            subjects: STREAM_DECISIONS_SUBJECTS.map(String::from).to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    jetstream
        .publish(subjects.decision(), encode(&decision("cycle_1")).into())
        .await
        .unwrap()
        .await
        .expect("the coordinator's decision is stored");
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    assert!(errors.lock().unwrap().is_empty(), "{errors:?}");

    // an assistant's seed: connected, but a decision of its own is refused by the server
    let refused = Arc::new(Mutex::new(Vec::new()));
    let assistant = connect_as(&url, &seeds, "technicalAnalyst", refused.clone()).await;
    let forged = async_nats::jetstream::new(assistant.clone());
    let ack = forged
        .publish(subjects.decision(), encode(&decision("forged")).into())
        .await;
    if let Ok(ack) = ack {
        assert!(ack.await.is_err(), "a forged decision was acknowledged");
    }
    let started = Instant::now();
    while refused.lock().unwrap().is_empty() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let said = refused.lock().unwrap().join("; ");
    assert!(
        said.contains("Permissions Violation for Publish") && said.contains(&subjects.decision()),
        "{said}"
    );
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        1,
        "nothing forged in the stream"
    );

    // the operator's seed (as the reconciler reads it): the decision into the Strategy's status
    let operator = TeamNats::with_nkey(url.clone(), seeds["operator"].clone());
    let watchers = DecisionWatchers::new(client.clone());
    watchers.ensure(NS, STRATEGY, &operator);
    let started = Instant::now();
    loop {
        let s = api.get(CRD, "Strategy", NS, STRATEGY).unwrap();
        if s["status"]["lastDecision"]["id"] == "cycle_1" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the operator's consumer: {}",
            s["status"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // and it relays a human's answer, which the coordinator receives
    let mut answers = coordinator
        .subscribe(subjects.all_escalations())
        .await
        .unwrap();
    coordinator.flush().await.unwrap();
    let answer = EscalationResolution {
        id: "cycle_2".into(),
        approved: true,
        by: "test".into(),
        at: 1_700_000_000_000,
    };
    watchers
        .relay(NS, STRATEGY, &operator, &answer)
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), answers.next())
        .await
        .expect("the answer reaches the coordinator")
        .unwrap();
    assert_eq!(
        got.subject.as_str(),
        subjects.escalation("cycle_2").unwrap()
    );
    watchers.stop(NS, STRATEGY);

    // a seed the configuration does not know: refused
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    let refused = async_nats::ConnectOptions::with_nkey(stranger)
        .connect(&url)
        .await;
    assert!(refused.is_err(), "an unknown identity got in");
}
