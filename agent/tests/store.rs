//! The store against real databases: SQLite in a temporary file, and PostgreSQL at
//! `IA_TEST_POSTGRES_URL` (scripts/test.sh starts a throwaway server on 127.0.0.1 and sets it).
//! The same checks run on both.

use agent::audit::verify;
use agent::store::{OrderRecord, Store, Table};
use protocol::messages::{Decision, Fill, Opinion, Order, OrderKind, RoundTally, Side};
use protocol::{Action, Role};

/// The Postgres URL, or a loud skip when running outside scripts/test.sh (never silently in CI).
fn postgres_url() -> Option<String> {
    match std::env::var("IA_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var("CI").is_ok() => {
            panic!("IA_TEST_POSTGRES_URL is not set in CI: scripts/test.sh starts PostgreSQL")
        }
        Err(_) => {
            eprintln!("SKIPPED: IA_TEST_POSTGRES_URL not set (run scripts/test.sh for the Postgres tests)");
            None
        }
    }
}

fn decision(id: &str, at: i64) -> Decision {
    let opinion = |assistant: &str, role, action| Opinion {
        cycle_id: id.into(),
        round: 1,
        assistant: assistant.into(),
        role,
        symbol: "BTCUSDT".into(),
        action,
        confidence: 0.7,
        reasoning: format!("{assistant} thinks {action}"),
        evidence: [("rsi".to_string(), 28.5)].into(),
        veto: false,
        llm: false,
    };
    Decision {
        id: id.into(),
        strategy: "s".into(),
        symbol: "BTCUSDT".into(),
        action: Action::Buy,
        confidence: 0.7,
        consensus_reached: true,
        escalated: false,
        vetoed: false,
        rounds: vec![RoundTally {
            round: 1,
            votes: vec![],
            scores: Default::default(),
            answered_weight: 2.0,
            total_weight: 2.0,
        }],
        transcript: vec![
            opinion("technical", Role::TechnicalAnalyst, Action::Buy),
            opinion("risk", Role::RiskManager, Action::Hold),
        ],
        price: 20_000.5,
        decided_at: at,
    }
}

fn order(id: &str) -> OrderRecord {
    let order = Order {
        decision_id: id.into(),
        strategy: "s".into(),
        symbol: "BTCUSDT".into(),
        side: Side::Buy,
        kind: OrderKind::Market,
        quantity: "0.12345678".parse().unwrap(),
        limit_price: None,
        at: 1,
    };
    OrderRecord {
        fill: Some(Fill {
            decision_id: id.into(),
            strategy: "s".into(),
            symbol: "BTCUSDT".into(),
            side: Side::Buy,
            quantity: order.quantity,
            price: "20010.00025".parse().unwrap(),
            fee: "2.4703".parse().unwrap(),
            at: 1,
        }),
        order,
        status: "FILLED",
        reason: "consensus".into(),
    }
}

async fn exercise(store: &Store, strategy: &str) {
    let mut chain = store.audit_chain(strategy).await.unwrap();
    let decisions: Vec<Decision> = (0..1200)
        .map(|i| decision(&format!("{strategy}-d{i}"), i))
        .collect();
    let orders: Vec<OrderRecord> = (0..600)
        .map(|i| order(&format!("{strategy}-d{i}")))
        .collect();
    store
        .record(strategy, &mut chain, &decisions[..700], &orders[..300])
        .await
        .unwrap();
    // a second batch continues the chain; replayed decisions and orders are not stored twice
    store
        .record(strategy, &mut chain, &decisions[600..], &orders[200..])
        .await
        .unwrap();
    assert_eq!(store.count(Table::Decisions, strategy).await.unwrap(), 1200);
    assert_eq!(store.count(Table::Opinions, strategy).await.unwrap(), 2400);
    assert_eq!(store.count(Table::Orders, strategy).await.unwrap(), 600);
    assert!(!store
        .insert_order_once(strategy, &order(&format!("{strategy}-d5")))
        .await
        .unwrap());
    assert!(store
        .insert_order_once(strategy, &order(&format!("{strategy}-new")))
        .await
        .unwrap());
    // the audit chain is intact across batches, and a reconnecting writer resumes it
    let entries: Vec<_> = store
        .audit_entries()
        .await
        .unwrap()
        .into_iter()
        .filter(|(s, _)| s == strategy)
        .map(|(_, e)| e)
        .collect();
    assert_eq!(verify(&entries), Ok(700 + 300 + 600 + 400));
    let resumed = store.audit_chain(strategy).await.unwrap();
    let mut again = resumed.clone();
    store
        .record(
            strategy,
            &mut again,
            &[decision(&format!("{strategy}-late"), 9)],
            &[],
        )
        .await
        .unwrap();
    let entries: Vec<_> = store
        .audit_entries()
        .await
        .unwrap()
        .into_iter()
        .filter(|(s, _)| s == strategy)
        .map(|(_, e)| e)
        .collect();
    assert_eq!(verify(&entries), Ok(2001));
    store
        .save_weights(
            strategy,
            5,
            &[("technical".into(), 1.4), ("risk".into(), 0.6)],
        )
        .await
        .unwrap();
    store
        .save_weights(strategy, 6, &[("technical".into(), 1.5)])
        .await
        .unwrap();
    assert_eq!(
        store
            .count(Table::AssistantWeights, strategy)
            .await
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn sqlite_stores_everything_once_with_an_intact_audit_chain() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ia.db").display());
    let store = Store::connect(&url).await.unwrap();
    exercise(&store, "sqlite-test").await;
    // migrations are idempotent: connecting again keeps the data
    let again = Store::connect(&url).await.unwrap();
    assert_eq!(
        again.count(Table::Decisions, "sqlite-test").await.unwrap(),
        1201
    );
}

#[tokio::test]
async fn postgres_stores_everything_once_with_an_intact_audit_chain() {
    let Some(url) = postgres_url() else { return };
    let store = Store::connect(&url).await.unwrap();
    // a unique strategy per run: the throwaway server may outlive one test run
    let strategy = format!("pg-{}", std::process::id());
    exercise(&store, &strategy).await;
}

#[tokio::test]
async fn bad_urls_and_unreachable_servers_are_named_without_secrets() {
    let e = Store::connect("mysql://x").await.unwrap_err().to_string();
    assert!(e.contains("use sqlite://PATH or postgres://HOST/DB"), "{e}");
    let e = Store::connect("postgres://ia:hunter2@127.0.0.1:1/ia")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("postgres://***@127.0.0.1:1/ia") && !e.contains("hunter2"),
        "{e}"
    );
}
