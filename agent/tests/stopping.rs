//! Every long-lived process stops promptly and cleanly on SIGTERM, in every state (issue 16): a
//! coordinator connecting to a NATS that is not there, one waiting for voters, one mid-replay (what
//! it decided is stored and published, equally), one whose NATS went away mid-run, and an
//! assistant that cannot connect. Each runs as a process and gets a real signal.

use test_support as support;

use agent::store::{Store, Table};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trading-agent"))
}

/// The coordinator of the sample Strategy replaying BTCUSDT hourly candles of 2020.
fn coordinator(nats: &str) -> Command {
    coordinator_with(
        nats,
        std::path::Path::new(&format!("{ROOT}/config/samples/consensuspolicy.yaml")),
    )
}

/// As [`coordinator`], under the policy in `policy`.
fn coordinator_with(nats: &str, policy: &std::path::Path) -> Command {
    let mut c = agent();
    c.args(["coordinator", "--nats", nats, "--namespace", "stop"])
        .arg("--strategy-file")
        .arg(format!("{ROOT}/config/samples/strategy.yaml"))
        .arg("--policy-file")
        .arg(policy)
        .args(["--symbols", "BTCUSDT", "--data"])
        .arg(format!("{ROOT}/data/BTCUSDT-1h.csv.gz"))
        .args(["--from", "2020-01-01", "--to", "2020-12-31"]);
    c
}

fn terminate(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM");
}

/// Waits for `child` to exit within `limit` after a SIGTERM; its status and how long it took.
fn stops_within(child: &mut Child, limit: Duration) -> (std::process::ExitStatus, Duration) {
    terminate(child);
    let asked = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, asked.elapsed());
        }
        if asked.elapsed() > limit {
            let _ = child.kill();
            panic!("still running {limit:?} after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut text);
    }
    text
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn processes_with_nothing_in_flight_stop_at_once() {
    let Some(server) = support::NatsServer::start() else {
        return;
    };
    let nowhere = format!("nats://127.0.0.1:{}", dead_port());
    let mut connecting = coordinator(&nowhere)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut assistant = agent()
        .args(["assistant", "--nats", &nowhere, "--namespace", "stop"])
        .args(["--strategy", "btc-eth-paper", "--role", "strategist"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // no assistant is there: it waits for its voters for up to a minute
    let mut waiting = coordinator(&server.url())
        .args(["--wait-for-voters", "60"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    for (what, child) in [
        ("connecting coordinator", &mut connecting),
        ("connecting assistant", &mut assistant),
        ("coordinator waiting for voters", &mut waiting),
    ] {
        let (status, took) = stops_within(child, Duration::from_secs(5));
        let stderr = stderr_of(child);
        assert!(status.success(), "{what}: {status:?}\n{stderr}");
        assert!(took < Duration::from_secs(3), "{what} took {took:?}");
    }
}

/// Starts the five voters of the sample team on `url` (killed when dropped).
fn voters(url: &str) -> support::processes::Killed {
    let agent = std::path::Path::new(env!("CARGO_BIN_EXE_trading-agent"));
    support::processes::voters(agent, url, "stop", "btc-eth-paper")
}

/// Reads `n` decision lines from the coordinator's stdout (then keeps draining it in the
/// background); the lines read.
fn first_lines(child: &mut Child, n: usize) -> std::sync::mpsc::Receiver<String> {
    let lines = support::processes::lines_of(child);
    let seen = support::processes::take_lines(&lines, n, Duration::from_secs(60));
    assert_eq!(seen, n, "no decisions");
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaying_coordinator_stops_between_cycles_with_everything_stored_and_published() {
    let Some(server) = support::NatsServer::start() else {
        return;
    };
    let _team = voters(&server.url());
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("stop.db").display());
    let mut child = coordinator(&server.url())
        .args(["--json", "--db", &db])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = first_lines(&mut child, 20);
    let (status, took) =
        tokio::task::block_in_place(|| stops_within(&mut child, Duration::from_secs(25)));
    let stderr = stderr_of(&mut child);
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(took < Duration::from_secs(15), "took {took:?}\n{stderr}");
    let published = 20 + lines.try_iter().count() as i64;
    let store = Store::connect_existing(&db).await.unwrap();
    let stored = store
        .count(Table::Decisions, "btc-eth-paper")
        .await
        .unwrap();
    assert_eq!(stored, published, "decisions stored = published\n{stderr}");
    assert!(published < 8_000, "it stopped before the year was over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_whose_nats_went_away_still_stops_and_says_what_is_unpublished() {
    let Some(mut server) = support::NatsServer::start() else {
        return;
    };
    let _team = voters(&server.url());
    // a split team holds at once, and rounds are short: decisions go on being made without the bus
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    let sample =
        std::fs::read_to_string(format!("{ROOT}/config/samples/consensuspolicy.yaml")).unwrap();
    std::fs::write(
        &policy,
        sample
            .replace("action: Escalate", "action: Hold")
            .replace("roundTimeoutSeconds: 10", "roundTimeoutSeconds: 1")
            .replace("maxRounds: 3", "maxRounds: 1"),
    )
    .unwrap();
    let mut child = coordinator_with(&server.url(), &policy)
        .args(["--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _lines = first_lines(&mut child, 5);
    server.stop();
    // a few cycles of one unanswered second each
    std::thread::sleep(Duration::from_secs(5));
    let (status, took) = tokio::task::block_in_place(|| {
        stops_within(&mut child, agent::shutdown::GRACE + Duration::from_secs(5))
    });
    let stderr = stderr_of(&mut child);
    assert!(
        took <= agent::shutdown::GRACE + Duration::from_secs(2),
        "took {took:?}\n{stderr}"
    );
    // decisions made while the bus was away cannot be published: not a clean exit, and it says so
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("not published"), "{stderr}");
}
