//! A real nats-server per test, on a free port of 127.0.0.1, with JetStream in a temporary
//! directory; restartable on the same port and state.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A nats-server child process (with JetStream), killed when dropped.
pub struct NatsServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    binary: PathBuf,
    dir: tempfile::TempDir,
    config: Option<PathBuf>,
    child: Option<Child>,
}

fn binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("IA_TEST_NATS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let found = Command::new("nats-server")
        .arg("--version")
        .output()
        .is_ok();
    if found {
        return Some(PathBuf::from("nats-server"));
    }
    if std::env::var("IA_REQUIRE_SERVICES").is_ok() {
        panic!("nats-server is not installed but IA_REQUIRE_SERVICES is set: scripts/services.sh installs it");
    }
    eprintln!("SKIPPED: nats-server not found (run scripts/test.sh, which installs it)");
    None
}

impl NatsServer {
    /// Starts a server, or `None` (test skipped, loudly) where nats-server is not installed.
    pub fn start() -> Option<Self> {
        Self::launch(None)
    }

    /// Starts a server with the configuration file `config` (its `authorization` block, say), or
    /// `None` as [`start`](Self::start). The command line's address and port take precedence over
    /// the file's `listen`; JetStream is the file's to configure (nats-server refuses a `store_dir`
    /// given twice), in a directory the caller owns.
    pub fn start_with_config(config: &str) -> Option<Self> {
        Self::launch(Some(config))
    }

    fn launch(config: Option<&str>) -> Option<Self> {
        let binary = binary()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let config = config.map(|text| {
            let path = dir.path().join("nats.conf");
            std::fs::write(&path, text).unwrap();
            path
        });
        let mut server = Self {
            port,
            binary,
            dir,
            config,
            child: None,
        };
        server.run();
        Some(server)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn run(&mut self) {
        let mut command = Command::new(&self.binary);
        command.args(["-a", "127.0.0.1", "-p", &self.port.to_string()]);
        match &self.config {
            Some(config) => command.arg("-c").arg(config),
            None => command.args(["-js", "-sd"]).arg(self.dir.path()),
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nats-server did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (its JetStream state stays for a restart).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts again on the same port and JetStream state.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `command` to its end and returns its output; panics, having killed it, if it has not ended
/// within `limit` (a process that should exit and hangs fails its test instead of stalling it).
pub fn output_within(mut command: Command, limit: Duration) -> std::process::Output {
    use std::io::Read;
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).unwrap();
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running after {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&stderr.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::process::Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// What the server on `port` of 127.0.0.1 answers a client that presents no credentials: its
/// first line after `CONNECT` and `PING` (`PONG` when let in, `-ERR 'Authorization Violation'`
/// when not).
pub fn anonymous_answer(port: u16) -> String {
    use std::io::{BufRead, BufReader, Write};
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(tcp.try_clone().unwrap());
    let mut info = String::new();
    reader.read_line(&mut info).unwrap();
    (&tcp)
        .write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = reader.read_line(&mut answer);
    answer
}
