//! The store against real databases: SQLite in a temporary file, and PostgreSQL at
//! `IA_TEST_POSTGRES_URL` (scripts/test.sh starts a throwaway server on 127.0.0.1 and sets it).
//! The same checks run on both.

use agent::audit::{verify, AuditEntry, AuditKey};
use agent::store::{DecisionRow, OrderRecord, OrderStatus, PageQuery, Store, Table};
use protocol::messages::{Decision, Fill, Opinion, Order, OrderKind, RoundTally, Side, Vote};
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
        evidence: [("rsi".into(), 28.5)].into(),
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
        rejected: false,
        resolved_by: None,
        rounds: vec![RoundTally {
            round: 1,
            votes: vec![Vote {
                assistant: "technical".into(),
                role: Role::TechnicalAnalyst,
                action: Action::Buy,
                confidence: 0.7,
                weight: 1.2,
                veto: false,
            }],
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
        status: OrderStatus::Filled,
        reason: "consensus".into(),
    }
}

/// One row of the `opinions` view.
#[derive(Debug, PartialEq)]
struct OpinionRow {
    round: i32,
    assistant: String,
    role: String,
    symbol: String,
    action: String,
    confidence: f64,
    weight: f64,
    reasoning: String,
    evidence: serde_json::Value,
    veto: bool,
    llm: bool,
}

impl OpinionRow {
    /// What [`decision`]'s opinion of `assistant` reads as.
    fn expected(assistant: &str, role: &str, action: &str, weight: f64) -> Self {
        Self {
            round: 1,
            assistant: assistant.into(),
            role: role.into(),
            symbol: "BTCUSDT".into(),
            action: action.into(),
            confidence: 0.7,
            weight,
            reasoning: format!("{assistant} thinks {action}"),
            evidence: serde_json::json!({"rsi": 28.5}),
            veto: false,
            llm: false,
        }
    }
}

/// The `opinions` view's rows of one decision, in debate order, read with a connection of its own.
async fn opinion_rows(url: &str, strategy: &str, decision_id: &str) -> Vec<OpinionRow> {
    const SQL: &str = "SELECT round, assistant, role, symbol, action, confidence, weight, reasoning, evidence, veto, llm FROM opinions WHERE strategy = $1 AND decision_id = $2 ORDER BY position";
    macro_rules! rows {
        ($pool:expr) => {{
            let pool = $pool;
            sqlx::query_as::<
                _,
                (
                    i32,
                    String,
                    String,
                    String,
                    String,
                    f64,
                    f64,
                    String,
                    String,
                    bool,
                    bool,
                ),
            >(SQL)
            .bind(strategy)
            .bind(decision_id)
            .fetch_all(&pool)
            .await
            .unwrap()
        }};
    }
    let rows = if url.starts_with("sqlite:") {
        rows!(sqlx::SqlitePool::connect(url).await.unwrap())
    } else {
        rows!(sqlx::PgPool::connect(url).await.unwrap())
    };
    rows.into_iter()
        .map(|r| OpinionRow {
            round: r.0,
            assistant: r.1,
            role: r.2,
            symbol: r.3,
            action: r.4,
            confidence: r.5,
            weight: r.6,
            reasoning: r.7,
            evidence: serde_json::from_str(&r.8).unwrap(),
            veto: r.9,
            llm: r.10,
        })
        .collect()
}

/// A strategy's audit chain read as `audit verify` reads the log, page by page: small pages here, so
/// the chain crosses many page boundaries, and the scan starts at the strategy's first row and stops
/// at the next strategy's.
async fn audit_log_of(store: &Store, strategy: &str) -> Vec<AuditEntry> {
    let mut entries = vec![];
    let mut pages = store.audit_pages(Some((strategy, 0)), 333);
    while let Some(page) = pages.next().await.unwrap() {
        let before = entries.len();
        entries.extend(
            page.into_iter()
                .filter(|(s, _)| s == strategy)
                .map(|(_, e)| e),
        );
        if entries.len() - before < 333 {
            break;
        }
    }
    entries
}

async fn exercise(store: &Store, url: &str, strategy: &str) {
    let mut chain = store
        .audit_chain(strategy, &AuditKey::Unkeyed)
        .await
        .unwrap();
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
    // each opinion is a row of the `opinions` view, in debate order, with its vote's weight
    let rows = opinion_rows(url, strategy, &format!("{strategy}-d7")).await;
    assert_eq!(
        rows,
        vec![
            OpinionRow::expected("technical", "technicalAnalyst", "BUY", 1.2),
            OpinionRow::expected("risk", "riskManager", "HOLD", 0.0),
        ]
    );
    assert_eq!(store.count(Table::Orders, strategy).await.unwrap(), 600);
    assert!(!store
        .insert_order_once(strategy, &order(&format!("{strategy}-d5")))
        .await
        .unwrap());
    assert!(store
        .insert_order_once(strategy, &order(&format!("{strategy}-new")))
        .await
        .unwrap());
    // the audit chain is intact across batches, holds each row once (the replayed part of the
    // second batch adds no entry), and a reconnecting writer resumes it
    let entries = audit_log_of(store, strategy).await;
    assert_eq!(verify(&AuditKey::Unkeyed, &entries), Ok(1200 + 600));
    let resumed = store
        .audit_chain(strategy, &AuditKey::Unkeyed)
        .await
        .unwrap();
    let mut again = resumed.clone();
    // an escalated decision records who answered it, and its audit entry commits to that
    let mut late = decision(&format!("{strategy}-late"), 9);
    late.escalated = true;
    late.resolved_by = Some("annotation on Strategy ns/s".into());
    store
        .record(strategy, &mut again, std::slice::from_ref(&late), &[])
        .await
        .unwrap();
    let entries = audit_log_of(store, strategy).await;
    assert_eq!(verify(&AuditKey::Unkeyed, &entries), Ok(1801));
    let stored = store.decision(strategy, &late.id).await.unwrap().unwrap();
    assert_eq!(stored.resolved_by, late.resolved_by);
    assert_eq!(stored.digest(), DecisionRow::of(&late).digest());
    let unresolved = DecisionRow {
        resolved_by: None,
        ..stored.clone()
    };
    assert_ne!(
        stored.digest(),
        unresolved.digest(),
        "who answered is in the digest"
    );
    // an anchor's entry is looked up by its seq (the coordinator's check before it anchors again)
    let last = entries.last().unwrap();
    assert!(
        last.payload
            .contains(r#""resolvedBy":"annotation on Strategy ns/s""#),
        "{}",
        last.payload
    );
    assert_eq!(
        store.audit_hash(strategy, 1801).await.unwrap(),
        Some(last.hash.clone())
    );
    assert_eq!(store.audit_hash(strategy, 1802).await.unwrap(), None);
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
    read_back(store, strategy).await;
}

/// Every read the API makes, on what [`exercise`] stored: rows come back by column name, typed.
async fn read_back(store: &Store, strategy: &str) {
    let weights = store.weights(strategy).await.unwrap();
    let weights: Vec<(&str, f64, i64)> = weights
        .iter()
        .map(|w| (w.assistant.as_str(), w.weight, w.updated_at))
        .collect();
    assert_eq!(weights, vec![("risk", 0.6, 5), ("technical", 1.5, 6)]);
    let page = PageQuery {
        symbol: Some("BTCUSDT".into()),
        limit: Some(2),
        ..PageQuery::default()
    };
    let newest = store.decisions_page(strategy, &page).await.unwrap();
    assert_eq!(newest.len(), 2);
    let first = &newest[0];
    assert_eq!(first.id, format!("{strategy}-d1199"));
    assert_eq!(
        (first.symbol.as_str(), first.action.as_str(), first.rounds),
        ("BTCUSDT", "BUY", 1)
    );
    assert_eq!((first.price, first.decided_at), (20_000.5, 1199));
    assert!(first.consensus_reached && !first.escalated && !first.vetoed && !first.rejected);
    assert!(
        first.tally.contains(r#""answeredWeight":2.0"#),
        "{}",
        first.tally
    );
    let other_symbol = PageQuery {
        symbol: Some("ETHUSDT".into()),
        ..PageQuery::default()
    };
    assert!(store
        .decisions_page(strategy, &other_symbol)
        .await
        .unwrap()
        .is_empty());
    let orders = store.orders_page(strategy, &page).await.unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(
        (orders[0].side.as_str(), orders[0].quantity.as_str()),
        ("BUY", "0.12345678")
    );
    let positions = [(
        "BTCUSDT".to_string(),
        "0.5".to_string(),
        "20000.5".to_string(),
    )];
    store
        .save_portfolio(strategy, 7, "10100.25", "100.0", &positions)
        .await
        .unwrap();
    let book = store.portfolio(strategy).await.unwrap();
    assert_eq!(book.positions.len(), 1);
    assert_eq!(
        (
            book.positions[0].quantity.as_str(),
            book.positions[0].entry_price.as_str()
        ),
        ("0.5", "20000.5")
    );
    let latest = book.latest.unwrap();
    assert_eq!(
        (latest.at, latest.equity.as_str(), latest.cash.as_str()),
        (7, "10100.25", "100.0")
    );
    assert_eq!(
        store.equity_curve(strategy, 10).await.unwrap(),
        vec![latest]
    );
}

#[tokio::test]
async fn sqlite_stores_everything_once_with_an_intact_audit_chain() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ia.db").display());
    let store = Store::connect(&url).await.unwrap();
    exercise(&store, &url, "sqlite-test").await;
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
    exercise(&store, &url, &strategy).await;
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

/// Brings a database to the schema before the debate moved into `decisions` (one row per opinion),
/// records a decision there the old way, then lets [`Store::connect`] migrate it: the opinions must
/// come out of the `opinions` view as they went in.
macro_rules! migrates_old_opinions {
    ($pool:expr, $dir:literal, $url:expr) => {{
        let pool = $pool;
        let mut migrator = sqlx::migrate::Migrator::new(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join($dir),
        )
        .await
        .unwrap();
        migrator.migrations = migrator
            .migrations
            .iter()
            .filter(|m| m.version < 20261126000001)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        migrator.run(&pool).await.unwrap();
        sqlx::query("INSERT INTO decisions (id, strategy, symbol, action, confidence, consensus_reached, escalated, vetoed, rounds, votes, price, decided_at) VALUES ('old-d1', 'old', 'BTCUSDT', 'BUY', 0.7, TRUE, FALSE, FALSE, 1, '[]', 20000.5, 1)")
            .execute(&pool).await.unwrap();
        for (assistant, role, action, weight) in [("technical", "technicalAnalyst", "BUY", 1.2), ("risk", "riskManager", "HOLD", 0.0)] {
            sqlx::query("INSERT INTO opinions (strategy, decision_id, round, assistant, role, symbol, action, confidence, weight, reasoning, evidence, veto, llm) VALUES ('old', 'old-d1', 1, $1, $2, 'BTCUSDT', $3, 0.7, $4, $5, '{\"rsi\":28.5}', FALSE, FALSE)")
                .bind(assistant).bind(role).bind(action).bind(weight)
                .bind(format!("{assistant} thinks {action}"))
                .execute(&pool).await.unwrap();
        }
        pool.close().await;
        let store = Store::connect($url).await.unwrap();
        assert_eq!(store.count(Table::Opinions, "old").await.unwrap(), 2);
        assert_eq!(
            opinion_rows($url, "old", "old-d1").await,
            vec![
                OpinionRow::expected("technical", "technicalAnalyst", "BUY", 1.2),
                OpinionRow::expected("risk", "riskManager", "HOLD", 0.0),
            ]
        );
    }};
}

#[tokio::test]
async fn sqlite_opinions_stored_one_row_each_move_into_their_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    migrates_old_opinions!(
        sqlx::SqlitePool::connect(&url).await.unwrap(),
        "migrations/sqlite",
        &url
    );
}

#[tokio::test]
async fn postgres_opinions_stored_one_row_each_move_into_their_decisions() {
    let Some(url) = postgres_url() else { return };
    // a database of its own, at the old schema (the name is ours: digits after a fixed prefix)
    let name = format!("ia_migrate_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    let old = format!("{base}/{name}");
    migrates_old_opinions!(
        sqlx::PgPool::connect(&old).await.unwrap(),
        "migrations/postgres",
        &old
    );
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .unwrap();
}
