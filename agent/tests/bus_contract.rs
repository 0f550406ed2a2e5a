//! One contract, two buses: the in-memory bus and NATS (a real nats-server) behave the same.
//! (One difference is by design: NATS's audit stream keeps only the last anchor of a team.)

// a scenario test reads top to bottom; the 100-line limit is for the code under test
#![allow(clippy::too_many_lines)]

use test_support as support;

use agent::bus::memory::MemoryBus;
use agent::bus::nats::NatsBus;
use agent::bus::Bus;
use protocol::messages::{AuditHead, EscalationResolution, Heartbeat, Message};
use protocol::Role;
use std::time::Duration;

fn note(id: &str) -> Message {
    Message::EscalationResolution(EscalationResolution {
        id: id.into(),
        approved: true,
        by: "test".into(),
        at: 0,
    })
}

fn id_of(m: &Message) -> String {
    match m {
        Message::EscalationResolution(r) => r.id.to_string(),
        other => panic!("unexpected {other:?}"),
    }
}

async fn contract(bus: impl Bus, presence_ttl: Duration) {
    // request/reply through a queue group: each request answered by exactly one member
    let mut members = vec![];
    for member in 0..2 {
        let mut requests = bus
            .serve("ia.t.s.analyze.strategist", "ia-t-s-strategist")
            .await
            .unwrap();
        members.push(tokio::spawn(async move {
            let mut answered = 0;
            while let Some(incoming) = requests.recv().await {
                let id = id_of(&incoming.message);
                incoming
                    .reply(note(&format!("{id}-by-{member}")))
                    .await
                    .unwrap();
                answered += 1;
            }
            answered
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..20 {
        let reply = bus
            .request(
                "ia.t.s.analyze.strategist",
                &note(&format!("q{i}")),
                Duration::from_secs(2),
            )
            .await
            .unwrap()
            .expect("a member answers");
        assert!(id_of(&reply).starts_with(&format!("q{i}-by-")));
    }
    // nobody serves: no answer, no error
    let none = bus
        .request(
            "ia.t.s.analyze.auditor",
            &note("x"),
            Duration::from_millis(200),
        )
        .await
        .unwrap();
    assert!(none.is_none());

    // pub/sub
    let mut sub = bus.subscribe("ia.t.s.escalation.e1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    bus.publish("ia.t.s.escalation.e1", &note("e1"))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(2), sub.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id_of(&got), "e1");

    // durable, exactly once per id, readable from the start
    assert!(bus
        .publish_durable("ia.t.s.decision", "d1", &note("d1"))
        .await
        .unwrap());
    assert!(!bus
        .publish_durable("ia.t.s.decision", "d1", &note("d1"))
        .await
        .unwrap());
    assert!(bus
        .publish_durable("ia.t.s.decision", "d2", &note("d2"))
        .await
        .unwrap());
    // the same id from a Strategy of the same name in another namespace is its own message
    assert!(bus
        .publish_durable("ia.other.s.decision", "d1", &note("d1"))
        .await
        .unwrap());
    let mut log = bus.read_durable("ia.t.s.decision").await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(2), log.recv())
        .await
        .unwrap()
        .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(2), log.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((id_of(&first), id_of(&second)), ("d1".into(), "d2".into()));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), log.recv())
            .await
            .is_err(),
        "no duplicate"
    );

    // the last durable message of a subject: the newest decision; the newest audit anchor (the
    // audit stream keeps no other), each team its own
    assert_eq!(
        bus.last_durable("ia.t.s.decision")
            .await
            .unwrap()
            .map(|m| id_of(&m)),
        Some("d2".into())
    );
    assert_eq!(bus.last_durable("ia.t.s.audit").await.unwrap(), None);
    let anchor = |entries: u64, head: char| {
        Message::AuditHead(AuditHead {
            strategy: "s".into(),
            head: head.to_string().repeat(64),
            entries,
            at: 0,
            keyed: true,
        })
    };
    for (entries, head) in [(1, 'a'), (2, 'b')] {
        assert!(bus
            .publish_durable("ia.t.s.audit", &head.to_string(), &anchor(entries, head))
            .await
            .unwrap());
    }
    bus.publish_durable("ia.other.s.audit", "c", &anchor(9, 'c'))
        .await
        .unwrap();
    assert_eq!(
        bus.last_durable("ia.t.s.audit").await.unwrap(),
        Some(anchor(2, 'b'))
    );

    // presence expires after the TTL
    let beat = Heartbeat {
        assistant: "strategist".into(),
        role: Role::Strategist,
        instance: "pod-1".into(),
        strategy: "s".into(),
        weight: 1.0,
        at: 0,
    };
    bus.announce("t.s.strategist.pod-1", &beat).await.unwrap();
    bus.announce("other.s.strategist.pod-1", &beat)
        .await
        .unwrap();
    assert_eq!(
        bus.present("t.s").await.unwrap(),
        vec![beat],
        "another team's presence is not ours"
    );
    tokio::time::sleep(presence_ttl + Duration::from_millis(1500)).await;
    assert!(bus.present("t.s").await.unwrap().is_empty());
}

#[tokio::test]
async fn the_memory_bus_keeps_the_contract() {
    contract(
        MemoryBus::with_presence_ttl(Duration::from_secs(1)),
        Duration::from_secs(1),
    )
    .await;
}

#[tokio::test]
async fn the_nats_bus_keeps_the_contract() {
    let Some(server) = support::NatsServer::start() else {
        return;
    };
    let bus = NatsBus::connect_with_ttl(&server.url(), Duration::from_secs(1))
        .await
        .unwrap();
    contract(bus, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn malformed_messages_are_counted_not_fatal() {
    let Some(server) = support::NatsServer::start() else {
        return;
    };
    let bus = NatsBus::connect(&server.url()).await.unwrap();
    let mut requests = bus.serve("ia.t.s.analyze.riskManager", "q").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = agent::bus::REJECTED.with_label_values(&["not_json"]).get();
    bus.client()
        .publish("ia.t.s.analyze.riskManager", "{not json".into())
        .await
        .unwrap();
    bus.client()
        .publish(
            "ia.t.s.analyze.riskManager",
            r#"{"v":1,"type":"fromTheFuture"}"#.into(),
        )
        .await
        .unwrap();
    bus.publish("ia.t.s.analyze.riskManager", &note("fine"))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(2), requests.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        id_of(&got.message),
        "fine",
        "the good message still arrives"
    );
    assert_eq!(
        agent::bus::REJECTED.with_label_values(&["not_json"]).get(),
        before + 1
    );
    assert!(
        agent::bus::REJECTED
            .with_label_values(&["unknown_type"])
            .get()
            >= 1
    );
}

/// In services mode on a live feed the coordinator follows the executor's book: the newest of its
/// Strategy's books on `….book` reaches the engine's feed; another Strategy's never does.
#[tokio::test]
async fn the_coordinator_follows_its_executors_book() {
    use agent::coordination::executor_book;
    use protocol::messages::{BookPosition, ExecutorBook};
    use protocol::subjects::Subjects;
    use rust_decimal::Decimal;
    let Some(server) = support::NatsServer::start() else {
        return;
    };
    let bus = NatsBus::connect(&server.url()).await.unwrap();
    let subjects = Subjects::new("trading", "btc").unwrap();
    let mut feed = executor_book::follow(&bus, &subjects, "btc").await.unwrap();
    let book = |strategy: &str, at: i64| {
        Message::Book(ExecutorBook {
            strategy: strategy.into(),
            at,
            decision: Some(format!("btc_BTCUSDT_{at}_schedule").into()),
            cash: Decimal::from(500),
            positions: vec![BookPosition {
                symbol: "BTCUSDT".into(),
                quantity: Decimal::new(1, 1),
                entry_price: Decimal::from(40_000),
                opened_at: at,
            }],
        })
    };
    let executor = NatsBus::connect(&server.url()).await.unwrap();
    for message in [book("btc", 1), book("eth", 2), book("btc", 3)] {
        executor.publish(&subjects.book(), &message).await.unwrap();
    }
    let newest = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            feed.changed().await.unwrap();
            let seen = feed.borrow_and_update().clone();
            if let Some(book) = seen.filter(|b| b.at == 3) {
                break book;
            }
        }
    })
    .await
    .expect("the executor's newest book");
    assert_eq!(
        (newest.strategy.as_str(), newest.cash),
        ("btc", Decimal::from(500))
    );
    // the other Strategy's book never replaced it
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(feed.borrow().as_ref().map(|b| b.at), Some(3));
}

/// A component started before its NATS server (a pod scheduled first) waits for it: it connects,
/// finds or makes the streams, and works once the server is up, instead of failing at start.
#[tokio::test]
async fn a_component_started_before_nats_waits_for_it() {
    let Some(mut server) = support::NatsServer::start() else {
        return;
    };
    server.stop();
    let url = server.url();
    let connecting = tokio::spawn(async move { NatsBus::connect(&url).await });
    // longer than a JetStream request's timeout (10 s): a look-up that timed out is retried
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(
        !connecting.is_finished(),
        "it gave up while the server was down"
    );
    server.restart();
    let bus = tokio::time::timeout(Duration::from_secs(20), connecting)
        .await
        .expect("connected once the server is up")
        .unwrap()
        .expect("the streams made");
    assert_eq!(bus.last_durable("ia.t.s.audit").await.unwrap(), None);
}
