//! A private PostgreSQL server per test, on a free port of 127.0.0.1, with its data in a temporary
//! directory; stoppable and restartable on the same port and data (an outage a test can cause
//! without disturbing the shared server of `scripts/services.sh`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A PostgreSQL server the test owns, stopped when dropped.
pub struct PgServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
    running: bool,
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `pg_ctl`.
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("pg_ctl").exists())
        .collect();
    found.sort_by_key(|p| {
        let version = p
            .parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str());
        version.and_then(|v| v.parse::<u32>().ok()).unwrap_or(0)
    });
    found.pop()
}

/// Runs a PostgreSQL tool; as the `postgres` user when we are root (PostgreSQL refuses root).
fn pg_tool(bin: &std::path::Path, tool: &str, args: &[&str]) -> Output {
    let path = bin.join(tool);
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    };
    command
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

impl PgServer {
    /// Initialises and starts a server (user `ia`, database `ia`, trust on 127.0.0.1), or `None`
    /// (test skipped, loudly) where PostgreSQL is not installed.
    pub fn start() -> Option<Self> {
        let Some(bin) = bin_dir() else {
            if std::env::var("IA_REQUIRE_SERVICES").is_ok() {
                panic!("PostgreSQL is not installed but IA_REQUIRE_SERVICES is set: scripts/services.sh installs it");
            }
            eprintln!("SKIPPED: PostgreSQL not found (run scripts/test.sh, which installs it)");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the data directory to postgres");
        }
        let data = dir.path().join("data");
        let init = pg_tool(
            &bin,
            "initdb",
            &["-D", path(&data), "-U", "ia", "--auth=trust", "-E", "UTF8"],
        );
        assert!(
            init.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let mut server = Self {
            port,
            bin,
            dir,
            running: false,
        };
        server.run();
        let created = pg_tool(
            &server.bin,
            "createdb",
            &["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "ia", "ia"],
        );
        assert!(
            created.status.success(),
            "createdb: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        Some(server)
    }

    /// `postgres://ia@127.0.0.1:<port>/ia`.
    pub fn url(&self) -> String {
        format!("postgres://ia@127.0.0.1:{}/ia", self.port)
    }

    fn run(&mut self) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("pg.log");
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            path(self.dir.path())
        );
        let started = Instant::now();
        let out = pg_tool(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                path(&data),
                "-l",
                path(&log),
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "PostgreSQL did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.running = true;
    }

    /// Stops the server at once (`-m immediate`: connections cut, as a crash or a lost node would),
    /// keeping its data for [`PgServer::restart`].
    pub fn stop(&mut self) {
        if self.running {
            let data = self.dir.path().join("data");
            let _ = pg_tool(
                &self.bin,
                "pg_ctl",
                &["-D", path(&data), "-m", "immediate", "stop"],
            );
            self.running = false;
        }
    }

    /// Starts the stopped server again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}
