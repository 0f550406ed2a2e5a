//! A managed NATS as the operator provisions it (issue 17): the Strategy reconciler generates one
//! nkey per identity and renders the server's configuration; a real nats-server started with that
//! very configuration refuses a client without credentials, lets the coordinator's seed publish a
//! decision and refuses an assistant's, and lets the operator's seed follow the decision stream
//! into the Strategy's status and relay an escalation answer. The coordinator may not delete, purge
//! or change a stream, nor read another team's decisions; the operator follows its team through
//! its own two named consumers only. On the same server the executor and auditor services (issue
//! 16) work their own durable consumers and publish only their own messages.

// a scenario test reads top to bottom; the 100-line limit is for the code under test
#![allow(clippy::too_many_lines)]

mod common;
use common::{sample, samples, CRD, NS};

use futures::StreamExt;
use operator::controllers::{strategy, Context};
use operator::decisions::{DecisionWatchers, TeamNats};
use operator::fake_api::FakeApi;
use protocol::messages::{encode, Decision, EscalationResolution, Message, RoundTally};
use protocol::nats_auth::{
    anchor_get, covers, inbox_prefix, operator_audit_consumer, operator_consumer, AUDITOR,
    COORDINATOR, EXECUTOR, OPERATOR,
};
use protocol::subjects::{
    Subjects, PRESENCE_BUCKET, STREAM_AUDIT, STREAM_DECISIONS, STREAM_DECISIONS_SUBJECTS,
};
use protocol::{Action, Role};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STRATEGY: &str = "btc-eth-paper";

fn decision(id: &str) -> Message {
    decision_at(id, 1_700_000_000_000)
}

fn decision_at(id: &str, decided_at: i64) -> Message {
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
        resolved_by: None,
        rounds: vec![RoundTally {
            round: 1,
            votes: vec![],
            scores: [(Action::Buy, 1.0)].into(),
            answered_weight: 1.0,
            total_weight: 1.0,
        }],
        transcript: vec![],
        price: 100.0,
        decided_at,
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

/// A managed NATS as the operator provisions it: the sample team's Strategy reconciled (credentials
/// generated, configuration rendered), a nats-server started from that very configuration, and the
/// generated seeds by identity.
struct Provisioned {
    client: kube::Client,
    api: FakeApi,
    server: test_support::NatsServer,
    seeds: BTreeMap<String, String>,
}

/// The team provisioned, its server keeping JetStream's data in `store`; `None` (skipped, loudly)
/// where nats-server is not installed.
async fn provisioned(store: &std::path::Path) -> Option<Provisioned> {
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
    let rendered_store = "store_dir: \"/data\"";
    assert!(conf.contains(rendered_store), "{conf}");
    let conf = conf.replace(
        rendered_store,
        &format!("store_dir: \"{}\"", store.display()),
    );
    let server = test_support::NatsServer::start_with_config(&conf)?;
    Some(Provisioned {
        client,
        api,
        server,
        seeds,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_managed_nats_lets_each_identity_do_its_own_part_only() {
    let store = tempfile::tempdir().unwrap();
    let Some(Provisioned {
        client,
        api,
        server,
        seeds,
    }) = provisioned(store.path()).await
    else {
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

    // and no more of the JetStream API: it may neither delete nor purge nor change a stream, nor
    // read another team's decisions with a consumer of its own
    let hub = jetstream_of(&coordinator);
    let deleted = hub.delete_stream(STREAM_DECISIONS).await;
    assert!(deleted.is_err(), "the coordinator deleted the stream");
    let purged = hub
        .get_stream(STREAM_DECISIONS)
        .await
        .unwrap()
        .purge()
        .await;
    assert!(purged.is_err(), "the coordinator purged the stream");
    let updated = hub
        .update_stream(async_nats::jetstream::stream::Config {
            name: STREAM_DECISIONS.into(),
            subjects: vec![">".into()],
            ..Default::default()
        })
        .await;
    assert!(updated.is_err(), "the coordinator changed the stream");
    let spying = hub
        .get_stream(STREAM_DECISIONS)
        .await
        .unwrap()
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            name: Some("x".into()),
            filter_subject: "ia.other-ns.other.decision".into(),
            ..Default::default()
        })
        .await;
    assert!(spying.is_err(), "a consumer of another team's decisions");
    let d = STREAM_DECISIONS;
    for call in [
        format!("$JS.API.STREAM.DELETE.{d}"),
        format!("$JS.API.STREAM.PURGE.{d}"),
        format!("$JS.API.STREAM.UPDATE.{d}"),
        format!("$JS.API.CONSUMER.CREATE.{d}.x.ia.other-ns.other.decision"),
    ] {
        assert!(refused(&errors, &call).await, "{call}: {errors:?}");
    }
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        1,
        "nothing deleted or purged"
    );

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

/// Waits (at most 5 s) for the server to tell the client whose errors are `errors` that it may not
/// publish to `subject`.
async fn refused(errors: &Mutex<Vec<String>>, subject: &str) -> bool {
    let said = |errors: &Mutex<Vec<String>>| {
        errors.lock().unwrap().iter().any(|e| {
            e.contains("Permissions Violation for Publish") && e.contains(&format!("\"{subject}\""))
        })
    };
    let started = Instant::now();
    while !said(errors) && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    said(errors)
}

/// Whether the server takes a consumer filter wider than its stream's subjects (nats-server 2.10
/// and later), as the services' `ia.<ns>.<strategy>.>` is.
fn takes_the_teams_prefix(client: &async_nats::Client) -> bool {
    let version = client.server_info().version;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (2, 10)
}

/// A JetStream context whose refused requests fail within a second rather than the default's five.
fn jetstream_of(client: &async_nats::Client) -> async_nats::jetstream::Context {
    async_nats::jetstream::context::ContextBuilder::new()
        .timeout(Duration::from_secs(1))
        .build(client.clone())
}

/// A service's durable pull consumer `name` of the decision stream over `filter`, as the service
/// makes it (from the stream's first message, acknowledged one by one).
async fn service_consumer(
    jetstream: &async_nats::jetstream::Context,
    name: &str,
    filter: &str,
) -> Result<async_nats::jetstream::consumer::PullConsumer, String> {
    use async_nats::jetstream::consumer;
    let stream = jetstream
        .get_stream(STREAM_DECISIONS)
        .await
        .map_err(|e| e.to_string())?;
    stream
        .get_or_create_consumer(
            name,
            consumer::pull::Config {
                durable_name: Some(name.into()),
                filter_subject: filter.into(),
                deliver_policy: consumer::DeliverPolicy::All,
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())
}

/// The subjects of the next `n` messages of `consumer`, each acknowledged (and the acknowledgement
/// confirmed by the server).
async fn take_and_ack(
    consumer: &async_nats::jetstream::consumer::PullConsumer,
    n: usize,
) -> Vec<String> {
    let mut messages = consumer
        .fetch()
        .max_messages(n)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    let mut subjects = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message.unwrap();
        message.double_ack().await.expect("the acknowledgement");
        subjects.push(message.subject.to_string());
    }
    subjects
}

/// A JetStream publish with a message id, as the services publish; `Ok(false)`: a duplicate.
async fn publish_with_id(
    jetstream: &async_nats::jetstream::Context,
    subject: &str,
    id: &str,
    payload: &'static str,
) -> Result<bool, String> {
    let message = async_nats::jetstream::message::PublishMessage::build()
        .payload(payload.into())
        .message_id(format!("{subject}/{id}"));
    let ack = jetstream
        .send_publish(subject.to_string(), message)
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    Ok(!ack.duplicate)
}

/// The executor and auditor services (issue 16) on the managed NATS as the operator renders it:
/// each creates, reads and acknowledges its own durable consumer of the decision stream over the
/// team's subjects, and publishes what is its own with a message id (the executor an order, after
/// deleting and re-creating its consumer; the auditor the audit anchor, creating `IA_AUDIT`);
/// neither may publish a decision or the other's messages, nor delete the other's consumer, nor
/// give its consumer a filter beyond its team.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_work_their_own_consumers_and_publish_only_their_own() {
    use async_nats::jetstream::stream;
    let store = tempfile::tempdir().unwrap();
    let Some(Provisioned { server, seeds, .. }) = provisioned(store.path()).await else {
        return;
    };
    let url = server.url();
    let subjects = Subjects::new(NS, STRATEGY).unwrap();
    let team = subjects.everything();
    // the coordinator in services mode puts each candle on `….decision` ahead of its decision
    let candle_subject = subjects.decision();

    // the coordinator in services mode: a candle, then its decision, on the decision stream
    let quiet = Arc::new(Mutex::new(Vec::new()));
    let coordinator = connect_as(&url, &seeds, COORDINATOR, quiet.clone()).await;
    let hub = jetstream_of(&coordinator);
    let mut decisions = hub
        .get_or_create_stream(stream::Config {
            name: STREAM_DECISIONS.into(),
            subjects: STREAM_DECISIONS_SUBJECTS.map(String::from).to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    // it alone makes the shared streams (the services look them up)
    hub.get_or_create_stream(protocol::streams::audit_stream())
        .await
        .unwrap();
    let candle = publish_with_id(&hub, &candle_subject, "candle_BTCUSDT_1", "candle").await;
    assert_eq!(candle, Ok(true));
    let decided = encode(&decision("cycle_1"));
    let ack = hub.publish(subjects.decision(), decided.into()).await;
    ack.unwrap().await.expect("the decision is stored");

    // the executor: its consumer from the first message, read and acknowledged
    let executor_errors = Arc::new(Mutex::new(Vec::new()));
    let executor = connect_as(&url, &seeds, EXECUTOR, executor_errors.clone()).await;
    let executor_js = jetstream_of(&executor);
    // nats-server before 2.10 takes no filter wider than the stream's subjects (the managed NATS
    // runs 2.10): on such a server the same rights are shown with a narrower filter of the team's
    let filter = if takes_the_teams_prefix(&executor) {
        team.clone()
    } else {
        eprintln!("nats-server before 2.10: the services' consumers filter decisions only");
        subjects.decision()
    };
    let filtered = |published: &[&String]| -> Vec<String> {
        let kept = published.iter().filter(|s| covers(&filter, s));
        kept.map(|s| s.to_string()).collect()
    };
    let executor_name = subjects.service_consumer(Role::Executor);
    let mut consumer = service_consumer(&executor_js, &executor_name, &filter)
        .await
        .expect("the executor creates its consumer");
    let expected = filtered(&[&candle_subject, &subjects.decision()]);
    assert_eq!(take_and_ack(&consumer, 2).await, expected);
    let info = consumer.info().await.expect("its consumer's info");
    assert_eq!(info.ack_floor.stream_sequence, 2, "all acknowledged");
    // at its next start it rebuilds its book: the consumer deleted, created again from the start
    let stream = executor_js.get_stream(STREAM_DECISIONS).await.unwrap();
    stream
        .delete_consumer(&executor_name)
        .await
        .expect("the executor deletes its own consumer");
    let consumer = service_consumer(&executor_js, &executor_name, &filter)
        .await
        .expect("and creates it again");
    let pending = consumer.cached_info().num_pending;
    assert_eq!(pending, expected.len() as u64, "from the first message");
    let order = publish_with_id(&executor_js, &subjects.order(), "cycle_1", "order").await;
    assert_eq!(order, Ok(true), "the executor's order is stored");
    let again = publish_with_id(&executor_js, &subjects.order(), "cycle_1", "order").await;
    assert_eq!(again, Ok(false), "the same order twice is stored once");
    assert!(
        executor_errors.lock().unwrap().is_empty(),
        "{executor_errors:?}"
    );

    // not a decision of its own
    let forged = publish_with_id(&executor_js, &subjects.decision(), "forged", "decision").await;
    assert!(forged.is_err(), "a forged decision was acknowledged");
    assert!(refused(&executor_errors, &subjects.decision()).await);
    // nor a consumer over every team's subjects
    let everyone = "ia.*.*.>";
    let wide = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some(executor_name.clone()),
            filter_subject: everyone.into(),
            ..Default::default()
        })
        .await;
    assert!(wide.is_err(), "a consumer over every team was made");
    let create = format!("$JS.API.CONSUMER.CREATE.{STREAM_DECISIONS}.{executor_name}.{everyone}");
    assert!(refused(&executor_errors, &create).await);
    // and the server holds the body's filter to the subject's: the granted subject with another
    // filter inside is answered with an error
    let granted = format!("$JS.API.CONSUMER.CREATE.{STREAM_DECISIONS}.{executor_name}.{team}");
    let body = serde_json::json!({"stream_name": STREAM_DECISIONS, "config": {
        "durable_name": executor_name, "filter_subject": everyone,
        "deliver_policy": "all", "ack_policy": "explicit"}});
    let answer = executor
        .request(granted, body.to_string().into())
        .await
        .expect("the server answers");
    let answer: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
    assert_eq!(answer["error"]["err_code"], 10131, "{answer}");

    // the auditor: IA_AUDIT looked up as at its start, its consumer read and acknowledged
    let auditor_errors = Arc::new(Mutex::new(Vec::new()));
    let auditor = connect_as(&url, &seeds, AUDITOR, auditor_errors.clone()).await;
    let auditor_js = jetstream_of(&auditor);
    let mut anchors = auditor_js
        .get_stream(STREAM_AUDIT)
        .await
        .expect("the auditor looks up the audit stream");
    let auditor_name = subjects.service_consumer(Role::Auditor);
    let consumer = service_consumer(&auditor_js, &auditor_name, &filter)
        .await
        .expect("the auditor creates its consumer");
    let expected = filtered(&[&candle_subject, &subjects.decision(), &subjects.order()]);
    assert_eq!(take_and_ack(&consumer, 3).await, expected);
    let anchor = publish_with_id(&auditor_js, &subjects.audit(), "head", "anchor").await;
    assert_eq!(anchor, Ok(true), "the auditor's anchor is stored");
    let read = anchors
        .direct_get_last_for_subject(subjects.audit())
        .await
        .expect("the auditor reads its team's anchor");
    assert_eq!(&read.payload[..], b"anchor");
    assert!(
        auditor_errors.lock().unwrap().is_empty(),
        "{auditor_errors:?}"
    );
    // not another team's anchor, nor any message by a get whose body names the subject
    let other = Subjects::new(NS, "another-team").unwrap();
    let theirs = anchors.direct_get_last_for_subject(other.audit()).await;
    assert!(theirs.is_err(), "another team's anchor was read");
    assert!(refused(&auditor_errors, &anchor_get(&other)).await);
    assert!(anchors
        .get_last_raw_message_by_subject(&subjects.audit())
        .await
        .is_err());
    let message_get = format!("$JS.API.STREAM.MSG.GET.{STREAM_AUDIT}");
    assert!(refused(&auditor_errors, &message_get).await);
    // and no stream of its making: a missing stream waits for the coordinator
    let made = auditor_js
        .create_stream(stream::Config {
            name: PRESENCE_BUCKET.into(),
            subjects: vec![format!("{PRESENCE_BUCKET}.>")],
            ..Default::default()
        })
        .await;
    assert!(made.is_err(), "the auditor made a stream");
    let create = format!("$JS.API.STREAM.CREATE.{PRESENCE_BUCKET}");
    assert!(refused(&auditor_errors, &create).await);

    // not an order
    let forged = publish_with_id(&auditor_js, &subjects.order(), "forged", "order").await;
    assert!(forged.is_err(), "a forged order was acknowledged");
    assert!(refused(&auditor_errors, &subjects.order()).await);

    // neither deletes the other's consumer; the auditor does not delete its own
    let delete = |name: &str| format!("$JS.API.CONSUMER.DELETE.{STREAM_DECISIONS}.{name}");
    for (js, errors, name) in [
        (&executor_js, &executor_errors, &auditor_name),
        (&auditor_js, &auditor_errors, &executor_name),
        (&auditor_js, &auditor_errors, &auditor_name),
    ] {
        let stream = js.get_stream(STREAM_DECISIONS).await.unwrap();
        assert!(
            stream.delete_consumer(name).await.is_err(),
            "{name} deleted"
        );
        assert!(refused(errors, &delete(name)).await, "{name}");
    }
    // (each looks up its own: the coordinator may not look at the services' consumers)
    for (js, name) in [(&executor_js, &executor_name), (&auditor_js, &auditor_name)] {
        let kept = js.get_stream(STREAM_DECISIONS).await.unwrap();
        kept.consumer_info(name)
            .await
            .expect("both consumers are still there");
    }

    // in the streams: the candle, the decision and one order; one anchor; nothing forged
    assert_eq!(decisions.info().await.unwrap().state.messages, 3);
    assert_eq!(anchors.info().await.unwrap().state.messages, 1);
    assert!(quiet.lock().unwrap().is_empty(), "{quiet:?}");
}

/// The status a Strategy of the fake API server shows, once `check` holds (at most 20 s).
async fn status_once(api: &FakeApi, what: &str, check: impl Fn(&serde_json::Value) -> bool) {
    let started = Instant::now();
    loop {
        let s = api.get(CRD, "Strategy", NS, STRATEGY).unwrap();
        if check(&s["status"]) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: {}",
            s["status"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A candle of the coordinator's as it goes on `….decision` ahead of its decision (services mode).
fn candle(open_time: i64) -> Message {
    Message::Candle(protocol::messages::MarketCandle {
        strategy: STRATEGY.into(),
        symbol: "BTCUSDT".into(),
        open_time,
        close_time: open_time + 3_599_999,
        open: 100.0,
        high: 101.0,
        low: 99.0,
        close: 100.5,
        volume: 12.0,
        live: false,
        volatility: None,
    })
}

/// The operator on the managed NATS as the operator renders it (issue 17): it follows its team's
/// decisions (candles among them) and audit anchor into the Strategy's status through its own two
/// named consumers, made anew at each start; with its seed nothing else of the streams' is open to
/// it: no consumer over another team's subjects or without a name, not the executor's durable
/// consumer (no look-up, pull, acknowledgement or deletion), no stream deleted or purged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_follows_its_team_through_its_own_consumers_only() {
    use async_nats::jetstream::{consumer, stream};
    let store = tempfile::tempdir().unwrap();
    let Some(Provisioned {
        client,
        api,
        server,
        seeds,
    }) = provisioned(store.path()).await
    else {
        return;
    };
    let url = server.url();
    let subjects = Subjects::new(NS, STRATEGY).unwrap();

    // the coordinator in services mode: a candle, then its decision; its chain anchored
    let quiet = Arc::new(Mutex::new(Vec::new()));
    let coordinator = connect_as(&url, &seeds, COORDINATOR, quiet.clone()).await;
    let hub = jetstream_of(&coordinator);
    let decisions = hub
        .get_or_create_stream(stream::Config {
            name: STREAM_DECISIONS.into(),
            subjects: STREAM_DECISIONS_SUBJECTS.map(String::from).to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    hub.get_or_create_stream(protocol::streams::audit_stream())
        .await
        .unwrap();
    let stored = |subject: String, message: Message| {
        let hub = hub.clone();
        async move {
            let ack = hub.publish(subject, encode(&message).into()).await;
            ack.unwrap().await.expect("stored");
        }
    };
    stored(subjects.decision(), candle(1_700_000_000_000)).await;
    stored(subjects.decision(), decision("cycle_1")).await;
    let anchor = Message::AuditHead(protocol::messages::AuditHead {
        strategy: STRATEGY.into(),
        head: "a".repeat(64),
        entries: 3,
        at: 1_700_000_000_000,
        keyed: true,
    });
    stored(subjects.audit(), anchor).await;

    // the executor's durable consumer, as the service makes it
    let executor_errors = Arc::new(Mutex::new(Vec::new()));
    let executor = connect_as(&url, &seeds, EXECUTOR, executor_errors.clone()).await;
    let executor_js = jetstream_of(&executor);
    let executor_name = subjects.service_consumer(Role::Executor);
    service_consumer(&executor_js, &executor_name, &subjects.decision())
        .await
        .expect("the executor's consumer");

    // the operator (its seed as the reconciler reads it): the decision and the anchor into the
    // status, through its named consumers
    let nats = TeamNats::with_nkey(url.clone(), seeds[OPERATOR].clone());
    let watchers = DecisionWatchers::new(client.clone());
    watchers.ensure(NS, STRATEGY, &nats);
    status_once(&api, "the decision and the anchor", |s| {
        s["lastDecision"]["id"] == "cycle_1" && s["audit"]["entries"] == 3
    })
    .await;
    let errors = Arc::new(Mutex::new(Vec::new()));
    let operator = connect_as(&url, &seeds, OPERATOR, errors.clone()).await;
    let operator_js = jetstream_of(&operator);
    let own = operator_js.get_stream(STREAM_DECISIONS).await.unwrap();
    let info = own
        .consumer_info(&operator_consumer(&subjects))
        .await
        .expect("the operator's consumer of the decisions");
    assert_eq!(info.config.durable_name, None, "ephemeral");
    assert_eq!(info.config.filter_subject, subjects.decision());
    assert_eq!(info.config.inactive_threshold, Duration::from_secs(300));
    let anchors = operator_js.get_stream(STREAM_AUDIT).await.unwrap();
    let info = anchors
        .consumer_info(&operator_audit_consumer(&subjects))
        .await
        .expect("the operator's consumer of the anchor");
    assert_eq!(info.config.filter_subject, subjects.audit());

    // a candle last on `….decision` when the operator starts again breaks nothing, and the
    // next decision reaches the status through the consumer made anew
    watchers.stop(NS, STRATEGY);
    stored(subjects.decision(), candle(1_700_000_003_600)).await;
    let watchers = DecisionWatchers::new(client.clone());
    watchers.ensure(NS, STRATEGY, &nats);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stored(
        subjects.decision(),
        decision_at("cycle_2", 1_700_000_003_600_000),
    )
    .await;
    status_once(&api, "the next decision", |s| {
        s["lastDecision"]["id"] == "cycle_2"
    })
    .await;
    watchers.stop(NS, STRATEGY);
    assert!(errors.lock().unwrap().is_empty(), "{errors:?}");

    // with the operator's seed: no consumer without a name, none over another team's subjects
    let d = STREAM_DECISIONS;
    let mine = operator_consumer(&subjects);
    let other = Subjects::new("other-ns", "other").unwrap();
    for (name, filter) in [
        (None, other.decision()),
        (Some(mine.clone()), other.decision()),
        (Some(mine.clone()), subjects.order()),
        (Some(operator_consumer(&other)), other.decision()),
    ] {
        let made = own
            .create_consumer(consumer::pull::Config {
                name: name.clone(),
                filter_subject: filter.clone(),
                ..Default::default()
            })
            .await;
        assert!(made.is_err(), "{name:?} over {filter}");
        let call = match name {
            Some(name) => format!("$JS.API.CONSUMER.CREATE.{d}.{name}.{filter}"),
            None => format!("$JS.API.CONSUMER.CREATE.{d}"),
        };
        assert!(refused(&errors, &call).await, "{call}: {errors:?}");
    }
    // and the server holds the body's filter to the granted subject's
    let granted = format!("$JS.API.CONSUMER.CREATE.{d}.{mine}.{}", subjects.decision());
    let body = serde_json::json!({"stream_name": d, "config": {
        "name": mine, "filter_subject": other.decision(),
        "deliver_policy": "last_per_subject", "ack_policy": "none"}});
    let answer = operator
        .request(granted, body.to_string().into())
        .await
        .expect("the server answers");
    let answer: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
    assert_eq!(answer["error"]["err_code"], 10131, "{answer}");

    // the executor's consumer: neither looked up, pulled, acknowledged nor deleted
    assert!(own.consumer_info(&executor_name).await.is_err());
    assert!(own.delete_consumer(&executor_name).await.is_err());
    let inbox = operator.new_inbox();
    let mut pulled = operator.subscribe(inbox.clone()).await.unwrap();
    let next = format!("$JS.API.CONSUMER.MSG.NEXT.{d}.{executor_name}");
    let pull = r#"{"batch":1,"expires":500000000}"#;
    operator
        .publish_with_reply(next.clone(), inbox, pull.into())
        .await
        .unwrap();
    let ack = format!("$JS.ACK.{d}.{executor_name}.1.1.1.1700000000000000000.0");
    operator.publish(ack.clone(), "+ACK".into()).await.unwrap();
    operator.flush().await.unwrap();
    for call in [
        format!("$JS.API.CONSUMER.INFO.{d}.{executor_name}"),
        format!("$JS.API.CONSUMER.DELETE.{d}.{executor_name}"),
        next,
        ack,
    ] {
        assert!(refused(&errors, &call).await, "{call}: {errors:?}");
    }
    let nothing = tokio::time::timeout(Duration::from_secs(1), pulled.next()).await;
    assert!(
        nothing.is_err(),
        "pulled from the executor's consumer: {nothing:?}"
    );
    let theirs = executor_js.get_stream(d).await.unwrap();
    let info = theirs.consumer_info(&executor_name).await.unwrap();
    assert_eq!(
        (info.num_pending, info.ack_floor.stream_sequence),
        (4, 0),
        "the executor's consumer as it was: every message pending"
    );
    assert!(
        executor_errors.lock().unwrap().is_empty(),
        "{executor_errors:?}"
    );

    // nor a stream deleted or purged
    assert!(operator_js.delete_stream(d).await.is_err());
    assert!(own.purge().await.is_err());
    for call in [
        format!("$JS.API.STREAM.DELETE.{d}"),
        format!("$JS.API.STREAM.PURGE.{d}"),
    ] {
        assert!(refused(&errors, &call).await, "{call}: {errors:?}");
    }
    let mut decisions = decisions;
    assert_eq!(decisions.info().await.unwrap().state.messages, 4);
    assert!(quiet.lock().unwrap().is_empty(), "{quiet:?}");
}
