//! The executor and the auditor as services of their own (issue 16, item 1), over a real
//! nats-server and PostgreSQL, every component a process: a coordinator with `--services`
//! replaying BTCUSDT's first quarter of 2020, the sample's voters, an executor and an auditor.
//! Each service is killed (SIGKILL) mid-run and started again, then PostgreSQL is stopped for 6 s,
//! then nats-server for 5 s. At the end:
//! - decisions made = published = stored, once each, with one audit row per decision and order,
//!   and `audit verify` finds the chain intact and anchored;
//! - every order report on the stream is stored once (a redelivered decision placed no second
//!   order), and the executor's fills add up to the coordinator's view of the book: the restarted
//!   executor rebuilt the same book from the stream;
//! - both services stop promptly on SIGTERM.

use test_support::processes::{
    audit_verified, exit_of, holding_policy, lines_of, take_lines, voters,
};
use test_support::{NatsServer, PgServer};

use agent::store::{Store, Table};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const STRATEGY: &str = "btc-eth-paper";
const NAMESPACE: &str = "services";
const AGENT: &str = env!("CARGO_BIN_EXE_trading-agent");

/// The coordinator's and the executor's nkeys: they sign what they put on the stream, and the
/// services take only what their peer signed (`bus::signing`). (This nats-server has no
/// authorization: the seeds only sign.)
struct Keys {
    coordinator_seed: std::path::PathBuf,
    coordinator: String,
    executor_seed: std::path::PathBuf,
    executor: String,
}

fn keys() -> &'static Keys {
    static KEYS: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let pair = |name: &str| {
            let key = nkeys::KeyPair::new_user();
            let path = dir.join(format!("{name}.nk"));
            std::fs::write(&path, key.seed().unwrap()).unwrap();
            (path, key.public_key())
        };
        let (coordinator_seed, coordinator) = pair("coordinator");
        let (executor_seed, executor) = pair("executor");
        Keys {
            coordinator_seed,
            coordinator,
            executor_seed,
            executor,
        }
    })
}

/// `trading-agent assistant --role <role>` as a service of the team.
fn service(role: &str, nats: &str, db: &str) -> Child {
    let keys = keys();
    let mut command = Command::new(AGENT);
    command.env(protocol::env::COORDINATOR_KEY, &keys.coordinator);
    if role == "executor" {
        command.env(protocol::env::NATS_NKEY_FILE, &keys.executor_seed);
    } else {
        command.env(protocol::env::EXECUTOR_KEY, &keys.executor);
    }
    command
        .args(["assistant", "--nats", nats, "--namespace", NAMESPACE])
        .args(["--strategy", STRATEGY, "--role", role, "--db", db])
        .arg("--strategy-file")
        .arg(format!("{ROOT}/config/samples/strategy.yaml"))
        .env(
            "RUST_LOG",
            "warn,agent::services=info,agent::engine::writer=info",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn coordinator(nats: &str, db: &str, policy: &std::path::Path) -> Child {
    Command::new(AGENT)
        .env(protocol::env::NATS_NKEY_FILE, &keys().coordinator_seed)
        .args(["coordinator", "--services", "--nats", nats])
        .args(["--namespace", NAMESPACE, "--json", "--db", db])
        .arg("--strategy-file")
        .arg(format!("{ROOT}/config/samples/strategy.yaml"))
        .arg("--policy-file")
        .arg(policy)
        .args(["--symbols", "BTCUSDT", "--data"])
        .arg(format!("{ROOT}/data/BTCUSDT-1h.csv.gz"))
        .args(["--from", "2020-01-01", "--to", "2020-03-31"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn kill_and_restart(child: &mut Child, role: &str, nats: &str, db: &str) {
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    *child = service(role, nats, db);
}

/// Waits until both services' consumers have nothing pending or unacknowledged (false: not
/// within two minutes).
async fn caught_up(nats: &str) -> bool {
    let client = async_nats::connect(nats).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let stream = jetstream.get_stream("IA_DECISIONS").await.unwrap();
    let started = Instant::now();
    loop {
        let mut idle = true;
        for consumer in ["executor", "auditor", "auditor-orders"] {
            let name = format!("ia_{NAMESPACE}_{STRATEGY}_{consumer}");
            let info = stream.consumer_info(&name).await.unwrap();
            idle &= info.num_pending == 0 && info.num_ack_pending == 0;
        }
        if idle {
            return true;
        }
        if started.elapsed() > Duration::from_secs(120) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Messages on `subject` in the decision stream.
async fn on_stream(nats: &str, subject: &str) -> u64 {
    let client = async_nats::connect(nats).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let stream = jetstream.get_stream("IA_DECISIONS").await.unwrap();
    let mut info = stream.info_with_subjects(subject).await.unwrap();
    let mut total = 0;
    while let Some(Ok((_, count))) = futures::StreamExt::next(&mut info).await {
        total += count as u64;
    }
    total
}

/// Net quantity bought per symbol, from the filled orders in `db`.
async fn filled_positions(db: &str) -> BTreeMap<String, Decimal> {
    let pool = sqlx::PgPool::connect(db).await.unwrap();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT symbol, side, quantity FROM orders WHERE strategy = $1 AND status = 'FILLED'",
    )
    .bind(STRATEGY)
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut held = BTreeMap::new();
    for (symbol, side, quantity) in rows {
        let q = Decimal::from_str(&quantity).unwrap();
        let signed = if side == "BUY" { q } else { -q };
        *held.entry(symbol).or_insert(Decimal::ZERO) += signed;
    }
    held.retain(|_, q| !q.is_zero());
    held
}

fn sigterm_exits_promptly(child: &mut Child, role: &str) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let (status, stderr) = exit_of(child, Duration::from_secs(10));
    assert!(
        status.success(),
        "the {role} stops cleanly on SIGTERM: {status:?}\n{stderr}"
    );
    assert!(stderr.contains(&format!("the {role} stops")), "{stderr}");
    if role == "auditor" {
        assert!(
            stderr.contains("the store does not answer"),
            "the outage was seen: {stderr}"
        );
        assert!(
            stderr.contains("the store answers again"),
            "and its end: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_place_and_record_every_decision_once_through_crashes() {
    let (Some(mut nats), Some(mut pg)) = (NatsServer::start(), PgServer::start()) else {
        return;
    };
    let (url, db) = (nats.url(), pg.url());
    let _team = voters(std::path::Path::new(AGENT), &url, NAMESPACE, STRATEGY);
    let mut executor = service("executor", &url, &db);
    let mut auditor = service("auditor", &url, &db);
    let dir = tempfile::tempdir().unwrap();
    let mut child = coordinator(&url, &db, &holding_policy(dir.path()));
    let lines = lines_of(&mut child);
    let mut published = take_lines(&lines, 300, Duration::from_secs(120));
    assert_eq!(published, 300, "the replay did not get going");
    kill_and_restart(&mut executor, "executor", &url, &db);
    published += take_lines(&lines, 300, Duration::from_secs(60));
    kill_and_restart(&mut auditor, "auditor", &url, &db);
    // (an auditor that starts while the database is down waits for it; here it is running when
    // the database goes)
    std::thread::sleep(Duration::from_secs(2));
    published += take_lines(&lines, 100, Duration::from_secs(60));
    // the database goes away: the team goes on, the auditor holds its batch and the stream the rest
    pg.stop();
    let during = take_lines(&lines, 100, Duration::from_secs(10));
    assert_eq!(during, 100, "decisions stalled while the database was down");
    published += during;
    std::thread::sleep(Duration::from_secs(6));
    pg.restart();
    published += take_lines(&lines, 100, Duration::from_secs(60));
    // and NATS goes away: every process waits for it, and the services go on where they were
    nats.stop();
    std::thread::sleep(Duration::from_secs(5));
    nats.restart();
    let (status, stderr) =
        tokio::task::block_in_place(|| exit_of(&mut child, Duration::from_secs(240)));
    published += lines.try_iter().count();
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(
        published > 1000,
        "a quarter of hourly decisions: {published}"
    );
    if !caught_up(&url).await {
        for (child, role) in [(&mut executor, "executor"), (&mut auditor, "auditor")] {
            let _ = child.kill();
            let (_, stderr) = exit_of(child, Duration::from_secs(5));
            eprintln!("--- {role}:\n{stderr}");
        }
        panic!("the services did not catch up");
    }

    let store = Store::connect(&db).await.unwrap();
    let stored = store.count(Table::Decisions, STRATEGY).await.unwrap();
    assert_eq!(stored as usize, published, "made = published = stored");
    let orders = store.count(Table::Orders, STRATEGY).await.unwrap();
    assert!(orders >= 4, "the executor traded: {orders} orders");
    let audited = store.count(Table::AuditLog, STRATEGY).await.unwrap();
    assert_eq!(
        audited,
        stored + orders,
        "one audit row per decision and order, none twice"
    );
    let prefix = format!("ia.{NAMESPACE}.{STRATEGY}");
    assert_eq!(
        on_stream(&url, &format!("{prefix}.order")).await,
        orders as u64,
        "every order report on the stream is stored, and none was published twice"
    );
    // the executor's fills add up to the book the coordinator decided with
    let book = store.portfolio(STRATEGY).await.unwrap();
    let coordinator_book: BTreeMap<String, Decimal> = book
        .positions
        .iter()
        .map(|p| (p.symbol.clone(), Decimal::from_str(&p.quantity).unwrap()))
        .filter(|(_, q)| !q.is_zero())
        .collect();
    assert_eq!(filled_positions(&db).await, coordinator_book);

    audit_verified(
        std::path::Path::new(AGENT),
        &[
            "--db",
            &db,
            "--nats",
            &url,
            "--namespace",
            NAMESPACE,
            "--strategy",
            STRATEGY,
        ],
    );
    sigterm_exits_promptly(&mut executor, "executor");
    sigterm_exits_promptly(&mut auditor, "auditor");
}
