//! Nothing lost through an outage (issue 16). A coordinator replaying 2020 over a real nats-server,
//! with the sample team as processes, keeps its promises when
//! - PostgreSQL goes away: it goes on deciding and publishing, holds what it decides, and writes it
//!   when the database is back;
//! - NATS goes away: decisions wait for the stream, at most `--max-unpublished` of them, then the
//!   team stops deciding until the stream catches up; none is dropped.
//!
//! Either way: decisions made = published = stored, one audit row per decision and order, and
//! `audit verify` finds the chain intact.

use test_support::processes::{
    audit_verified, exit_of, holding_policy, lines_of, take_lines, voters,
};
use test_support::{NatsServer, PgServer};

use agent::store::{Store, Table};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const STRATEGY: &str = "btc-eth-paper";
const AGENT: &str = env!("CARGO_BIN_EXE_trading-agent");

/// The coordinator replaying BTCUSDT's 2020 into `db` under `policy`, one JSON line per decision
/// published, with `extra` arguments.
fn coordinator(nats: &str, db: &str, policy: &Path, extra: &[&str]) -> Child {
    Command::new(AGENT)
        .args([
            "coordinator",
            "--nats",
            nats,
            "--namespace",
            "outage",
            "--json",
            "--db",
            db,
        ])
        .arg("--strategy-file")
        .arg(format!("{ROOT}/config/samples/strategy.yaml"))
        .arg("--policy-file")
        .arg(policy)
        .args(["--symbols", "BTCUSDT", "--data"])
        .arg(format!("{ROOT}/data/BTCUSDT-1h.csv.gz"))
        .args(["--from", "2020-01-01", "--to", "2020-12-31"])
        .args(extra)
        .env(
            "RUST_LOG",
            "warn,agent::engine::writer=info,agent::bus::publisher=info",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Checks a finished run: it exited cleanly, said it made and published `published` decisions,
/// the store holds each once with one audit row per decision and order, and the chain verifies.
async fn nothing_lost(db: &str, status: std::process::ExitStatus, stderr: &str, published: usize) {
    assert!(status.success(), "{status:?}\n{stderr}");
    // "<cycles> cycles over <candles> candles of …; <n> decisions on …"
    let summary = stderr
        .lines()
        .find(|l| l.contains(" cycles over "))
        .unwrap_or_else(|| panic!("no summary in:\n{stderr}"));
    let number = |after: &str| -> usize {
        let before = summary.split(after).next().unwrap();
        before.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(
        number(" cycles over "),
        published,
        "made = published: {summary}"
    );
    assert_eq!(number(" decisions on "), published, "{summary}");
    let store = Store::connect(db).await.unwrap();
    let stored = store.count(Table::Decisions, STRATEGY).await.unwrap();
    assert_eq!(stored as usize, published, "published = stored");
    let audited = store.count(Table::AuditLog, STRATEGY).await.unwrap();
    let orders = store.count(Table::Orders, STRATEGY).await.unwrap();
    assert_eq!(
        audited,
        stored + orders,
        "one audit row per decision and order, none twice"
    );
    audit_verified(Path::new(AGENT), &["--db", db]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_loses_no_decision_and_writes_none_twice() {
    let (Some(nats), Some(mut pg)) = (NatsServer::start(), PgServer::start()) else {
        return;
    };
    let _team = voters(Path::new(AGENT), &nats.url(), "outage", STRATEGY);
    let dir = tempfile::tempdir().unwrap();
    let mut child = coordinator(&nats.url(), &pg.url(), &holding_policy(dir.path()), &[]);
    let lines = lines_of(&mut child);
    let mut published = take_lines(&lines, 200, Duration::from_secs(120));
    assert_eq!(published, 200, "the replay did not get going");

    pg.stop();
    // the team goes on deciding and publishing while the database is away
    let during = take_lines(&lines, 100, Duration::from_secs(8));
    assert_eq!(during, 100, "decisions stalled while the database was down");
    published += during;
    // longer than the pool waits for a connection (5 s): the writer must hold and retry
    std::thread::sleep(Duration::from_secs(8));
    pg.restart();

    let (status, stderr) =
        tokio::task::block_in_place(|| exit_of(&mut child, Duration::from_secs(240)));
    published += lines.try_iter().count();
    assert!(
        stderr.contains("the store does not answer"),
        "the outage was seen:\n{stderr}"
    );
    assert!(
        stderr.contains("the store answers again"),
        "and its end:\n{stderr}"
    );
    nothing_lost(&pg.url(), status, &stderr, published).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_outage_holds_at_most_the_bound_and_drops_nothing() {
    let Some(mut nats) = NatsServer::start() else {
        return;
    };
    let _team = voters(Path::new(AGENT), &nats.url(), "outage", STRATEGY);
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("outage.db").display());
    let policy = holding_policy(dir.path());
    let mut child = coordinator(&nats.url(), &db, &policy, &["--max-unpublished", "5"]);
    let lines = lines_of(&mut child);
    let mut published = take_lines(&lines, 100, Duration::from_secs(120));
    assert_eq!(published, 100, "the replay did not get going");

    nats.stop();
    // rounds without voters end in a second each; after five decisions the team waits
    std::thread::sleep(Duration::from_secs(12));
    nats.restart();

    let (status, stderr) =
        tokio::task::block_in_place(|| exit_of(&mut child, Duration::from_secs(300)));
    published += lines.try_iter().count();
    assert!(
        stderr.contains("no new decision until it catches up"),
        "the bound was reached:\n{stderr}"
    );
    assert!(stderr.contains("deciding again"), "and left:\n{stderr}");
    nothing_lost(&db, status, &stderr, published).await;
}
