//! `trading-operator validate` and `render` as a user runs them: a mistyped apiVersion or a key
//! written twice is an error, not "skipped" or "valid"; a reader that stops early is no crash.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn operator(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trading-operator"))
        .args(args)
        .output()
        .expect("trading-operator runs")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

const STRATEGY: &str = "kind: Strategy\nmetadata:\n  name: s\nspec:\n  consensusPolicyRef:\n    name: balanced\n  symbols: [BTCUSDT]\n";

#[test]
fn validate_names_a_mistyped_or_missing_api_version() {
    let dir = tempfile::tempdir().unwrap();
    for (name, api_version) in [
        ("typo.yaml", "apiVersion: trading.ia-agent.dev/v1alpha1\n"),
        ("missing.yaml", ""),
    ] {
        let file = write(dir.path(), name, &format!("{api_version}{STRATEGY}"));
        let out = operator(&["validate", "-f", &file]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{name}: {stdout}");
        assert!(stdout.contains("INVALID"), "{name}: {stdout}");
    }
}

#[test]
fn validate_rejects_a_key_written_twice() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "apiVersion: trading.ia-agents.dev/v1alpha1\n{STRATEGY}  risk:\n    stopLoss: 0.05\n    stopLoss: 0.9\n"
    );
    let file = write(dir.path(), "twice.yaml", &text);
    let out = operator(&["validate", "-f", &file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("stopLoss"), "{stderr}");
}

#[test]
fn render_into_a_reader_that_stops_early_exits_quietly() {
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/samples");
    let files: Vec<String> = std::fs::read_dir(samples)
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_string())
        .filter(|p| p.ends_with(".yaml"))
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_trading-operator"))
        .arg("render")
        .arg("-f")
        .args(&files)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before the manifests are parsed: every write meets a broken pipe.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `render` takes the NetworkPolicies' peers as `run` does, from a flag or the chart's variable,
/// and names the flag of a peer that selects nothing.
#[test]
fn render_takes_the_network_peers_and_refuses_a_peer_that_selects_nothing() {
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/samples");
    let files =
        ["consensuspolicy.yaml", "strategy.yaml", "team.yaml"].map(|f| format!("{samples}/{f}"));
    let render = |flags: &[&str], env: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_trading-operator"));
        command.arg("render").args(flags);
        for file in &files {
            command.args(["-f", file]);
        }
        command.env_remove("IA_NETWORK_API_FROM");
        if let Some(peers) = env {
            command.env("IA_NETWORK_API_FROM", peers);
        }
        command.output().unwrap()
    };
    let ingress = r#"[{"namespaceSelector": {"matchLabels": {"team": "ingress"}}}]"#;
    for out in [
        render(&["--api-from", ingress], None),
        render(&[], Some(ingress)),
    ] {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let coordinator = stdout
            .split("---\n")
            .find(|d| {
                d.contains("kind: NetworkPolicy") && d.contains("name: btc-eth-paper-coordinator")
            })
            .unwrap();
        assert!(coordinator.contains("team: ingress"), "{coordinator}");
    }
    let out = render(&["--api-from", "[{namespaceSelecter: {}}]"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--api-from") && stderr.contains("peer 0 names no podSelector"),
        "{stderr}"
    );
}
