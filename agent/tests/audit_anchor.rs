//! The audit anchor outside the database (issue 17): a coordinator replaying with a store publishes
//! the head of its audit chain on `ia.<ns>.<strategy>.audit` once stored, equal to the store's;
//! `audit verify --nats` checks the database against it and catches a truncation; a coordinator
//! restarted on the truncated database does not anchor over the evidence. It also publishes its book
//! (`….portfolio`) for the Strategy's status.

// a scenario test reads top to bottom; the 100-line limit is for the code under test
#![allow(clippy::too_many_lines)]

use test_support as support;

use agent::audit::AuditKey;
use agent::bus::nats::NatsBus;
use agent::bus::Bus;
use agent::roles::{Analyst, Judgement};
use agent::service::AssistantService;
use agent::store::Store;
use protocol::messages::{AuditHead, Message, RoundRequest};
use protocol::subjects::Subjects;
use protocol::{Action, Role};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const KEY: &str = "anchor-test-key";
const NS: &str = "anchor";
const STRATEGY: &str = "btc-eth-paper";

struct AlwaysHold(Role);

impl Analyst for AlwaysHold {
    fn role(&self) -> Role {
        self.0
    }
    fn analyze(&self, _: &RoundRequest) -> Judgement {
        Judgement::new(Action::Hold, 0.9, "holds")
    }
    fn debate(&self, r: &RoundRequest, _: &str) -> Judgement {
        self.analyze(r)
    }
}

/// The coordinator over the sample Strategy, replaying `cycles` hourly BTCUSDT candles into `db`.
fn coordinator(url: &str, db: &str, cycles: &str) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trading-agent"));
    c.args(["coordinator", "--nats", url, "--namespace", NS])
        .args(["--db", db, "--max-cycles", cycles])
        .args([
            "--strategy-file",
            &format!("{ROOT}/config/samples/strategy.yaml"),
        ])
        .args([
            "--policy-file",
            &format!("{ROOT}/config/samples/consensuspolicy.yaml"),
        ])
        .args([
            "--symbols",
            "BTCUSDT",
            "--data",
            &format!("{ROOT}/data/BTCUSDT-1h.csv.gz"),
        ])
        .args(["--from", "2020-03-01", "--to", "2020-03-10"])
        .args(["--wait-for-voters", "20"])
        .env("IA_AUDIT_KEY", KEY);
    let output = support::output_within(c, Duration::from_secs(120));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `audit verify` of `db`; (success, stdout + stderr).
fn verify(db: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trading-agent"))
        .args(["audit", "verify", "--db", db])
        .args(args)
        .env("IA_AUDIT_KEY", KEY)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn anchor_on(bus: &NatsBus, subjects: &Subjects) -> AuditHead {
    match bus.last_durable(&subjects.audit()).await.unwrap() {
        Some(Message::AuditHead(anchor)) => anchor,
        other => panic!("no anchor on {}: {other:?}", subjects.audit()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_anchors_the_stored_chain_and_verify_catches_a_truncation() {
    let Some(server) = support::NatsServer::start() else {
        return;
    };
    let url = server.url();
    let bus = NatsBus::connect(&url).await.unwrap();
    let subjects = Subjects::new(NS, STRATEGY).unwrap();
    for role in Role::DEFAULT_VOTERS {
        let service = AssistantService {
            bus: bus.clone(),
            subjects: subjects.clone(),
            strategy: STRATEGY.into(),
            assistant: role.as_str().into(),
            instance: format!("{}-0", role.as_str()),
            role,
            weight: 1.0,
            analyst: Arc::new(AlwaysHold(role)),
            heartbeat_every: Duration::from_millis(500),
            llm: None,
        };
        tokio::spawn(service.run(std::future::pending()));
    }
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("ia.db").display());

    // the replay also publishes its book (`….portfolio`, core NATS) for the operator's status
    let watcher = async_nats::connect(&url).await.unwrap();
    let mut books = watcher.subscribe(subjects.portfolio()).await.unwrap();
    watcher.flush().await.unwrap();

    // the replay stores its decisions and their audit entries, then anchors the chain's head
    tokio::task::block_in_place(|| coordinator(&url, &db, "30"));
    let book = tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut books))
        .await
        .expect("the coordinator published its book")
        .unwrap();
    match protocol::messages::decode(&book.payload) {
        // the team only holds: the capital untouched
        Ok(Message::Portfolio(p)) => {
            assert_eq!(
                (p.strategy.as_str(), p.equity, p.pnl, p.open_positions),
                (STRATEGY, 10_000.0, 0.0, 0)
            );
        }
        other => panic!("not a portfolio: {other:?}"),
    }
    let anchor = anchor_on(&bus, &subjects).await;
    let store = Store::connect_existing(&db).await.unwrap();
    let chain = store
        .audit_chain(STRATEGY, &AuditKey::Keyed(KEY.as_bytes().to_vec()))
        .await
        .unwrap();
    assert_eq!(
        chain.head(),
        (anchor.entries as i64, anchor.head.as_str()),
        "the anchor is the stored chain's head"
    );
    assert!(anchor.entries >= 30, "one entry per decision at least");
    assert!(anchor.keyed && anchor.strategy == STRATEGY);

    // verified against the anchor read from NATS
    let from_nats = [
        "--nats",
        url.as_str(),
        "--namespace",
        NS,
        "--strategy",
        STRATEGY,
    ];
    let (ok, text) = verify(&db, &from_nats);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("anchor {}", subjects.audit())) && text.contains(&anchor.head),
        "{text}"
    );
    assert!(text.contains("chain intact"), "{text}");

    // no anchor for another team: the error names the subject
    let (ok, text) = verify(
        &db,
        &[
            "--nats",
            url.as_str(),
            "--namespace",
            NS,
            "--strategy",
            "another",
        ],
    );
    assert!(
        !ok && text.contains("no audit anchor on ia.anchor.another.audit"),
        "{text}"
    );

    // the last audit row deleted: the chain left is intact, but no longer reaches the anchor
    let Store::Sqlite { pool, .. } = &store else {
        unreachable!()
    };
    sqlx::query("DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)")
        .execute(pool)
        .await
        .unwrap();
    store.close().await;
    let (ok, text) = verify(&db, &from_nats);
    assert!(!ok, "{text}");
    assert!(
        text.contains("BROKEN no intact entry of strategy btc-eth-paper has the anchored head")
            && text.contains("truncated"),
        "{text}"
    );

    // restarted on the truncated database, with more cycles to decide: the coordinator stores
    // them, but does not anchor its shorter chain over the evidence
    let again = tokio::task::block_in_place(|| coordinator(&url, &db, "40"));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("does not reach the anchor"), "{stderr}");
    assert_eq!(anchor_on(&bus, &subjects).await, anchor);
    let (ok, text) = verify(&db, &from_nats);
    assert!(!ok, "{text}");
}
