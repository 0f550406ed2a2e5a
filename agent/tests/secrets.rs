//! Secrets are never shown (issue 17): the binaries run with a known value in every variable that
//! can hold a secret, and nothing they print — every `--help`, the logs of a coordinator that
//! cannot reach its NATS, the errors of runs whose database cannot be reached — carries one.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A known value in every variable that can hold a secret (or a URL with one in it).
const SECRETS: &[(&str, &str)] = &[
    ("IA_DB", "postgres://ia:s3cret-db-pw@127.0.0.1:1/ia"),
    ("IA_NATS_URL", "nats://127.0.0.1:1"),
    ("IA_NATS_USER", "coordinator"),
    ("IA_NATS_PASSWORD", "s3cret-nats-pw"),
    ("IA_API_TOKEN", "s3cret-api-token"),
    ("IA_AUDIT_KEY", "s3cret-audit-key"),
    ("IA_EXCHANGE_API_KEY", "s3cret-binance-key"),
    ("IA_EXCHANGE_API_SECRET", "s3cret-binance-secret"),
    ("IA_OLLAMA_URL", "http://u:s3cret-ollama-pw@127.0.0.1:1"),
];

/// The secret parts of [`SECRETS`]: what must never be printed.
const NEVER_SHOWN: &[&str] = &[
    "s3cret-db-pw",
    "s3cret-nats-pw",
    "s3cret-api-token",
    "s3cret-audit-key",
    "s3cret-binance-key",
    "s3cret-binance-secret",
    "s3cret-ollama-pw",
];

fn agent(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trading-agent"));
    command
        .args(args)
        .envs(SECRETS.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn assert_shows_no_secret(what: &str, output: &Output) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for secret in NEVER_SHOWN {
        assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
    }
}

#[test]
fn no_help_shows_a_secret() {
    let commands: &[&[&str]] = &[
        &["--help"],
        &["check-config", "--help"],
        &["backtest", "--help"],
        &["evaluate", "--help"],
        &["nats-config", "--help"],
        &["data", "download", "--help"],
        &["audit", "verify", "--help"],
        &["run", "--help"],
        &["assistant", "--help"],
        &["coordinator", "--help"],
        &["train", "--help"],
        &["indicators", "--help"],
    ];
    for args in commands {
        let output = agent(args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        assert_shows_no_secret(&format!("{args:?}"), &output);
    }
}

#[test]
fn errors_about_an_unreachable_database_show_no_password() {
    for args in [
        &["backtest", "--symbols", "BTCUSDT"][..],
        &["audit", "verify"],
    ] {
        let output = agent(args).output().unwrap();
        assert!(
            !output.status.success(),
            "{args:?} cannot reach its database"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("127.0.0.1:1"),
            "the error names the database: {stderr}"
        );
        assert_shows_no_secret(&format!("{args:?}"), &output);
    }
}

#[test]
fn a_coordinator_retrying_its_nats_logs_no_credential() {
    let child = agent(&[
        "coordinator",
        "--strategy-file",
        "../config/samples/strategy.yaml",
        "--policy-file",
        "../config/samples/consensuspolicy.yaml",
        "--data",
        "../data/BTCUSDT-1h.csv.gz",
        "--symbols",
        "BTCUSDT",
    ])
    .env("RUST_LOG", "debug")
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    // SIGTERM: it stops promptly (tests/stopping.rs) and prints what it was doing
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    // a process that ignored the signal fails the test instead of hanging it
    let pid = child.id().to_string();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(30));
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
    });
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.code().is_some(),
        "it stopped on SIGTERM by itself, not by the watchdog's SIGKILL"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("NATS"),
        "it logged its connection attempts: {stderr}"
    );
    assert_shows_no_secret("the coordinator's log", &output);
}
