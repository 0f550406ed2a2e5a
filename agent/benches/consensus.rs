//! Consensus over the bus: one full cycle of five voters (the seven-role team's voting members; the
//! executor and auditor act after the decision) forced through 3 rounds, over a real nats-server on
//! 127.0.0.1 and over the in-memory bus, against the NATS round-trip floor (a bare request/reply).
//! Each NATS figure also says where the CPU went (this process against nats-server) and how many
//! cores that kept busy: on a small machine, a round's wall time is bounded by CPU, not only latency.
//!
//! `cargo bench -p ia-agent --bench consensus` (needs nats-server on PATH, or IA_TEST_NATS_SERVER).

use agent::bus::memory::MemoryBus;
use agent::bus::nats::NatsBus;
use agent::bus::Bus;
use agent::consensus::bus_transport::{voters_from_presence, BusTransport};
use agent::consensus::{Coordinator, EscalationResolver, Resolution};
use agent::roles::analyst_for;
use agent::service::AssistantService;
use protocol::crd::{ConsensusPolicySpec, EscalationAction, RiskSpec};
use protocol::messages::{
    Escalation, EscalationResolution, Indicators, MarketSnapshot, Message, PortfolioContext,
};
use protocol::subjects::Subjects;
use protocol::Role;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The allocator `trading-agent` runs with (agent/src/main.rs), so the processes modelled here
/// allocate as the real ones do.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Nobody;
impl EscalationResolver for Nobody {
    async fn resolve(&self, _: &Escalation) -> Resolution {
        Resolution::TimedOut
    }
}

fn snapshot(symbol: usize) -> MarketSnapshot {
    MarketSnapshot {
        symbol: format!("SYM{symbol}USDT").into(),
        open_time: 0,
        open: 100.0,
        high: 101.0,
        low: 99.0,
        close: 100.5,
        volume: 10.0,
        indicators: Indicators {
            rsi_14: Some(45.0),
            macd_hist: Some(0.1),
            ema_20: Some(100.0),
            bb_upper: Some(103.0),
            bb_lower: Some(97.0),
            bb_middle: Some(100.0),
            stoch_k: Some(50.0),
            stoch_d: Some(50.0),
            cci_20: Some(10.0),
            adx_14: Some(22.0),
            atr_14: Some(1.0),
            return_12: Some(0.004),
            volume_ratio_20: Some(1.1),
            ..Default::default()
        },
        portfolio: PortfolioContext::default(),
    }
}

/// Every cycle runs all 3 rounds: a quorum above 100% (possible only outside the CRD's schema) is
/// never met, so each round is asked, answered and tallied in full, and the cycle ends in HOLD.
fn policy() -> ConsensusPolicySpec {
    let mut p = ConsensusPolicySpec {
        max_rounds: 3,
        quorum: 1.01,
        ..Default::default()
    };
    p.escalation.action = EscalationAction::Hold;
    p
}

/// CPU time used so far by every live thread of process `pid` (a number, or "self"), from the
/// kernel's scheduler statistics (`/proc/<pid>/task/*/schedstat`, nanoseconds on CPU); `None` where
/// that is not available.
fn cpu_time(pid: &str) -> Option<Duration> {
    let mut nanos = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        nanos += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(nanos))
}

/// Where the CPU went over a measured stretch: this process (coordinator and assistants) and the
/// nats-server, per operation, and how many of the machine's cores that kept busy on average.
struct CpuUse {
    server: Option<String>,
    at: Option<(Duration, Duration)>,
    wall: Instant,
}

impl CpuUse {
    fn start(server: Option<u32>) -> Self {
        let server = server.map(|p| p.to_string());
        let at = cpu_time("self").zip(server.as_deref().and_then(cpu_time));
        Self {
            server,
            at,
            wall: Instant::now(),
        }
    }

    fn report(self, operations: usize, what: &str) -> String {
        let wall = self.wall.elapsed();
        let now = cpu_time("self").zip(self.server.as_deref().and_then(cpu_time));
        let (Some((ours0, server0)), Some((ours1, server1))) = (self.at, now) else {
            return String::new();
        };
        let per = |d: Duration| d.as_secs_f64() * 1e6 / operations as f64;
        let (ours, server) = (ours1 - ours0, server1 - server0);
        format!(
            "\n         CPU per {what}: {:.0} µs ours (coordinator and assistants) + {:.0} µs nats-server; {:.2} cores busy",
            per(ours),
            per(server),
            (ours + server).as_secs_f64() / wall.as_secs_f64()
        )
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The five voters, each on its own bus handle (its own connection on NATS, as separate pods have).
fn service<B: Bus>(bus: B, subjects: &Subjects, role: Role) -> AssistantService<B> {
    let analyst = analyst_for(role, &Default::default(), &RiskSpec::default())
        .unwrap()
        .unwrap();
    AssistantService {
        bus,
        subjects: subjects.clone(),
        strategy: "bench".into(),
        assistant: role.as_str().into(),
        instance: format!("{}-0", role.as_str()),
        role,
        weight: 1.0,
        analyst: Arc::from(analyst),
        heartbeat_every: Duration::from_secs(2),
        llm: None,
    }
}

/// The five voters on the in-memory bus, as tasks of the caller's (single-threaded) runtime: the
/// local mode's shape.
async fn memory_team(bus: &MemoryBus, subjects: &Subjects) {
    for role in Role::DEFAULT_VOTERS {
        tokio::spawn(service(bus.clone(), subjects, role).run(std::future::pending()));
    }
}

/// The five voters over NATS as `trading-agent assistant` runs each one: a process of its own with a
/// single-threaded runtime and its own connection (here: a thread with its own runtime).
fn nats_team(url: &str, subjects: &Subjects) {
    for role in Role::DEFAULT_VOTERS {
        let (url, subjects) = (url.to_string(), subjects.clone());
        std::thread::spawn(move || {
            single_threaded().block_on(async {
                let bus = NatsBus::connect(&url).await.unwrap();
                service(bus, &subjects, role)
                    .run(std::future::pending())
                    .await
                    .unwrap();
            })
        });
    }
}

fn single_threaded() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn measure<B: Bus>(
    name: &str,
    bus: B,
    subjects: &Subjects,
    cycles: usize,
    server: Option<u32>,
) {
    let voters = loop {
        let v = voters_from_presence(
            &bus.present(subjects.presence_scope()).await.unwrap(),
            "bench",
            None,
        );
        if v.len() == 5 {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let transport = BusTransport {
        bus: bus.clone(),
        subjects: subjects.clone(),
        round_timeout: Duration::from_secs(5),
    };
    // latency of one cycle at a time
    let mut latencies = Vec::with_capacity(cycles);
    let cpu = CpuUse::start(server);
    for i in 0..cycles {
        let mut c = Coordinator::new("bench", policy());
        let start = Instant::now();
        let d = c
            .run_cycle(
                format!("c{i}"),
                snapshot(0),
                voters.clone(),
                &transport,
                &Nobody,
                || 0,
            )
            .await;
        latencies.push(start.elapsed());
        assert_eq!(d.rounds.len(), 3);
    }
    let cpu = cpu.report(cycles, "cycle");
    latencies.sort();
    // throughput: 100 symbols' cycles at once, repeatedly
    let batches = (cycles / 100).max(3);
    let start = Instant::now();
    for b in 0..batches {
        let runs = (0..100).map(|s| {
            let transport = &transport;
            let voters = voters.clone();
            async move {
                let mut c = Coordinator::new("bench", policy());
                c.run_cycle(
                    format!("t{b}-{s}"),
                    snapshot(s),
                    voters,
                    transport,
                    &Nobody,
                    || 0,
                )
                .await
            }
        });
        futures::future::join_all(runs).await;
    }
    let per_second = (batches * 100) as f64 / start.elapsed().as_secs_f64();
    println!(
        "{name:<8} full cycle (5 voters, 3 rounds): p50 {:>8.1} µs  p99 {:>8.1} µs   100 symbols at once: {:>9.0} cycles/s{cpu}",
        percentile(&latencies, 0.5).as_secs_f64() * 1e6,
        percentile(&latencies, 0.99).as_secs_f64() * 1e6,
        per_second
    );
}

/// An echo server on `subject`, served like an assistant (a thread with a single-threaded runtime and
/// a connection of its own); returns once it is subscribed.
fn echo(url: &str, subject: &'static str) {
    let url = url.to_string();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        single_threaded().block_on(async {
            let echo = NatsBus::connect(&url).await.unwrap();
            let mut requests = echo.serve(subject, subject).await.unwrap();
            ready_tx.send(()).unwrap();
            while let Some(r) = requests.recv().await {
                let m = Message::clone(&r.message);
                let _ = r.reply(m).await;
            }
        })
    });
    ready.recv().unwrap();
}

/// The floors a round is compared with: a bare request/reply to one echo server, and the same tiny
/// request to five echo servers at once (a round's fan-out with no analysis and no payload).
async fn floors(url: &str, bus: &NatsBus, n: usize, server: u32) {
    const ECHOES: [&str; 5] = [
        "bench.echo.0",
        "bench.echo.1",
        "bench.echo.2",
        "bench.echo.3",
        "bench.echo.4",
    ];
    for subject in ECHOES {
        echo(url, subject);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ping = Message::EscalationResolution(EscalationResolution {
        id: "p".into(),
        approved: true,
        by: "b".into(),
        at: 0,
    });
    let mut rtts = Vec::with_capacity(n);
    let cpu = CpuUse::start(Some(server));
    for _ in 0..n {
        let start = Instant::now();
        bus.request(ECHOES[0], &ping, Duration::from_secs(1))
            .await
            .unwrap()
            .unwrap();
        rtts.push(start.elapsed());
    }
    let cpu_rtt = cpu.report(n, "round trip");
    rtts.sort();
    let p50 = percentile(&rtts, 0.5);
    println!(
        "nats     bare request/reply floor:            p50 {:>8.1} µs  p99 {:>8.1} µs   → 3 rounds ≥ {:.1} µs; target p50 ≤ 1.5 × that = {:.1} µs{cpu_rtt}",
        p50.as_secs_f64() * 1e6,
        percentile(&rtts, 0.99).as_secs_f64() * 1e6,
        3.0 * p50.as_secs_f64() * 1e6,
        4.5 * p50.as_secs_f64() * 1e6
    );
    let subjects: Vec<String> = ECHOES.iter().map(|s| s.to_string()).collect();
    let mut fans = Vec::with_capacity(n);
    let cpu = CpuUse::start(Some(server));
    for _ in 0..n {
        let start = Instant::now();
        let replies = bus
            .request_all(&subjects, &ping, Duration::from_secs(1))
            .await;
        assert!(replies.iter().all(|r| matches!(r, Ok(Some(_)))));
        fans.push(start.elapsed());
    }
    let cpu_fan = cpu.report(n, "fan-out");
    fans.sort();
    let fan = percentile(&fans, 0.5);
    println!(
        "nats     5-way request/reply floor (a round's fan-out, empty): p50 {:>8.1} µs  p99 {:>8.1} µs   → 3 rounds ≥ {:.1} µs{cpu_fan}",
        fan.as_secs_f64() * 1e6,
        percentile(&fans, 0.99).as_secs_f64() * 1e6,
        3.0 * fan.as_secs_f64() * 1e6,
    );
}

fn main() {
    // `cargo test --benches` runs this binary with --bench absent: keep that a quick smoke run
    let quick = !std::env::args().any(|a| a == "--bench");
    let cycles = if quick { 20 } else { 2000 };
    let subjects = Subjects::new("bench", "bench").unwrap();
    // the in-memory bus runs as the local mode runs it: one thread, no cross-thread wake-ups
    single_threaded().block_on(async {
        let bus = MemoryBus::new();
        memory_team(&bus, &subjects).await;
        measure("memory", bus, &subjects, cycles * 5, None).await
    });
    let binary = std::env::var("IA_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let Ok(mut server) = Command::new(&binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        println!("nats     skipped: {binary} not found");
        return;
    };
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("nats://127.0.0.1:{port}");
    // the coordinator as `trading-agent coordinator` runs it: a single-threaded runtime
    single_threaded().block_on(async {
        let bus = NatsBus::connect(&url).await.unwrap();
        floors(&url, &bus, cycles * 5, server.id()).await;
        nats_team(&url, &subjects);
        measure("nats", bus, &subjects, cycles, Some(server.id())).await;
    });
    let _ = server.kill();
}
