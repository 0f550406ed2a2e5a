//! The team as processes, for the tests that run the real binaries: the sample team's five voters
//! over a NATS server, killed with the test, and a child's stdout read line by line.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// The sample team's voting roles.
pub const VOTERS: [&str; 5] = [
    "marketMonitor",
    "technicalAnalyst",
    "fundamentalAnalyst",
    "riskManager",
    "strategist",
];

/// Child processes killed (and reaped) when dropped.
pub struct Killed(pub Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The five voters of `strategy` as `agent assistant` processes (the `trading-agent` binary at
/// `agent`) on `nats`, in `namespace`.
pub fn voters(agent: &Path, nats: &str, namespace: &str, strategy: &str) -> Killed {
    let spawn = |role: &str| {
        Command::new(agent)
            .args(["assistant", "--nats", nats, "--namespace", namespace])
            .args(["--strategy", strategy, "--role", role])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("an assistant process starts")
    };
    Killed(VOTERS.iter().map(|role| spawn(role)).collect())
}

/// Every stdout line of `child` (spawned with a piped stdout), as it comes.
pub fn lines_of(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().expect("a piped stdout");
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

/// Waits for up to `n` more lines within `limit`; how many came.
pub fn take_lines(lines: &Receiver<String>, n: usize, limit: Duration) -> usize {
    let started = Instant::now();
    let mut seen = 0;
    while seen < n && started.elapsed() < limit {
        if lines.recv_timeout(Duration::from_millis(200)).is_ok() {
            seen += 1;
        }
    }
    seen
}

/// Waits for `child` to exit (within `limit`, else kills it and panics) and returns its status
/// and all it wrote on stderr (spawned with a piped stderr).
pub fn exit_of(child: &mut Child, limit: Duration) -> (std::process::ExitStatus, String) {
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    (status, stderr)
}

/// The sample ConsensusPolicy written into `dir`, except that a split team holds at once, one
/// round decides and a round waits one second: a replay that keeps deciding without a human.
pub fn holding_policy(dir: &Path) -> std::path::PathBuf {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let sample = std::fs::read_to_string(format!("{root}/config/samples/consensuspolicy.yaml"))
        .expect("the sample policy");
    let changed = sample
        .replace("action: Escalate", "action: Hold")
        .replace("roundTimeoutSeconds: 10", "roundTimeoutSeconds: 1")
        .replace("maxRounds: 3", "maxRounds: 1");
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, changed).expect("the policy written");
    policy
}

/// Runs `trading-agent audit verify` (the binary at `agent`) with `args` and asserts that it finds
/// the chain intact, showing what it said otherwise.
pub fn audit_verified(agent: &Path, args: &[&str]) {
    let verify = Command::new(agent)
        .args(["audit", "verify"])
        .args(args)
        .output()
        .expect("audit verify runs");
    let said = String::from_utf8_lossy(&verify.stdout).to_string()
        + &String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "audit verify: {said}");
}

/// The JSON lines a process that succeeded printed (one decision per line, as `--json` prints
/// them); panics with its stderr if it failed, and names a line that is not JSON.
pub fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}: {stderr}", output.status);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{stderr}"))
        })
        .collect()
}
