//! `trading-agent assistant` and `trading-agent coordinator`: the team as separate processes over
//! NATS, in a cluster (one per pod) or on bare machines and docker compose.

use super::backtest::{prepare, Prepared, ReplayArgs};
use agent::bus::auth::NatsAuth;
use agent::bus::nats::NatsBus;
use agent::bus::Bus;
use agent::config::{load_one, TeamConfig};
use agent::consensus::bus_transport::{voters_from_presence, BusEscalations, BusTransport};
use agent::roles::{analyst_for, Params};
use agent::service::{default_heartbeat, AssistantService};
use anyhow::{bail, Context};
use clap::Args;
use protocol::crd::{RiskSpec, Strategy};
use protocol::messages::{Decision, Message};
use protocol::subjects::Subjects;
use protocol::Role;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the team meets.
#[derive(Args, Debug, Clone)]
pub struct BusArgs {
    /// NATS server URL.
    #[arg(
        long,
        value_name = "URL",
        default_value = "nats://127.0.0.1:4222",
        env = "IA_NATS_URL",
        hide_env_values = true
    )]
    pub nats: String,
    /// Namespace of the team (the Kubernetes namespace in a cluster); first token of its subjects.
    #[arg(long, default_value = "default", env = "IA_NAMESPACE")]
    pub namespace: String,
    /// This component's NATS identity: a file holding its nkey seed (from `trading-agent
    /// nats-config`).
    #[arg(
        long,
        value_name = "FILE",
        env = "IA_NATS_NKEY_FILE",
        conflicts_with = "nats_user"
    )]
    pub nats_nkey_file: Option<PathBuf>,
    /// NATS user, with the password in IA_NATS_PASSWORD.
    #[arg(long, env = "IA_NATS_USER", requires = "nats_password")]
    pub nats_user: Option<String>,
    /// NATS password (set it in the environment, not on the command line).
    #[arg(
        long,
        env = "IA_NATS_PASSWORD",
        hide_env_values = true,
        requires = "nats_user"
    )]
    pub nats_password: Option<String>,
}

impl BusArgs {
    /// Connects to NATS as `identity` with the credentials given.
    pub async fn connect(&self, identity: &str) -> anyhow::Result<NatsBus> {
        let auth = match (&self.nats_nkey_file, &self.nats_user, &self.nats_password) {
            (Some(path), _, _) => {
                let seed = std::fs::read_to_string(path)
                    .with_context(|| format!("--nats-nkey-file {}", path.display()))?;
                NatsAuth::Nkey {
                    seed: seed.trim().to_string(),
                }
            }
            (None, Some(user), Some(password)) => NatsAuth::Password {
                user: user.clone(),
                password: password.clone(),
            },
            _ => NatsAuth::Anonymous,
        };
        Ok(NatsBus::connect_as(&self.nats, &auth, Some(identity)).await?)
    }
}

#[derive(Args, Debug)]
pub struct AssistantArgs {
    #[command(flatten)]
    bus: BusArgs,
    /// The Strategy this assistant works for.
    #[arg(long, env = "IA_STRATEGY")]
    strategy: String,
    /// The role it plays (marketMonitor, technicalAnalyst, fundamentalAnalyst, riskManager, strategist).
    #[arg(long, env = "IA_ROLE")]
    role: Role,
    /// The TradingAssistant's name (default: the role's).
    #[arg(long, env = "IA_ASSISTANT")]
    name: Option<String>,
    /// This replica's name, unique among replicas (default: $HOSTNAME, else host-pid).
    #[arg(long, env = "IA_INSTANCE")]
    instance: Option<String>,
    /// Initial vote weight (TradingAssistant spec.weight).
    #[arg(long, default_value_t = 1.0, env = "IA_WEIGHT")]
    weight: f64,
    /// Strategy manifest, for the risk limits the risk manager enforces (default limits otherwise).
    #[arg(long, value_name = "FILE", env = "IA_STRATEGY_FILE")]
    strategy_file: Option<PathBuf>,
    /// Ollama model this role reasons with (TradingAssistant spec.model.name); rules only without.
    #[arg(long, env = "IA_MODEL", requires = "ollama_url")]
    model: Option<String>,
    /// Ollama base URL (the Strategy's ollama dependency).
    #[arg(
        long,
        value_name = "URL",
        env = "IA_OLLAMA_URL",
        hide_env_values = true
    )]
    ollama_url: Option<String>,
    /// Sampling temperature (spec.model.temperature).
    #[arg(long, default_value_t = 0.2, env = "IA_MODEL_TEMPERATURE")]
    temperature: f32,
    /// Seconds to wait for the model (spec.model.timeoutSeconds).
    #[arg(long, default_value_t = 20, env = "IA_MODEL_TIMEOUT")]
    model_timeout: u64,
    /// Concurrent requests to the model from this replica.
    #[arg(long, default_value_t = 2, env = "IA_MODEL_CONCURRENCY")]
    model_concurrency: usize,
    /// Serve /healthz, /readyz and /metrics here (the operator sets 0.0.0.0:8080).
    #[arg(long, value_name = "ADDR", env = "IA_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Role parameter, KEY=VALUE (TradingAssistant spec.params); repeatable, and the value may hold
    /// any character (commas included); overrides the same key of --params.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Role parameters as a JSON object of strings, as the operator passes spec.params, e.g.
    /// '{"feeds":"https://a/rss,https://b/rss"}'.
    #[arg(long = "params", value_name = "JSON", env = "IA_PARAMS")]
    params_json: Option<String>,
}

/// The role's params: the JSON object of `--params` (`IA_PARAMS`), then each `--param KEY=VALUE`.
fn role_params(json: Option<&str>, pairs: &[String]) -> anyhow::Result<Params> {
    let mut params = Params::default();
    if let Some(json) = json {
        params.0 = serde_json::from_str(json).with_context(|| {
            format!("--params (IA_PARAMS) {json:?}: expected a JSON object of strings, e.g. {{\"alertThreshold\":\"0.03\"}}")
        })?;
    }
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--param {p:?}: expected KEY=VALUE"))?;
        params.0.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(params)
}

/// Prints a published decision: one JSON line (`--json`) or one line for people.
fn print_decision(decision: &Decision, json_lines: bool) {
    if json_lines {
        println!("{}", decision_line(decision));
    } else {
        println!(
            "{} {} {} confidence {:.2} ({} rounds{}{}{})",
            decision.id,
            decision.symbol,
            decision.action,
            decision.confidence,
            decision.rounds.len(),
            if decision.escalated {
                ", escalated"
            } else {
                ""
            },
            if decision.vetoed { ", vetoed" } else { "" },
            if decision.rejected { ", rejected" } else { "" },
        );
    }
}

/// Resolves when the process is asked to stop (`agent::shutdown`: SIGTERM or Ctrl-C).
async fn shutdown_signal() {
    agent::shutdown::stop_requested().await;
}

pub async fn assistant(args: AssistantArgs) -> anyhow::Result<()> {
    if !args.role.reasons() {
        return duty_only(args).await;
    }
    let risk = match &args.strategy_file {
        Some(path) => {
            let validator = protocol::crd::validate::ManifestValidator::new();
            let strategy: Strategy = load_one(&validator, path, "Strategy")?;
            strategy.spec.risk
        }
        None => RiskSpec::default(),
    };
    let params = role_params(args.params_json.as_deref(), &args.params)?;
    let analyst: Box<dyn agent::roles::Analyst> = if args.role == Role::FundamentalAnalyst {
        // the fundamental analyst reads the feeds of params.feeds, polled into its news book
        let book = agent::roles::fundamental::NewsBook::default();
        let feeds = params.list("feeds");
        let every = Duration::from_secs_f64(
            params
                .number("pollSeconds", 300.0)
                .map_err(|e| anyhow::anyhow!("TradingAssistant {}: {e}", args.role))?
                .max(10.0),
        );
        let symbols = match &args.strategy_file {
            Some(path) => {
                let validator = protocol::crd::validate::ManifestValidator::new();
                let strategy: Strategy = load_one(&validator, path, "Strategy")?;
                strategy.spec.symbols
            }
            None => vec![],
        };
        if feeds.is_empty() || symbols.is_empty() {
            tracing::warn!("no params.feeds or no symbols (--strategy-file): the fundamental analyst will abstain");
        } else {
            let poller = agent::news::NewsPoller::new(feeds, symbols, book.clone());
            tokio::spawn(poller.run(every));
        }
        Box::new(agent::roles::fundamental::FundamentalAnalyst {
            news: book,
            dated: None,
        })
    } else {
        analyst_for(args.role, &params, &risk)
            .map_err(|e| anyhow::anyhow!("TradingAssistant {}: {e}", args.role))?
            .expect("voting roles have an analyst")
    };
    let llm = match (&args.model, &args.ollama_url) {
        (Some(model), Some(url)) => Some(
            agent::llm::LlmReasoner::new(
                url,
                model,
                args.temperature,
                Duration::from_secs(args.model_timeout),
                args.model_concurrency,
            )
            .map_err(|e| anyhow::anyhow!("--ollama-url: {e}"))?,
        ),
        _ => None,
    };
    let subjects = Subjects::new(&args.bus.namespace, &args.strategy)?;
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(addr) = args.listen {
        let bound = agent::api::serve_health(addr, ready.clone())
            .await
            .with_context(|| format!("--listen {addr}"))?;
        tracing::info!(%bound, "health and metrics");
    }
    let bus = args.bus.connect(args.role.as_str()).await?;
    ready.store(true, std::sync::atomic::Ordering::Relaxed);
    let instance = args
        .instance
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("{}-{}", args.role, std::process::id()));
    let service = AssistantService {
        bus,
        subjects,
        strategy: args.strategy.clone(),
        assistant: args.name.unwrap_or_else(|| args.role.as_str().to_string()),
        instance,
        role: args.role,
        weight: args.weight,
        analyst: Arc::from(analyst),
        heartbeat_every: default_heartbeat(),
        llm,
    };
    let answered = service.run(shutdown_signal()).await?;
    tracing::info!(answered, "stopped");
    Ok(())
}

/// The executor and the auditor do not vote: in this build their duties (orders on the paper exchange,
/// the hash-chained audit log) run inside the coordinator, next to the decisions they act on. Their
/// pods announce themselves (so the team's presence and readiness are complete) and stay healthy.
async fn duty_only(args: AssistantArgs) -> anyhow::Result<()> {
    let subjects = Subjects::new(&args.bus.namespace, &args.strategy)?;
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(addr) = args.listen {
        agent::api::serve_health(addr, ready.clone())
            .await
            .with_context(|| format!("--listen {addr}"))?;
    }
    let bus = args.bus.connect(args.role.as_str()).await?;
    ready.store(true, std::sync::atomic::Ordering::Relaxed);
    let instance = args
        .instance
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("{}-{}", args.role, std::process::id()));
    let key = subjects.presence_key(args.role, &instance)?;
    let heartbeat = protocol::messages::Heartbeat {
        assistant: args.name.unwrap_or_else(|| args.role.as_str().to_string()),
        role: args.role,
        instance,
        strategy: args.strategy,
        weight: args.weight,
        at: 0,
    };
    tracing::info!(role = %args.role, "the coordinator carries this role's duties; announcing presence only");
    let beating = async {
        loop {
            let beat = protocol::messages::Heartbeat {
                at: chrono::Utc::now().timestamp_millis(),
                ..heartbeat.clone()
            };
            if let Err(error) = bus.announce(&key, &beat).await {
                tracing::warn!(%error, "heartbeat failed; retrying on the next beat");
            }
            tokio::time::sleep(default_heartbeat()).await;
        }
    };
    tokio::select! {
        _ = beating => {},
        _ = shutdown_signal() => {},
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct CoordinatorArgs {
    #[command(flatten)]
    bus: BusArgs,
    #[command(flatten)]
    replay: ReplayArgs,
    /// Stop after this many cycles.
    #[arg(long, env = "IA_MAX_CYCLES")]
    max_cycles: Option<u64>,
    /// Print each decision as one JSON line on stdout.
    #[arg(long, env = "IA_JSON")]
    json: bool,
    /// The team: TradingAssistant manifests (e.g. config/samples/team.yaml). Only the assistants it
    /// declares for this Strategy vote, at their spec.weight; without it, whoever is present votes
    /// at weight 1 (a warning says so). In a cluster the operator writes it from the
    /// TradingAssistants.
    #[arg(long, value_name = "FILE", env = "IA_TEAM_FILE")]
    team_file: Option<PathBuf>,
    /// Database for decisions, opinions, orders and the audit log (sqlite://PATH or postgres://…;
    /// a password belongs in the URL's env var, IA_DB, never on the command line).
    #[arg(long, value_name = "URL", env = "IA_DB", hide_env_values = true)]
    db: Option<String>,
    /// Serve the HTTP API (health, metrics, the record, escalation answers, a WebSocket stream) here;
    /// needs --db. Mutating routes take the bearer token in IA_API_TOKEN.
    #[arg(long, value_name = "ADDR", env = "IA_LISTEN", requires = "db")]
    listen: Option<std::net::SocketAddr>,
    /// The record's listings (decisions, orders, portfolio, assistants) need the API token too.
    #[arg(long, env = "IA_API_READ_AUTH")]
    api_read_auth: bool,
    /// A browser origin (https://host[:port]) besides the API's own that may open the WebSocket
    /// stream; repeatable, or comma-separated in the variable.
    #[arg(
        long,
        value_name = "ORIGIN",
        env = "IA_API_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    api_allowed_origin: Vec<String>,
    /// Without --data: Binance REST base URL for the warm-up.
    #[arg(long, value_name = "URL", default_value = agent::market::binance::MAINNET, env = "IA_BINANCE_URL")]
    rest_url: String,
    /// Without --data: Binance WebSocket base URL for live candles.
    #[arg(long, value_name = "URL", default_value = agent::market::stream::MAINNET_WS, env = "IA_BINANCE_WS_URL")]
    ws_url: String,
    /// Without --data: candles of history to warm the indicators up with.
    #[arg(long, default_value_t = 200, env = "IA_WARMUP")]
    warmup: u32,
    /// How long to wait for the policy's voters to be present before starting.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30,
        env = "IA_WAIT_FOR_VOTERS"
    )]
    wait_for_voters: u64,
    /// After a replay ends, keep serving (health, API) until SIGTERM instead of exiting, so that a
    /// coordinator pod replaying candles does not restart and replay again (set by the operator).
    #[arg(long, env = "IA_HOLD_AFTER_REPLAY")]
    hold_after_replay: bool,
}

/// A decision as `--json` prints it: one line per decision.
pub fn decision_line(d: &Decision) -> serde_json::Value {
    let votes: Vec<_> = d
        .rounds
        .last()
        .map(|r| {
            r.votes
                .iter()
                .map(|v| json!({"assistant": v.assistant, "role": v.role, "action": v.action, "confidence": v.confidence, "weight": v.weight, "veto": v.veto}))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "id": d.id,
        "symbol": d.symbol,
        "action": d.action,
        "confidence": d.confidence,
        "consensus_reached": d.consensus_reached,
        "rounds": d.rounds.len(),
        "votes": votes,
        "escalated": d.escalated,
        "vetoed": d.vetoed,
        "rejected": d.rejected,
        "price": d.price,
        "decided_at": d.decided_at,
    })
}

pub async fn coordinator(args: CoordinatorArgs) -> anyhow::Result<()> {
    let (Some(strategy_file), Some(policy_file)) =
        (&args.replay.strategy_file, &args.replay.policy_file)
    else {
        bail!(
            "the coordinator needs --strategy-file and --policy-file (the manifests the team runs)"
        );
    };
    let mut team_config = TeamConfig::load(strategy_file, policy_file)?;
    // live trading only when the Strategy says so, with its keys from the environment (a Secret)
    let live_exchange = if team_config.strategy.spec.mode == protocol::crd::TradingMode::Live {
        let exchange = team_config
            .strategy
            .spec
            .exchange
            .clone()
            .unwrap_or_default();
        let base_url = exchange
            .base_url
            .unwrap_or_else(|| agent::exchange::binance::TESTNET.to_string());
        let credentials = agent::exchange::binance::Credentials::from_env()
            .with_context(|| format!("{}: spec.mode is live", strategy_file.display()))?;
        tracing::warn!(%base_url, "LIVE trading: orders go to the exchange");
        Some(agent::exchange::binance::BinanceSpot::new(
            &base_url,
            credentials,
        ))
    } else {
        None
    };
    if !args.replay.symbols.is_empty() {
        team_config =
            team_config.with_overrides(json!({"symbols": args.replay.symbols}), json!({}))?;
    }
    let name = team_config
        .strategy
        .metadata
        .name
        .clone()
        .unwrap_or_default();
    let policy = team_config.policy.spec.clone();
    let notifications = team_config.strategy.spec.notifications.clone();
    let notifier = notify::from_env(notifications.as_ref())
        .with_context(|| format!("{}: spec.notifications", strategy_file.display()))?;
    // replay a file, or warm up from Binance and go on with live candles
    // the Strategy may ask for a replay (its own file, else the bundled candles) instead of Binance
    let market = &team_config.strategy.spec.market_data;
    let replay_asked = market.source == protocol::crd::MarketDataSource::Replay;
    let mut replay_args = args.replay.clone();
    if replay_asked && replay_args.data.is_empty() {
        replay_args.data.extend(market.replay_file.iter().cloned());
    }
    let (mut backtest, info, live, streaming) = if args.replay.data.is_empty() && !replay_asked {
        let interval = args
            .replay
            .interval
            .unwrap_or(team_config.strategy.spec.interval);
        team_config.strategy.spec.interval = interval;
        let rest = agent::market::binance::BinanceRest::new(&args.rest_url);
        let symbols = team_config.strategy.spec.symbols.clone();
        let (series, live_from) =
            super::live::warm_up(&rest, &args.rest_url, &symbols, interval, args.warmup).await?;
        let (streaming, rx) = super::live::live_feed(&rest, &args.ws_url, &series, interval);
        let stopper = streaming.abort_handle();
        tokio::spawn(async move {
            shutdown_signal().await;
            stopper.abort(); // the feed ends; the cycle in flight completes and everything is flushed
        });
        let info = agent::backtest::report::RunInfo {
            strategy: name.clone(),
            symbols,
            interval: interval.to_string(),
            data: vec![format!("{} (live)", args.ws_url)],
            capital: team_config.strategy.spec.capital,
            fee_rate: 0.0,
            slippage_bps: 0.0,
            policy: serde_json::to_value(&team_config.policy.spec)?,
            wall_seconds: 0.0,
        };
        // the warm-up candles are history: they teach the indicators, never reach an order
        let backtest = agent::engine::Session {
            trade_from: Some(live_from),
            ..agent::engine::Session::new(team_config, series, interval.millis())
        };
        (backtest, info, Some(rx), Some(streaming))
    } else {
        tracing::info!(data = ?replay_args.data, "replaying candles (empty: the bundled data)");
        let Prepared { mut backtest, info } = prepare(&replay_args, team_config)?;
        // the history before --from warms the indicators only: no cycles through the bus
        backtest.shadow_cycles = false;
        (backtest, info, None, None)
    };
    if live_exchange.is_some() && streaming.is_none() {
        bail!(
            "{}: spec.mode is live, which trades on live candles only (no --data, marketData.source: binance)",
            strategy_file.display()
        );
    }
    backtest.live = live_exchange;
    backtest.notifier = notifier.clone();
    if let Some(feed) = &streaming {
        // the live order books price the paper fills (market orders walk the visible levels)
        let books = agent::engine::SharedBooks::default();
        let stream = agent::market::book::BookStream {
            ws_url: args.ws_url.clone(),
            symbols: backtest.team_config.strategy.spec.symbols.clone(),
            depth_levels: 20,
            idle_timeout: Duration::from_secs(60),
            max_backoff: Duration::from_secs(30),
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        let task = tokio::spawn(stream.run(tx));
        let shared = books.clone();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                if let agent::market::book::BookEvent::Depth(depth) = event {
                    let at = chrono::Utc::now().timestamp_millis();
                    shared
                        .lock()
                        .expect("books lock")
                        .insert(depth.symbol.clone(), (depth, at));
                }
            }
        });
        let feed_done = feed.abort_handle();
        tokio::spawn(async move {
            // the book stream ends with the candle feed
            while !feed_done.is_finished() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            task.abort();
        });
        backtest.books = Some(books);
    }
    backtest.max_cycles = args.max_cycles;
    let subjects = Subjects::new(&args.bus.namespace, &name)?;
    let bus = args.bus.connect("coordinator").await?;

    let declared = match &args.team_file {
        Some(path) => Some(agent::config::load_team(path, &name)?),
        None => {
            tracing::warn!(
                "no --team-file: any assistant that announces itself for Strategy {name} votes (at weight 1)"
            );
            None
        }
    };
    // wait for the voters the policy names
    let started = Instant::now();
    let voters = loop {
        let present = voters_from_presence(
            &bus.present(subjects.presence_scope()).await?,
            &name,
            declared.as_deref(),
        );
        // the policy's roles, as far as the declared team fills them
        let missing: Vec<Role> = policy
            .voters
            .iter()
            .copied()
            .filter(|r| {
                declared
                    .as_ref()
                    .is_none_or(|team| team.iter().any(|v| v.role == *r))
            })
            .filter(|r| !present.iter().any(|v| v.role == *r))
            .collect();
        if missing.is_empty() {
            break present;
        }
        if started.elapsed() >= Duration::from_secs(args.wait_for_voters) {
            if present.is_empty() {
                bail!(
                    "no assistant of Strategy {name} is present on {} after {} s",
                    args.bus.nats,
                    args.wait_for_voters
                );
            }
            tracing::warn!(?missing, "starting without every voter; quorum decides");
            break present;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tracing::info!(voters = voters.len(), strategy = %name, "coordinating");
    // the roles the quorum counts on: their health is watched, and told when it changes
    let counted: Vec<Role> = policy
        .voters
        .iter()
        .copied()
        .filter(|r| voters.iter().any(|v| v.role == *r))
        .collect();

    // decisions go to the durable stream (exactly once per cycle id) in order, from a task of their own
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Decision>();
    // ready while every decision made is on the stream; the API's /readyz reads it
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let publisher = {
        let bus = bus.clone();
        let subject = subjects.decision();
        let json_lines = args.json;
        let (name, ready) = (name.clone(), ready.clone());
        tokio::spawn(async move {
            let publish = |d: &Decision| {
                let (bus, subject) = (bus.clone(), subject.clone());
                let (id, message) = (d.id.clone(), Message::Decision(d.clone()));
                async move {
                    bus.publish_durable(&subject, &id, &message)
                        .await
                        .map(|_| ())
                }
            };
            agent::bus::publisher::publish_in_order(&name, rx, ready, publish, |decision| {
                print_decision(decision, json_lines)
            })
            .await
        })
    };
    let store = match &args.db {
        Some(url) => Some(agent::store::Store::connect(url).await?),
        None => None,
    };
    // a restarted coordinator resumes from the weights its team had learned
    let mut voters = voters;
    if let Some(store) = &store {
        let learned = store.weights(&name).await?;
        let mut resumed = 0;
        for voter in &mut voters {
            let weight = learned
                .iter()
                .find(|w| w["assistant"] == voter.assistant.as_str())
                .and_then(|w| w["weight"].as_f64());
            if let Some(weight) = weight {
                voter.weight = weight;
                resumed += 1;
            }
        }
        if resumed > 0 {
            tracing::info!(resumed, "resuming the learned vote weights from the store");
        }
    }
    if store.is_some() && !agent::audit::AuditKey::from_env().is_keyed() {
        tracing::warn!(
            "IA_AUDIT_KEY is not set: the audit chain is UNKEYED, so anyone who can write the database can rewrite it undetected"
        );
    }
    // the HTTP API and console: answers to escalations go on the bus, decisions and escalations to
    // the WebSocket stream
    let api = match (&args.listen, &store) {
        (Some(addr), Some(store)) => {
            Some(serve_api(&args, *addr, store, &name, &bus, &subjects, ready.clone()).await?)
        }
        _ => None,
    };
    let transport = BusTransport {
        bus: bus.clone(),
        subjects: subjects.clone(),
        round_timeout: Duration::from_secs(u64::from(policy.round_timeout_seconds)),
    };
    tokio::spawn(agent::team_health::watch(
        bus.clone(),
        subjects.presence_scope().to_string(),
        name.clone(),
        counted,
        api.as_ref().map(|state| state.presence.clone()),
        notifier.clone(),
    ));
    let escalations = agent::api::Watched {
        inner: BusEscalations {
            bus: bus.clone(),
            subjects: subjects.clone(),
        },
        pending: api.as_ref().map(|state| state.escalations.clone()),
        notifier,
        console_url: notifications.and_then(|n| n.console_url),
    };
    // decided, stored and published before a stop lets the process go (agent::shutdown)
    let in_flight = agent::shutdown::busy();
    let outcome = backtest
        .replay(
            live,
            agent::engine::ReplayTeam {
                transport: &transport,
                escalations: &escalations,
                voters,
            },
            store.as_ref(),
            |d| {
                if let Some(state) = &api {
                    let _ = state.events.send(json!({"type": "decision", "decision": d}));
                }
                if tx.send(d.clone()).is_err() {
                    tracing::error!(id = %d.id, "the publisher has stopped: decision stored, not published");
                }
            },
            |_, _| {},
        )
        .await?;
    drop(tx);
    if let Some(streaming) = streaming {
        streaming.abort();
    }
    let published = publisher
        .await
        .context("the decision publisher stopped")??;
    // a client that lost its server flushes only once it is back: bounded
    if tokio::time::timeout(Duration::from_secs(2), bus.client().flush())
        .await
        .is_err()
    {
        tracing::warn!("the bus did not flush within 2 s (NATS away?)");
    }
    eprintln!(
        "{} cycles over {} candles of {}; {published} decisions on {}",
        outcome.cycles,
        outcome.candles,
        info.symbols.join(", "),
        subjects.decision()
    );
    if let Some(audit) = &outcome.audit {
        // the anchor to keep outside the database: `audit verify --expect-head`
        tracing::info!(entries = audit.entries, head = %audit.head, keyed = audit.keyed, "audit chain head");
    }
    drop(in_flight);
    if args.hold_after_replay {
        tracing::info!("the replay is over; holding until SIGTERM (--hold-after-replay)");
        shutdown_signal().await;
    }
    Ok(())
}

/// Serves the API and console on `addr`: escalation answers are relayed to the bus (the assistants'
/// heartbeats are refreshed into its state by [`agent::team_health::watch`]). The state, for the
/// stream's events.
async fn serve_api(
    args: &CoordinatorArgs,
    addr: std::net::SocketAddr,
    store: &agent::store::Store,
    name: &str,
    bus: &NatsBus,
    subjects: &Subjects,
    ready: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<agent::api::ApiState> {
    let (resolutions, mut answers) =
        tokio::sync::mpsc::channel::<protocol::messages::EscalationResolution>(64);
    let state = agent::api::ApiState::new(
        store.clone(),
        name,
        std::env::var("IA_API_TOKEN").ok(),
        resolutions,
    )
    .with_ready(ready)
    .with_read_auth(args.api_read_auth)
    .with_allowed_origins(args.api_allowed_origin.clone());
    let bound = agent::api::serve(state.clone(), addr, shutdown_signal())
        .await
        .with_context(|| format!("--listen {addr}"))?;
    tracing::info!(%bound, "HTTP API and console listening (http://{bound}/)");
    let (relay, relay_subjects) = (bus.clone(), subjects.clone());
    tokio::spawn(async move {
        while let Some(answer) = answers.recv().await {
            match relay_subjects.escalation(&answer.id) {
                Ok(subject) => {
                    if let Err(error) = relay
                        .publish(&subject, &Message::EscalationResolution(answer))
                        .await
                    {
                        tracing::error!(%error, "relaying an escalation answer failed");
                    }
                }
                Err(error) => tracing::warn!(%error, "ignored an escalation answer"),
            }
        }
    });
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::role_params;

    #[test]
    fn params_keep_commas_and_pairs_override_the_json() {
        let feeds = "https://www.coindesk.com/arc/outboundfeeds/rss/,https://cointelegraph.com/rss";
        let json = serde_json::json!({"feeds": feeds, "alertThreshold": "0.03"}).to_string();
        let params = role_params(Some(&json), &["alertThreshold=0.05".into()]).unwrap();
        assert_eq!(params.list("feeds").len(), 2);
        assert_eq!(params.0["feeds"], feeds);
        assert_eq!(params.0["alertThreshold"], "0.05");
        let pair = role_params(None, &[format!("feeds={feeds}")]).unwrap();
        assert_eq!(pair.0["feeds"], feeds, "a --param value may hold commas");
    }

    #[test]
    fn malformed_params_name_the_flag_and_the_variable() {
        let e = role_params(Some("alertThreshold=0.03"), &[]).unwrap_err();
        assert!(format!("{e:#}").contains("--params (IA_PARAMS)"), "{e:#}");
        let e = role_params(None, &["alertThreshold".into()]).unwrap_err();
        assert!(e.to_string().contains("expected KEY=VALUE"), "{e}");
    }
}
