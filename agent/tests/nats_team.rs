//! The team over a real nats-server: the binaries end to end (five voters and the coordinator as
//! processes), a coordinator restart that must not duplicate decisions, and the protocol's paths
//! (consensus, escalation → approve, risk veto → HOLD, a late voter, a crashed one still listed as
//! present, one that answers twice, a server restart).

// a scenario test reads top to bottom; the 100-line limit is for the code under test
#![allow(clippy::too_many_lines)]

use test_support as support;
use test_support::binance;

use agent::bus::nats::NatsBus;
use agent::bus::Bus;
use agent::consensus::bus_transport::{voters_from_presence, BusEscalations, BusTransport};
use agent::consensus::{Coordinator, Voter};
use agent::roles::{Analyst, Judgement};
use agent::service::AssistantService;
use protocol::crd::ConsensusPolicySpec;
use protocol::messages::{
    Decision, EscalationResolution, Indicators, MarketSnapshot, Message, PortfolioContext,
    RoundRequest,
};
use protocol::subjects::Subjects;
use protocol::{Action, Role};
use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

struct Processes(Vec<Child>);
impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The coordinator over the sample Strategy, replaying BTCUSDT hourly candles from 2020-03-01 to `to`.
fn coordinator_command(url: &str, max_cycles: &str, to: &str) -> Command {
    coordinator_command_from(url, max_cycles, "2020-03-01", to)
}

/// As [`coordinator_command`], from `from`.
fn coordinator_command_from(url: &str, max_cycles: &str, from: &str, to: &str) -> Command {
    let sample = format!("{ROOT}/config/samples/consensuspolicy.yaml");
    coordinator_command_with(url, max_cycles, from, to, &sample)
}

/// As [`coordinator_command_from`], deciding by the ConsensusPolicy in `policy`.
fn coordinator_command_with(
    url: &str,
    max_cycles: &str,
    from: &str,
    to: &str,
    policy: &str,
) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trading-agent"));
    c.args([
        "coordinator",
        "--nats",
        url,
        "--namespace",
        "e2e",
        "--max-cycles",
        max_cycles,
    ])
    .args([
        "--strategy-file",
        &format!("{ROOT}/config/samples/strategy.yaml"),
    ])
    .args(["--policy-file", policy])
    .args([
        "--symbols",
        "BTCUSDT",
        "--data",
        &format!("{ROOT}/data/BTCUSDT-1h.csv.gz"),
    ])
    .args(["--from", from, "--to", to, "--wait-for-voters", "20"]);
    c
}

fn coordinator(url: &str) -> std::process::Output {
    let mut command = coordinator_command(url, "24", "2020-03-05");
    command.arg("--json");
    support::output_within(command, Duration::from_secs(120))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_of_seven_and_a_coordinator_as_processes_decide_once_per_cycle() {
    let Some(server) = support::NatsServer::start() else {
        return;
    };
    let url = server.url();
    let mut team = Processes(vec![]);
    // the auditor service writes the record: it needs a database
    let dir = tempfile::tempdir().unwrap();
    let record = format!("sqlite://{}", dir.path().join("record.db").display());
    for (role, weight) in [
        ("marketMonitor", "1.0"),
        ("technicalAnalyst", "1.2"),
        ("fundamentalAnalyst", "0.8"),
        ("riskManager", "1.5"),
        ("strategist", "1.0"),
        ("executor", "1.0"),
        ("auditor", "1.0"),
    ] {
        team.0.push(
            Command::new(env!("CARGO_BIN_EXE_trading-agent"))
                .args([
                    "assistant",
                    "--nats",
                    &url,
                    "--namespace",
                    "e2e",
                    "--strategy",
                    "btc-eth-paper",
                ])
                .args([
                    "--role",
                    role,
                    "--weight",
                    weight,
                    "--instance",
                    &format!("{role}-0"),
                ])
                .args([
                    "--strategy-file",
                    &format!("{ROOT}/config/samples/strategy.yaml"),
                ])
                .args(["--db", &record])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    let url2 = url.clone();
    let first = tokio::task::spawn_blocking(move || coordinator(&url2))
        .await
        .unwrap();
    let lines = support::processes::json_lines(&first);
    assert_eq!(lines.len(), 24);
    for field in [
        "id",
        "symbol",
        "action",
        "confidence",
        "consensus_reached",
        "rounds",
        "votes",
        "escalated",
        "vetoed",
    ] {
        assert!(lines.iter().all(|l| !l[field].is_null()), "{field} missing");
    }
    // every voter answered: five votes in the last round of each cycle
    assert!(
        lines
            .iter()
            .all(|l| l["votes"].as_array().unwrap().len() == 5),
        "{:?}",
        lines[0]
    );
    // every cycle ends in an outcome, and the team settles some without a human: early March 2020
    // falls, so the risk manager's trend veto holds the flat team out of the market
    assert!(lines
        .iter()
        .all(|l| l["consensus_reached"] == true || l["vetoed"] == true || l["escalated"] == true));
    assert!(lines
        .iter()
        .any(|l| l["consensus_reached"] == true || l["vetoed"] == true));

    // all seven announced themselves; the executor and auditor do not vote
    let presence = NatsBus::connect(&url).await.unwrap();
    let scope = Subjects::new("e2e", "btc-eth-paper").unwrap();
    assert_eq!(
        presence
            .present(scope.presence_scope())
            .await
            .unwrap()
            .len(),
        7
    );

    // a restarted coordinator replays the same cycles: the stream keeps each decision once
    let url3 = url.clone();
    let again = tokio::task::spawn_blocking(move || coordinator(&url3))
        .await
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let bus = NatsBus::connect(&url).await.unwrap();
    let mut log = bus
        .read_durable(&Subjects::new("e2e", "btc-eth-paper").unwrap().decision())
        .await
        .unwrap();
    let mut ids = vec![];
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), log.recv()).await {
        if let Message::Decision(d) = m {
            ids.push(d.id);
        }
    }
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(
        (ids.len(), unique.len()),
        (24, 24),
        "no decision lost, none duplicated"
    );

    // as the operator runs it: after the replay the coordinator holds until SIGTERM, then exits cleanly
    let mut held = coordinator_command(&url, "2", "2020-03-02")
        .env("IA_HOLD_AFTER_REPLAY", "true")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // read stderr to its end (a closed pipe would fail the process's next log line)
    let stderr = held.stderr.take().unwrap();
    let (seen, holding) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("holding until SIGTERM") {
                let _ = seen.send(());
            }
        }
    });
    assert!(
        holding.recv_timeout(Duration::from_secs(60)).is_ok(),
        "the coordinator holds after its replay"
    );
    assert!(held.try_wait().unwrap().is_none(), "still running");
    Command::new("kill")
        .args(["-TERM", &held.id().to_string()])
        .status()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = held.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "SIGTERM ends the hold"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

/// An analyst with a fixed answer, optionally slow.
struct Fixed {
    role: Role,
    action: Action,
    confidence: f64,
    veto: bool,
    delay: Duration,
}

impl Analyst for Fixed {
    fn role(&self) -> Role {
        self.role
    }
    fn analyze(&self, _: &RoundRequest) -> Judgement {
        std::thread::sleep(self.delay);
        let mut j = Judgement::new(self.action, self.confidence, "fixed");
        j.veto = self.veto;
        j
    }
    fn debate(&self, r: &RoundRequest, _: &str) -> Judgement {
        self.analyze(r)
    }
}

async fn serve(
    bus: &NatsBus,
    subjects: &Subjects,
    role: Role,
    action: Action,
    veto: bool,
    delay: Duration,
) {
    let service = AssistantService {
        bus: bus.clone(),
        subjects: subjects.clone(),
        strategy: "s".into(),
        assistant: role.as_str().into(),
        instance: format!("{}-0", role.as_str()),
        role,
        weight: 1.0,
        analyst: Arc::new(Fixed {
            role,
            action,
            confidence: 0.8,
            veto,
            delay,
        }),
        heartbeat_every: Duration::from_millis(200),
        llm: None,
    };
    tokio::spawn(service.run(std::future::pending()));
}

fn snapshot() -> MarketSnapshot {
    MarketSnapshot {
        symbol: "BTCUSDT".into(),
        open_time: 0,
        open: 100.0,
        high: 101.0,
        low: 99.0,
        close: 100.0,
        volume: 1.0,
        indicators: Indicators::default(),
        portfolio: PortfolioContext::default(),
    }
}

/// Starts a team of fixed voters and returns a coordinator's transport and escalation channel.
async fn team(
    url: &str,
    namespace: &str,
    answers: &[(Role, Action, bool, Duration)],
) -> (NatsBus, Subjects, Vec<agent::consensus::Voter>) {
    let bus = NatsBus::connect(url).await.unwrap();
    let subjects = Subjects::new(namespace, "s").unwrap();
    for &(role, action, veto, delay) in answers {
        serve(&bus, &subjects, role, action, veto, delay).await;
    }
    let voters = present_voters(&bus, &subjects, answers.len()).await;
    (bus, subjects, voters)
}

/// The voters present in the team's presence bucket, once there are `n` of them.
async fn present_voters(bus: &NatsBus, subjects: &Subjects, n: usize) -> Vec<Voter> {
    let mut voters = vec![];
    for _ in 0..50 {
        voters = voters_from_presence(
            &bus.present(subjects.presence_scope()).await.unwrap(),
            "s",
            None,
        );
        if voters.len() == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(voters.len(), n, "{voters:?}");
    voters
}

/// The coordinator's end of a test team: its voters, asked over the bus (each request waits at
/// most `round_timeout`), and escalations over the same bus.
struct Asking {
    voters: Vec<Voter>,
    transport: BusTransport<NatsBus>,
    escalations: BusEscalations<NatsBus>,
}

impl Asking {
    fn new(
        bus: &NatsBus,
        subjects: &Subjects,
        voters: Vec<Voter>,
        round_timeout: Duration,
    ) -> Self {
        Self {
            voters,
            transport: BusTransport {
                bus: bus.clone(),
                subjects: subjects.clone(),
                round_timeout,
            },
            escalations: BusEscalations {
                bus: bus.clone(),
                subjects: subjects.clone(),
            },
        }
    }

    /// Runs cycle `id` over the test snapshot.
    async fn cycle(&self, coordinator: &mut Coordinator, id: &str) -> Decision {
        coordinator
            .run_cycle(
                id.into(),
                snapshot(),
                self.voters.clone(),
                &self.transport,
                &self.escalations,
                || 0,
            )
            .await
    }
}

fn policy(threshold: f64, timeout: u32) -> ConsensusPolicySpec {
    ConsensusPolicySpec {
        threshold,
        quorum: 0.5,
        round_timeout_seconds: timeout,
        voters: vec![
            Role::TechnicalAnalyst,
            Role::Strategist,
            Role::RiskManager,
            Role::MarketMonitor,
        ],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn escalation_is_approved_over_the_bus_and_a_veto_holds() {
    let Some(server) = support::NatsServer::start() else {
        return;
    };
    let quick = Duration::ZERO;
    // a split team: BUY 2 × 0.8 against SELL 2 × 0.8, threshold 0.6 → escalate
    let (bus, subjects, voters) = team(
        &server.url(),
        "esc",
        &[
            (Role::TechnicalAnalyst, Action::Buy, false, quick),
            (Role::MarketMonitor, Action::Buy, false, quick),
            (Role::Strategist, Action::Sell, false, quick),
            (Role::RiskManager, Action::Sell, false, quick),
        ],
    )
    .await;
    // a human (the operator relaying an annotation) approves whatever is escalated
    let mut watch = bus
        .subscribe(&subjects.escalation("s_BTCUSDT_0_schedule").unwrap())
        .await
        .unwrap();
    let human = bus.clone();
    let subject = subjects.escalation("s_BTCUSDT_0_schedule").unwrap();
    tokio::spawn(async move {
        while let Some(m) = watch.recv().await {
            if let Message::Escalation(e) = m {
                let answer = EscalationResolution {
                    id: e.id,
                    approved: true,
                    by: "kubectl".into(),
                    at: 0,
                };
                human
                    .publish(&subject, &Message::EscalationResolution(answer))
                    .await
                    .unwrap();
            }
        }
    });
    let mut coordinator = Coordinator::new(
        "s",
        ConsensusPolicySpec {
            max_rounds: 2,
            ..policy(0.6, 2)
        },
    );
    let asking = Asking::new(&bus, &subjects, voters, Duration::from_secs(2));
    let d = asking.cycle(&mut coordinator, "s_BTCUSDT_0_schedule").await;
    assert!(d.escalated && !d.consensus_reached, "{d:?}");
    assert_eq!(d.rounds.len(), 2);
    // the tie goes to HOLD as the proposal; approval takes it
    assert_eq!(d.action, Action::Hold);

    // the risk manager vetoes: HOLD, whatever the others say
    let (bus, subjects, voters) = team(
        &server.url(),
        "veto",
        &[
            (Role::TechnicalAnalyst, Action::Buy, false, quick),
            (Role::Strategist, Action::Buy, false, quick),
            (Role::RiskManager, Action::Hold, true, quick),
        ],
    )
    .await;
    let asking = Asking::new(&bus, &subjects, voters, Duration::from_secs(2));
    let d = asking
        .cycle(&mut Coordinator::new("s", policy(0.5, 2)), "v1")
        .await;
    assert_eq!((d.action, d.vetoed), (Action::Hold, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_voter_is_ignored_and_a_server_restart_is_survived() {
    let Some(mut server) = support::NatsServer::start() else {
        return;
    };
    let (bus, subjects, voters) = team(
        &server.url(),
        "late",
        &[
            (Role::TechnicalAnalyst, Action::Buy, false, Duration::ZERO),
            (Role::Strategist, Action::Buy, false, Duration::ZERO),
            (Role::MarketMonitor, Action::Buy, false, Duration::ZERO),
            (
                Role::RiskManager,
                Action::Sell,
                false,
                Duration::from_secs(5),
            ),
        ],
    )
    .await;
    // a round of 3 s: the quick voters answer within it even on a loaded machine, the slow one not
    let asking = Asking::new(&bus, &subjects, voters, Duration::from_secs(3));
    let mut coordinator = Coordinator::new("s", policy(0.6, 1));
    let d = asking.cycle(&mut coordinator, "l1").await;
    // the slow risk manager missed the round: three votes, quorum 3/4 ≥ 0.5, consensus BUY
    assert_eq!(d.rounds[0].votes.len(), 3);
    assert_eq!((d.action, d.consensus_reached), (Action::Buy, true));

    // the server goes away and comes back on the same port and state; the team reconnects
    server.restart();
    let mut decided = None;
    for attempt in 0..40 {
        let d = asking
            .cycle(&mut coordinator, &format!("l2-{attempt}"))
            .await;
        if d.consensus_reached {
            decided = Some(d);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let d = decided.expect("the team decides again after the restart");
    assert_eq!(d.action, Action::Buy);
    // durable publishing works again too, once per id
    let subject = subjects.decision();
    assert!(bus
        .publish_durable(&subject, &d.id, &Message::Decision(d.clone()))
        .await
        .unwrap());
    assert!(!bus
        .publish_durable(&subject, &d.id, &Message::Decision(d.clone()))
        .await
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_coordinator_runs_on_live_candles_without_a_data_file() {
    let Some(server) = support::NatsServer::start() else {
        return;
    };
    // Binance, locally: REST for the warm-up, a WebSocket with two live candles and then nothing:
    // the coordinator must stop after its last cycle, not wait for a candle that never comes
    let (addr, current) = binance::with_live_candles(2).await;

    // the five voters, in process, on NATS
    let bus = NatsBus::connect(&server.url()).await.unwrap();
    let subjects = Subjects::new("live", "btc-eth-paper").unwrap();
    for role in Role::DEFAULT_VOTERS {
        let analyst = agent::roles::analyst_for(role, &Default::default(), &Default::default())
            .unwrap()
            .unwrap();
        let service = AssistantService {
            bus: bus.clone(),
            subjects: subjects.clone(),
            strategy: "btc-eth-paper".into(),
            assistant: role.as_str().into(),
            instance: format!("{}-0", role.as_str()),
            role,
            weight: 1.0,
            analyst: Arc::from(analyst),
            heartbeat_every: Duration::from_millis(500),
            llm: None,
        };
        tokio::spawn(service.run(std::future::pending()));
    }
    let dir = tempfile::tempdir().unwrap();
    let sample = std::fs::read_to_string(format!("{ROOT}/config/samples/strategy.yaml")).unwrap();
    let strategy = dir.path().join("strategy.yaml");
    std::fs::write(
        &strategy,
        sample
            .replace("interval: 1h", "interval: 1m")
            .replace("analysis: \"0 * * * *\"", "analysis: \"* * * * *\""),
    )
    .unwrap();
    let url = server.url();
    let output = tokio::task::block_in_place(|| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_trading-agent"));
        command
            .args([
                "coordinator",
                "--nats",
                &url,
                "--namespace",
                "live",
                "--json",
                "--symbols",
                "BTCUSDT",
            ])
            .args(["--strategy-file", strategy.to_str().unwrap()])
            .args([
                "--policy-file",
                &format!("{ROOT}/config/samples/consensuspolicy.yaml"),
            ])
            .args([
                "--rest-url",
                &format!("http://{addr}"),
                "--ws-url",
                &format!("ws://{addr}"),
            ])
            .args(["--warmup", "50", "--max-cycles", "2"]);
        support::output_within(command, Duration::from_secs(60))
    });
    let lines = support::processes::json_lines(&output);
    assert_eq!(
        lines.len(),
        2,
        "one decision per live candle; the 50 warm-up candles are history"
    );
    for line in &lines {
        assert!(
            line["decided_at"].as_i64().unwrap() > current,
            "every decision is on a live candle: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_restart_in_the_middle_of_a_round_ends_in_one_decision() {
    let Some(mut server) = support::NatsServer::start() else {
        return;
    };
    // every voter takes 600 ms: the restart lands while their answers are being formed
    let slow = Duration::from_millis(600);
    let (bus, subjects, voters) = team(
        &server.url(),
        "mid",
        &[
            (Role::TechnicalAnalyst, Action::Buy, false, slow),
            (Role::Strategist, Action::Buy, false, slow),
            (Role::MarketMonitor, Action::Buy, false, slow),
            (Role::RiskManager, Action::Buy, false, slow),
        ],
    )
    .await;
    let asking = Asking::new(&bus, &subjects, voters, Duration::from_secs(2));
    let cycle = tokio::spawn(async move {
        let mut coordinator = Coordinator::new(
            "s",
            ConsensusPolicySpec {
                max_rounds: 3,
                ..policy(0.6, 2)
            },
        );
        asking.cycle(&mut coordinator, "m1").await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.restart();
    // the cycle ends: its answers lost with the connection count as missing, later rounds ask again
    let d = tokio::time::timeout(Duration::from_secs(20), cycle)
        .await
        .expect("the cycle ends")
        .unwrap();
    assert_eq!(d.id, "m1");
    assert!(!d.rounds.is_empty());
    // exactly one durable decision for the cycle, however often it is published
    let subject = subjects.decision();
    let mut stored = 0;
    for _ in 0..40 {
        match bus
            .publish_durable(&subject, &d.id, &Message::Decision(d.clone()))
            .await
        {
            Ok(true) => stored += 1,
            Ok(false) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    assert_eq!(stored, 1, "stored once, then recognised as a duplicate");
}

/// A voter that answers every request twice (a retrying or misbehaving replica): raw NATS, outside
/// `AssistantService`, so both answers really reach the coordinator's inbox.
async fn serve_twice(url: &str, subjects: &Subjects, role: Role, action: Action) {
    let client = async_nats::connect(url).await.unwrap();
    let mut requests = client
        .queue_subscribe(subjects.analyze(role), subjects.analyze_queue_group(role))
        .await
        .unwrap();
    client.flush().await.unwrap();
    tokio::spawn(async move {
        use futures::StreamExt;
        while let Some(m) = requests.next().await {
            let (Ok(Message::RoundRequest(r)), Some(reply)) =
                (protocol::messages::decode(&m.payload), m.reply)
            else {
                continue;
            };
            let opinion =
                Judgement::new(action, 0.8, "answered twice").into_opinion(&r, role.as_str(), role);
            let payload = protocol::messages::encode(&Message::Opinion(opinion));
            for _ in 0..2 {
                client
                    .publish(reply.clone(), payload.clone().into())
                    .await
                    .unwrap();
            }
            client.flush().await.unwrap();
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_voter_counts_as_missing_and_a_double_answer_counts_once() {
    let Some(server) = support::NatsServer::start() else {
        return;
    };
    let url = server.url();
    let (bus, subjects, _) = team(
        &url,
        "faults",
        &[
            (Role::TechnicalAnalyst, Action::Buy, false, Duration::ZERO),
            (Role::Strategist, Action::Buy, false, Duration::ZERO),
        ],
    )
    .await;
    serve_twice(&url, &subjects, Role::RiskManager, Action::Buy).await;
    // the market monitor crashed: its presence has not expired yet, but nobody serves its subject
    for role in [Role::RiskManager, Role::MarketMonitor] {
        let instance = format!("{}-0", role.as_str());
        let heartbeat = protocol::messages::Heartbeat {
            assistant: role.as_str().into(),
            role,
            instance: instance.clone(),
            strategy: "s".into(),
            weight: 1.0,
            at: 0,
        };
        bus.announce(&subjects.presence_key(role, &instance).unwrap(), &heartbeat)
            .await
            .unwrap();
    }
    let voters = present_voters(&bus, &subjects, 4).await;
    let asking = Asking::new(&bus, &subjects, voters, Duration::from_secs(30));
    let voted = |d: &Decision, round: usize| {
        let mut names: Vec<String> = d.rounds[round]
            .votes
            .iter()
            .map(|v| v.assistant.clone())
            .collect();
        names.sort();
        names
    };
    let expected = ["riskManager", "strategist", "technicalAnalyst"];

    // quorum 0.5: three of four answered (0.75), all BUY → consensus in round 1; the crashed voter
    // is known missing at once (no responders), so the round does not wait out its 30 s timeout
    let started = std::time::Instant::now();
    let mut coordinator = Coordinator::new("s", policy(0.6, 30));
    let d = asking.cycle(&mut coordinator, "f1").await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        (d.action, d.consensus_reached),
        (Action::Buy, true),
        "{d:?}"
    );
    assert_eq!(voted(&d, 0), expected, "the double answer is one vote");
    assert_eq!(coordinator.counts.counted, 3);

    // quorum 0.8 is out of reach with one voter down: every round counts the same three votes once,
    // and the cycle ends by the policy's escalation action (HOLD) after the last round
    let mut strict = ConsensusPolicySpec {
        quorum: 0.8,
        max_rounds: 3,
        ..policy(0.6, 30)
    };
    strict.escalation.action = protocol::crd::EscalationAction::Hold;
    let mut coordinator = Coordinator::new("s", strict);
    let d = asking.cycle(&mut coordinator, "f2").await;
    assert_eq!(d.rounds.len(), 3);
    for round in 0..3 {
        assert_eq!(voted(&d, round), expected, "round {}", round + 1);
    }
    assert_eq!(coordinator.counts.counted, 9);
    assert_eq!((d.action, d.consensus_reached), (Action::Hold, false));
}

/// Runs the five voters as processes, each claiming `weight` in its heartbeats.
fn voter_processes(url: &str, weight: &str) -> Processes {
    let mut team = Processes(vec![]);
    for (name, role) in [
        ("market-monitor", "marketMonitor"),
        ("technical-analyst", "technicalAnalyst"),
        ("fundamental-analyst", "fundamentalAnalyst"),
        ("risk-manager", "riskManager"),
        ("strategist", "strategist"),
    ] {
        team.0.push(
            Command::new(env!("CARGO_BIN_EXE_trading-agent"))
                .args(["assistant", "--nats", url, "--namespace", "e2e"])
                .args([
                    "--strategy",
                    "btc-eth-paper",
                    "--role",
                    role,
                    "--name",
                    name,
                ])
                .args(["--weight", weight, "--instance", &format!("{role}-0")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    team
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_declared_team_votes_and_at_its_declared_weights() {
    let Some(server) = support::NatsServer::start() else {
        return;
    };
    let url = server.url();
    // every assistant claims a weight of a million; the team file declares four of them (the
    // market monitor is not on the team) at weights of its own
    let _team = voter_processes(&url, "1000000");
    let dir = tempfile::tempdir().unwrap();
    let team_file = dir.path().join("team.yaml");
    let declared = [
        ("technical-analyst", "technicalAnalyst", 1.2),
        ("fundamental-analyst", "fundamentalAnalyst", 0.8),
        ("risk-manager", "riskManager", 1.5),
        ("strategist", "strategist", 1.0),
    ];
    let manifests: Vec<String> = declared
        .iter()
        .map(|(name, role, weight)| {
            format!(
                "apiVersion: trading.ia-agents.dev/v1alpha1\nkind: TradingAssistant\nmetadata:\n  name: {name}\nspec:\n  strategyRef:\n    name: btc-eth-paper\n  role: {role}\n  weight: {weight}\n"
            )
        })
        .collect();
    std::fs::write(&team_file, manifests.join("---\n")).unwrap();
    let mut command = coordinator_command(&url, "3", "2020-03-02");
    command.args(["--json", "--team-file"]);
    command.arg(&team_file);
    let out = tokio::task::spawn_blocking(move || {
        support::output_within(command, Duration::from_secs(120))
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = support::processes::json_lines(&out);
    assert_eq!(lines.len(), 3, "{stderr}");
    let first_votes = lines[0]["votes"].as_array().unwrap();
    for line in &lines {
        let votes = line["votes"].as_array().unwrap();
        let names: Vec<&str> = votes
            .iter()
            .map(|v| v["assistant"].as_str().unwrap())
            .collect();
        assert_eq!(votes.len(), 4, "{names:?}");
        assert!(
            !names.contains(&"market-monitor"),
            "an undeclared voter counted"
        );
    }
    for (name, _, weight) in declared {
        let vote = first_votes
            .iter()
            .find(|v| v["assistant"] == name)
            .unwrap_or_else(|| panic!("no vote of {name}"));
        assert_eq!(vote["weight"].as_f64(), Some(weight), "{vote}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_coordinator_resumes_its_learned_weights_from_the_store() {
    let Some(server) = support::NatsServer::start() else {
        return;
    };
    let url = server.url();
    let _team = voter_processes(&url, "1");
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("state.db").display());
    // nobody answers escalations here: a split team holds instead of waiting five minutes for one
    let policy = dir.path().join("policy.yaml");
    let sample =
        std::fs::read_to_string(format!("{ROOT}/config/samples/consensuspolicy.yaml")).unwrap();
    std::fs::write(&policy, sample.replace("action: Escalate", "action: Hold")).unwrap();
    let policy = policy.display().to_string();
    let run = |to: &str, from: &str| {
        let mut command = coordinator_command_with(&url, "200", from, to, &policy);
        command.args(["--json", "--db", &db]);
        command
    };
    // the sample policy learns its weights: a week of decisions moves them off 1
    let first = run("2020-03-08", "2020-03-01");
    let out = tokio::task::spawn_blocking(move || {
        support::output_within(first, Duration::from_secs(180))
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = agent::store::Store::connect_existing(&db).await.unwrap();
    let stored = store.weights("btc-eth-paper").await.unwrap();
    assert_eq!(stored.len(), 5, "{stored:?}");
    assert!(
        stored.iter().any(|w| w.weight != 1.0),
        "learned: {stored:?}"
    );
    let portfolio = store.portfolio("btc-eth-paper").await.unwrap();
    assert!(
        portfolio.latest.is_some(),
        "the book is stored: {portfolio:?}"
    );
    store.close().await;

    let second = run("2020-03-10", "2020-03-09");
    let out = tokio::task::spawn_blocking(move || {
        support::output_within(second, Duration::from_secs(180))
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("resuming the learned vote weights"),
        "{stderr}"
    );
    let first_line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    let weights: Vec<f64> = first_line["votes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["weight"].as_f64())
        .collect();
    assert!(weights.iter().any(|w| *w != 1.0), "{weights:?}");
}
