//! NATS authentication and authorization the NATS way (issue 17): `trading-agent nats-config`
//! writes a real nats-server configuration with one nkey identity per component; the team runs on
//! it with each process holding its own seed, a client without credentials is refused, and an
//! assistant's identity can neither decide nor resolve an escalation nor answer another role nor
//! anchor the audit chain; the coordinator anchors it, and the auditor's identity reads the anchor
//! for `audit verify --nats`.

// a scenario test reads top to bottom; the 100-line limit is for the code under test
#![allow(clippy::too_many_lines)]

use futures::StreamExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const PREFIX: &str = "ia.auth.btc-eth-paper";

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trading-agent"))
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

/// nats-server on a free port with the generated configuration, or `None` where it is missing.
fn secured_server(dir: &Path) -> Option<(Killed, u16)> {
    let binary = std::env::var("IA_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
    if Command::new(&binary).arg("--version").output().is_err() {
        eprintln!("SKIPPED: nats-server not found");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Command::new(&binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir.join("js"))
        .arg("-c")
        .arg(dir.join("nats.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nats-server did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((Killed(vec![server]), port))
}

fn seed(dir: &Path, identity: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{identity}.nk")))
        .unwrap()
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_component_speaks_as_itself_and_no_one_else_gets_in() {
    let dir = tempfile::tempdir().unwrap();
    let made = agent()
        .args(["nats-config", "--namespace", "auth", "--out"])
        .arg(dir.path())
        .arg("--strategy-file")
        .arg(format!("{ROOT}/config/samples/strategy.yaml"))
        .arg("--policy-file")
        .arg(format!("{ROOT}/config/samples/consensuspolicy.yaml"))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    for identity in [
        "coordinator",
        "executor",
        "auditor",
        "operator",
        "technicalAnalyst",
    ] {
        assert!(
            dir.path().join(format!("{identity}.nk")).exists(),
            "{identity}"
        );
    }
    let Some((_server, port)) = secured_server(dir.path()) else {
        return;
    };
    let url = format!("nats://127.0.0.1:{port}");

    // no credentials: refused by the server
    let answer = test_support::nats::anonymous_answer(port);
    assert!(answer.contains("Authorization Violation"), "{answer}");

    // an assistant's identity tries to decide, to resolve an escalation, and to answer for
    // another role; the coordinator's identity listens to the whole team
    let watcher = async_nats::ConnectOptions::with_nkey(seed(dir.path(), "coordinator"))
        .custom_inbox_prefix("_INBOX.coordinator")
        .connect(&url)
        .await
        .unwrap();
    let mut seen = watcher.subscribe(format!("{PREFIX}.>")).await.unwrap();
    watcher.flush().await.unwrap();
    let intruder = async_nats::ConnectOptions::with_nkey(seed(dir.path(), "technicalAnalyst"))
        .custom_inbox_prefix("_INBOX.technicalAnalyst")
        .connect(&url)
        .await
        .unwrap();
    for subject in [
        "decision",
        "escalation.btc-eth-paper_BTCUSDT_1_schedule",
        "analyze.strategist",
        "audit",
    ] {
        let _ = intruder
            .publish(format!("{PREFIX}.{subject}"), "forged".into())
            .await;
    }
    let _ = intruder.flush().await;
    for identity in ["executor", "operator"] {
        let other = async_nats::ConnectOptions::with_nkey(seed(dir.path(), identity))
            .custom_inbox_prefix(format!("_INBOX.{identity}"))
            .connect(&url)
            .await
            .unwrap();
        let _ = other
            .publish(format!("{PREFIX}.audit"), "forged".into())
            .await;
        let _ = other.flush().await;
    }
    let leaked = tokio::time::timeout(Duration::from_millis(800), seen.next()).await;
    assert!(leaked.is_err(), "a forged message got through: {leaked:?}");

    // a well-formed seed the server does not know: the process stops at once, saying so (a
    // configuration error, not an outage to wait out), and never prints the seed
    let stranger = dir.path().join("stranger.nk");
    let unknown = nkeys::KeyPair::new_user().seed().unwrap();
    std::fs::write(&stranger, &unknown).unwrap();
    let refused = agent()
        .args(["assistant", "--nats", &url, "--namespace", "auth"])
        .args(["--strategy", "btc-eth-paper", "--role", "strategist"])
        .arg("--nats-nkey-file")
        .arg(&stranger)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("the credentials of strategist do not work (authorization violation)"),
        "{said}"
    );
    assert!(!said.contains(&unknown), "no seed in the error");

    // the team itself runs, each process on its own seed; the assistants start first and wait for
    // the coordinator to make the streams (they may not)
    let mut team = Killed(vec![]);
    for role in [
        "marketMonitor",
        "technicalAnalyst",
        "fundamentalAnalyst",
        "riskManager",
        "strategist",
    ] {
        team.0.push(
            agent()
                .args(["assistant", "--nats", &url, "--namespace", "auth"])
                .args([
                    "--strategy",
                    "btc-eth-paper",
                    "--role",
                    role,
                    "--nats-nkey-file",
                ])
                .arg(dir.path().join(format!("{role}.nk")))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    let db = format!("sqlite://{}", dir.path().join("ia.db").display());
    let coordinator = agent()
        .args([
            "coordinator",
            "--nats",
            &url,
            "--namespace",
            "auth",
            "--db",
            &db,
            "--nats-nkey-file",
        ])
        .arg(dir.path().join("coordinator.nk"))
        .arg("--strategy-file")
        .arg(format!("{ROOT}/config/samples/strategy.yaml"))
        .arg("--policy-file")
        .arg(format!("{ROOT}/config/samples/consensuspolicy.yaml"))
        .args(["--symbols", "BTCUSDT", "--data"])
        .arg(format!("{ROOT}/data/BTCUSDT-1h.csv.gz"))
        .args([
            "--from",
            "2020-03-01",
            "--to",
            "2020-03-03",
            "--max-cycles",
            "2",
            "--json",
        ])
        .args(["--wait-for-voters", "20"])
        .env("IA_AUDIT_KEY", "auth-test-key")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&coordinator.stderr);
    let lines = test_support::processes::json_lines(&coordinator);
    assert_eq!(lines.len(), 2, "{stderr}");
    for line in &lines {
        assert_eq!(line["votes"].as_array().unwrap().len(), 5, "{line}");
    }
    assert!(
        !stderr.contains(&seed(dir.path(), "coordinator")),
        "no seed in the logs"
    );

    // the coordinator anchored its chain; the auditor's identity reads the anchor and verifies
    let verified = agent()
        .args(["audit", "verify", "--db", &db, "--nats", &url])
        .args(["--namespace", "auth", "--strategy", "btc-eth-paper"])
        .arg("--nats-nkey-file")
        .arg(dir.path().join("auditor.nk"))
        .env("IA_AUDIT_KEY", "auth-test-key")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(verified.status.success(), "{text}");
    assert!(
        text.contains(&format!("anchor {PREFIX}.audit: ")) && text.contains("is entry seq="),
        "{text}"
    );
}
