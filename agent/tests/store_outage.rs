//! Nothing lost when PostgreSQL goes away (issue 16): a coordinator replaying over real nats-server
//! with the sample team as processes keeps deciding while its database is down, holds what it
//! decides, and writes it when the database is back: decisions made = published = stored, no
//! duplicate, and `audit verify` finds the chain intact.

use test_support as support;

use agent::store::{Store, Table};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const STRATEGY: &str = "btc-eth-paper";

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trading-agent"))
}

/// The five voters of the sample team on `nats`.
fn voters(nats: &str) -> Vec<Child> {
    let roles = [
        "marketMonitor",
        "technicalAnalyst",
        "fundamentalAnalyst",
        "riskManager",
        "strategist",
    ];
    roles
        .iter()
        .map(|role| {
            agent()
                .args(["assistant", "--nats", nats, "--namespace", "outage"])
                .args(["--strategy", STRATEGY, "--role", role])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect()
}

struct Killed(Vec<Child>);
impl Drop for Killed {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The sample policy, except that a split team holds at once and one round decides: a replay
/// that keeps deciding without a human (written into `dir`).
fn holding_policy(dir: &std::path::Path) -> std::path::PathBuf {
    let policy = dir.join("policy.yaml");
    let sample =
        std::fs::read_to_string(format!("{ROOT}/config/samples/consensuspolicy.yaml")).unwrap();
    let changed = sample
        .replace("action: Escalate", "action: Hold")
        .replace("maxRounds: 3", "maxRounds: 1");
    std::fs::write(&policy, changed).unwrap();
    policy
}

/// The coordinator replaying BTCUSDT's 2020 into `db` under `policy`, one
/// JSON line per decision published.
fn coordinator(nats: &str, db: &str, policy: &std::path::Path) -> Child {
    agent()
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
        .env("RUST_LOG", "warn,agent::engine::writer=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Every stdout line of `child`, as it comes.
fn lines_of(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for `n` more lines (within `limit`); how many came.
fn take(lines: &Receiver<String>, n: usize, limit: Duration) -> usize {
    let started = Instant::now();
    let mut seen = 0;
    while seen < n && started.elapsed() < limit {
        if lines.recv_timeout(Duration::from_millis(200)).is_ok() {
            seen += 1;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_loses_no_decision_and_writes_none_twice() {
    let (Some(nats), Some(mut pg)) = (support::NatsServer::start(), support::PgServer::start())
    else {
        return;
    };
    let _team = Killed(voters(&nats.url()));
    let dir = tempfile::tempdir().unwrap();
    let mut child = coordinator(&nats.url(), &pg.url(), &holding_policy(dir.path()));
    let lines = lines_of(&mut child);
    let mut published = take(&lines, 200, Duration::from_secs(120));
    assert_eq!(published, 200, "the replay did not get going");

    pg.stop();
    // the team goes on deciding and publishing while the database is away
    let during = take(&lines, 100, Duration::from_secs(8));
    published += during;
    assert!(during > 0, "no decision while the database was down");
    // longer than the pool waits for a connection (5 s): the writer must hold and retry
    std::thread::sleep(Duration::from_secs(8));
    pg.restart();

    let status = tokio::task::block_in_place(|| {
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(240),
                "the replay did not end"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    published += lines.try_iter().count();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(
        stderr.contains("the store does not answer"),
        "the outage was seen:\n{stderr}"
    );
    assert!(
        stderr.contains("the store answers again"),
        "and its end:\n{stderr}"
    );

    let store = Store::connect(&pg.url()).await.unwrap();
    let stored = store.count(Table::Decisions, STRATEGY).await.unwrap();
    assert_eq!(stored as usize, published, "decisions published = stored");
    // the coordinator's own counts: "<cycles> cycles over <candles> candles of …; <n> decisions on …"
    let summary = stderr
        .lines()
        .find(|l| l.contains(" cycles over "))
        .unwrap_or_else(|| panic!("no summary in:\n{stderr}"));
    let number = |after: &str| -> usize {
        summary
            .split(after)
            .next()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        number(" cycles over "),
        published,
        "decisions made = published: {summary}"
    );
    assert_eq!(number(" decisions on "), published, "{summary}");

    let verify = agent()
        .args(["audit", "verify", "--db", &pg.url()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verify.stdout).to_string()
        + &String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "audit verify: {said}");
    let audited = store.count(Table::AuditLog, STRATEGY).await.unwrap();
    let orders = store.count(Table::Orders, STRATEGY).await.unwrap();
    assert_eq!(
        audited,
        stored + orders,
        "one audit row per decision and order, none twice"
    );
}
