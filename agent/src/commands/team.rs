//! `trading-agent assistant` and `trading-agent coordinator`: the team as separate processes over
//! NATS, in a cluster (one per pod) or on bare machines and docker compose.

use super::backtest::{prepare, Prepared, ReplayArgs};
use agent::bus::auth::NatsAuth;
use agent::bus::nats::NatsBus;
use agent::bus::Bus;
use agent::config::{load_one, TeamConfig};
use agent::coordination::{ApiOptions, LiveFeed, Options};
use agent::engine::Session;
use agent::exchange::binance::BinanceSpot;
use agent::market::binance::BinanceRest;
use agent::market::live::{live_feed, warm_up};
use agent::roles::{analyst_for, Params};
use agent::service::{default_heartbeat, AssistantService};
use anyhow::{bail, Context};
use clap::Args;
use protocol::crd::Strategy;
use protocol::subjects::Subjects;
use protocol::Role;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the team meets.
#[derive(Args, Debug, Clone)]
pub struct BusArgs {
    /// NATS server URL.
    #[arg(
        long,
        value_name = "URL",
        default_value = "nats://127.0.0.1:4222",
        env = protocol::env::NATS_URL,
        hide_env_values = true
    )]
    pub nats: String,
    /// Namespace of the team (the Kubernetes namespace in a cluster); first token of its subjects.
    #[arg(long, default_value = "default", env = protocol::env::NAMESPACE)]
    pub namespace: String,
    #[command(flatten)]
    pub credentials: NatsCredentials,
}

/// Who a process is on NATS.
#[derive(Args, Debug, Clone)]
pub struct NatsCredentials {
    /// This component's NATS identity: a file holding its nkey seed (from `trading-agent
    /// nats-config`).
    #[arg(
        long,
        value_name = "FILE",
        env = protocol::env::NATS_NKEY_FILE,
        conflicts_with = "nats_user"
    )]
    pub nats_nkey_file: Option<PathBuf>,
    /// This component's NATS identity as a `.creds` file (a user JWT and its nkey seed, as `nsc`
    /// writes them), for a server in operator (JWT) mode.
    #[arg(
        long,
        value_name = "FILE",
        env = "IA_NATS_CREDS",
        hide_env_values = true,
        conflicts_with_all = ["nats_nkey_file", "nats_user", "nats_password"]
    )]
    pub nats_creds: Option<PathBuf>,
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

impl NatsCredentials {
    /// The credentials given: a `.creds` file (checked now), an nkey seed read from its file, a
    /// user and password, or none.
    pub fn auth(&self) -> anyhow::Result<NatsAuth> {
        if let Some(path) = &self.nats_creds {
            return NatsAuth::creds_file(path)
                .with_context(|| format!("--nats-creds {}", path.display()));
        }
        Ok(
            match (&self.nats_nkey_file, &self.nats_user, &self.nats_password) {
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
            },
        )
    }
}

impl BusArgs {
    /// Connects to NATS as `identity` with the credentials given.
    pub async fn connect(&self, identity: &str) -> anyhow::Result<NatsBus> {
        let auth = self.credentials.auth()?;
        Ok(NatsBus::connect_as(&self.nats, &auth, Some(identity)).await?)
    }
}

#[derive(Args, Debug)]
pub struct AssistantArgs {
    #[command(flatten)]
    bus: BusArgs,
    /// The Strategy this assistant works for.
    #[arg(long, env = protocol::env::STRATEGY)]
    strategy: String,
    /// The role it plays (marketMonitor, technicalAnalyst, fundamentalAnalyst, riskManager,
    /// strategist; executor and auditor follow the decision stream instead of voting).
    #[arg(long, env = protocol::env::ROLE)]
    role: Role,
    /// The TradingAssistant's name (default: the role's).
    #[arg(long, env = protocol::env::ASSISTANT)]
    name: Option<String>,
    /// This replica's name, unique among replicas (default: $HOSTNAME, else host-pid).
    #[arg(long, env = protocol::env::INSTANCE)]
    instance: Option<String>,
    /// Initial vote weight (TradingAssistant spec.weight).
    #[arg(long, default_value_t = 1.0, env = protocol::env::WEIGHT)]
    weight: f64,
    /// Strategy manifest, for the risk limits the risk manager enforces (default limits otherwise).
    #[arg(long, value_name = "FILE", env = protocol::env::STRATEGY_FILE)]
    strategy_file: Option<PathBuf>,
    /// Ollama model this role reasons with (TradingAssistant spec.model.name); rules only without.
    #[arg(long, env = protocol::env::MODEL, requires = "ollama_url")]
    model: Option<String>,
    /// Ollama base URL (the Strategy's ollama dependency).
    #[arg(
        long,
        value_name = "URL",
        env = protocol::env::OLLAMA_URL,
        hide_env_values = true
    )]
    ollama_url: Option<String>,
    /// Sampling temperature (spec.model.temperature).
    #[arg(long, default_value_t = 0.2, env = protocol::env::MODEL_TEMPERATURE)]
    temperature: f32,
    /// Seconds to wait for the model (spec.model.timeoutSeconds).
    #[arg(long, default_value_t = 20, env = protocol::env::MODEL_TIMEOUT)]
    model_timeout: u64,
    /// Concurrent requests to the model from this replica.
    #[arg(long, default_value_t = 2, env = "IA_MODEL_CONCURRENCY")]
    model_concurrency: usize,
    /// Serve /healthz, /readyz and /metrics here (the operator sets 0.0.0.0:8080).
    #[arg(long, value_name = "ADDR", env = protocol::env::LISTEN)]
    listen: Option<std::net::SocketAddr>,
    /// Executor and auditor: the coordinator's nkey public key (U…); only candles and decisions
    /// it signed are acted on or recorded (unsigned ones are taken without it).
    #[arg(long, value_name = "KEY", env = protocol::env::COORDINATOR_KEY)]
    coordinator_key: Option<String>,
    /// Auditor: the executor's nkey public key (U…); only order reports it signed are recorded.
    #[arg(long, value_name = "KEY", env = protocol::env::EXECUTOR_KEY)]
    executor_key: Option<String>,
    /// Role parameter, KEY=VALUE (TradingAssistant spec.params); repeatable, and the value may hold
    /// any character (commas included); overrides the same key of --params.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Role parameters as a JSON object of strings, as the operator passes spec.params, e.g.
    /// '{"feeds":"https://a/rss,https://b/rss"}'.
    #[arg(long = "params", value_name = "JSON", env = protocol::env::PARAMS)]
    params_json: Option<String>,
    /// The team's database. The auditor writes the record there (decisions, orders, the audit
    /// chain). The strategist reads the ensemble the coordinator retrains from its `models` table
    /// (`coordinator --retrain`), polled every minute and used while it beats its baseline;
    /// without it the strategist reads the trend alone.
    #[arg(long, value_name = "URL", env = protocol::env::DB, hide_env_values = true)]
    db: Option<String>,
}

/// How often a strategist reads the newest stored model.
const MODEL_POLL: Duration = Duration::from_secs(60);

/// The strategist, with the stored model of `strategy` when there is a database to read it from.
async fn strategist(
    db: Option<&str>,
    strategy: &str,
) -> anyhow::Result<Box<dyn agent::roles::Analyst>> {
    let Some(url) = db else {
        return Ok(Box::new(agent::roles::strategist::Strategist::default()));
    };
    let stored = agent::stored_model::StoredForecaster::new();
    // the database may come up after the strategist: it votes on the trend alone until then
    let (url, strategy, model) = (url.to_string(), strategy.to_string(), stored.clone());
    tokio::spawn(async move {
        let store = loop {
            match agent::store::Store::connect(&url).await {
                Ok(store) => break store,
                Err(error) => {
                    tracing::warn!(%error, "cannot reach the team's database for the strategist's model yet; voting on the trend alone")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(MODEL_POLL) => {},
                () = agent::shutdown::stop_requested() => return,
            }
        };
        model.poll(store, strategy, MODEL_POLL).await;
    });
    Ok(Box::new(agent::roles::strategist::Strategist {
        forecaster: Some(stored),
    }))
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

/// Resolves when the process is asked to stop (`agent::shutdown`: SIGTERM or Ctrl-C).
async fn shutdown_signal() {
    agent::shutdown::stop_requested().await;
}

pub async fn assistant(args: AssistantArgs) -> anyhow::Result<()> {
    if !args.role.reasons() {
        return duty_only(args).await;
    }
    let strategy = match &args.strategy_file {
        Some(path) => Some(load_one::<Strategy>(
            &protocol::crd::validate::ManifestValidator::new(),
            path,
            "Strategy",
        )?),
        None => None,
    };
    let params = role_params(args.params_json.as_deref(), &args.params)?;
    let analyst = analyst(&args, &params, strategy.as_ref()).await?;
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
    let ready = serve_health(args.listen).await?;
    let bus = args.bus.connect(args.role.as_str()).await?;
    ready.store(true, std::sync::atomic::Ordering::Relaxed);
    let service = AssistantService {
        bus,
        subjects,
        strategy: args.strategy.clone(),
        assistant: assistant_name(&args),
        instance: instance_name(&args),
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

/// The rule a voting role reasons by: the fundamental analyst reads `params.feeds` for the
/// Strategy's symbols, the strategist its stored model (`--db`), the others their rule under the
/// Strategy's risk limits (default limits without `--strategy-file`).
async fn analyst(
    args: &AssistantArgs,
    params: &Params,
    strategy: Option<&Strategy>,
) -> anyhow::Result<Box<dyn agent::roles::Analyst>> {
    Ok(match args.role {
        Role::FundamentalAnalyst => {
            let symbols = strategy.map(|s| s.spec.symbols.clone()).unwrap_or_default();
            fundamental(args.role, params, symbols)?
        }
        Role::Strategist => strategist(args.db.as_deref(), &args.strategy).await?,
        role => {
            let risk = strategy.map(|s| s.spec.risk.clone()).unwrap_or_default();
            analyst_for(role, params, &risk)
                .map_err(|e| anyhow::anyhow!("TradingAssistant {role}: {e}"))?
                .expect("voting roles have an analyst")
        }
    })
}

/// The fundamental analyst over its news book, which a poller of `params.feeds` fills for
/// `symbols` every `params.pollSeconds` (at least 10 s); without feeds or symbols it abstains.
fn fundamental(
    role: Role,
    params: &Params,
    symbols: Vec<String>,
) -> anyhow::Result<Box<dyn agent::roles::Analyst>> {
    let book = agent::roles::fundamental::NewsBook::default();
    let feeds = params.list("feeds");
    let every = Duration::from_secs_f64(
        params
            .number("pollSeconds", 300.0)
            .map_err(|e| anyhow::anyhow!("TradingAssistant {role}: {e}"))?
            .max(10.0),
    );
    if feeds.is_empty() || symbols.is_empty() {
        tracing::warn!(
            "no params.feeds or no symbols (--strategy-file): the fundamental analyst will abstain"
        );
    } else {
        let poller = agent::news::NewsPoller::new(feeds, symbols, book.clone());
        tokio::spawn(poller.run(every));
    }
    Ok(Box::new(agent::roles::fundamental::FundamentalAnalyst {
        news: book,
        dated: None,
    }))
}

/// Serves /healthz, /readyz and /metrics on `listen` when given; the flag it returns says ready
/// (false until the bus is connected).
async fn serve_health(
    listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<Arc<std::sync::atomic::AtomicBool>> {
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(addr) = listen {
        let bound = agent::api::serve_health(addr, ready.clone())
            .await
            .with_context(|| format!("--listen {addr}"))?;
        tracing::info!(%bound, "health and metrics");
    }
    Ok(ready)
}

/// This replica's name: `--instance`, else the pod's `HOSTNAME`, else `<role>-<pid>`.
fn instance_name(args: &AssistantArgs) -> String {
    args.instance
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("{}-{}", args.role, std::process::id()))
}

/// The TradingAssistant's name: `--name`, else the role's.
fn assistant_name(args: &AssistantArgs) -> String {
    args.name
        .clone()
        .unwrap_or_else(|| args.role.as_str().to_string())
}

/// The executor and the auditor do not vote: they follow the team's decision stream as services
/// of their own (`agent::services`), the executor placing the orders and the auditor writing the
/// record, and announce themselves (so the team's presence and readiness are complete).
async fn duty_only(args: AssistantArgs) -> anyhow::Result<()> {
    let subjects = Subjects::new(&args.bus.namespace, &args.strategy)?;
    let ready = serve_health(args.listen).await?;
    let duty = Duty::prepare(&args).await?;
    let peers = peers(&args)?;
    let bus = args.bus.connect(args.role.as_str()).await?;
    ready.store(true, std::sync::atomic::Ordering::Relaxed);
    let instance = instance_name(&args);
    let key = subjects.presence_key(args.role, &instance)?;
    let heartbeat = protocol::messages::Heartbeat {
        assistant: assistant_name(&args),
        role: args.role,
        instance,
        strategy: args.strategy.as_str().into(),
        weight: args.weight,
        at: 0,
    };
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
        _ = beating => Ok(()),
        done = duty.run(&bus, &subjects, &args.strategy, &peers) => done,
    }
}

/// What the executor or the auditor needs before it connects, checked at start.
enum Duty {
    /// The Strategy to execute, its exchange when live, where fills are told.
    Executor(Box<Strategy>, Option<BinanceSpot>, notify::Notifier),
    /// The store to record into, and the chain's key.
    /// The database's URL (connected to once it answers), and the chain's key.
    Auditor(String, agent::audit::AuditKey),
}

impl Duty {
    async fn prepare(args: &AssistantArgs) -> anyhow::Result<Self> {
        if args.role == Role::Auditor {
            let url = args
                .db
                .as_deref()
                .context("the auditor writes the team's record: it needs --db URL (IA_DB)")?;
            let key = agent::audit::AuditKey::from_env();
            if !key.is_keyed() {
                tracing::warn!("IA_AUDIT_KEY is not set: the audit chain is UNKEYED, so anyone who can write the database can rewrite it undetected");
            }
            return Ok(Self::Auditor(url.to_string(), key));
        }
        let path = args.strategy_file.as_deref().context(
            "the executor trades by its Strategy's limits: it needs --strategy-file FILE (IA_STRATEGY_FILE)",
        )?;
        let validator = protocol::crd::validate::ManifestValidator::new();
        let strategy: Strategy = load_one(&validator, path, "Strategy")?;
        let live = live_account(&strategy, path)?;
        let notifier = notify::from_env(strategy.spec.notifications.as_ref())
            .with_context(|| format!("{}: spec.notifications", path.display()))?;
        Ok(Self::Executor(Box::new(strategy), live, notifier))
    }

    async fn run(
        self,
        bus: &NatsBus,
        subjects: &Subjects,
        strategy: &str,
        peers: &agent::services::Peers,
    ) -> anyhow::Result<()> {
        match self {
            Self::Executor(spec, live, notifier) => {
                let done = agent::services::executor::run(
                    bus,
                    subjects,
                    &spec,
                    live.as_ref(),
                    notifier,
                    peers,
                )
                .await?;
                tracing::info!(?done, "the executor stopped");
            }
            Self::Auditor(url, key) => {
                let done =
                    agent::services::auditor::run(bus, subjects, strategy, &url, &key, peers)
                        .await?;
                tracing::info!(?done, "the auditor stopped");
            }
        }
        Ok(())
    }
}

/// The peers' public keys a service checks signatures with (`--coordinator-key`,
/// `--executor-key`), each checked now.
fn peers(args: &AssistantArgs) -> anyhow::Result<agent::services::Peers> {
    use agent::bus::signing::Verifier;
    let key = |value: &Option<String>, who, flag| {
        value
            .as_deref()
            .map(|k| Verifier::new(k, who, flag))
            .transpose()
    };
    Ok(agent::services::Peers {
        coordinator: key(&args.coordinator_key, "coordinator", "--coordinator-key")?,
        executor: key(&args.executor_key, "executor", "--executor-key")?,
    })
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
    #[arg(long, value_name = "FILE", env = protocol::env::TEAM_FILE)]
    team_file: Option<PathBuf>,
    /// Database for decisions, opinions, orders and the audit log (sqlite://PATH or postgres://…;
    /// a password belongs in the URL's env var, IA_DB, never on the command line).
    #[arg(long, value_name = "URL", env = protocol::env::DB, hide_env_values = true)]
    db: Option<String>,
    /// Retrain the strategist's ensemble on the learning schedule and store each version in --db's
    /// `models` table, where strategist assistants with --db read it.
    #[arg(long, env = protocol::env::RETRAIN, requires = "db")]
    retrain: bool,
    /// Serve the HTTP API (health, metrics, the record, escalation answers, a WebSocket stream) here;
    /// needs --db. Mutating routes take the bearer token in IA_API_TOKEN.
    #[arg(long, value_name = "ADDR", env = protocol::env::LISTEN, requires = "db")]
    listen: Option<std::net::SocketAddr>,
    /// The record's listings (decisions, orders, portfolio, assistants) need the API token too.
    #[arg(long, env = protocol::env::API_READ_AUTH)]
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
    /// Decisions that may wait in memory for the decision stream while NATS is away; at the bound
    /// the team decides nothing until the stream catches up (back-pressure: none is dropped).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10_000,
        env = "IA_MAX_UNPUBLISHED"
    )]
    max_unpublished: usize,
    /// The executor and auditor run as services of their own (`assistant --role executor|auditor`,
    /// set by the operator when the team has both): candles and decisions go on the decision
    /// stream, the executor places the orders (it holds the exchange keys) and the auditor writes
    /// decisions, orders and the audit chain; this process places no order and writes only the
    /// book and the learned weights.
    #[arg(long, env = protocol::env::SERVICES)]
    services: bool,
    /// After a replay ends, keep serving (health, API) until SIGTERM instead of exiting, so that a
    /// coordinator pod replaying candles does not restart and replay again (set by the operator).
    #[arg(long, env = protocol::env::HOLD_AFTER_REPLAY)]
    hold_after_replay: bool,
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
    // with an executor service, the exchange's keys are the executor's, not the coordinator's
    let live_exchange = match args.services {
        false => live_account(&team_config.strategy, strategy_file)?,
        true => None,
    };
    let live = team_config.strategy.spec.mode == protocol::crd::TradingMode::Live;
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
    let notifier = notify::from_env(team_config.strategy.spec.notifications.as_ref())
        .with_context(|| format!("{}: spec.notifications", strategy_file.display()))?;
    let (mut session, feed) = coordinator_session(&args, team_config).await?;
    if args.retrain {
        session.retrainer = Some(Arc::new(agent::ml::Retrainer::new(
            None,
            agent::ml::Training::default(),
            12,
            24 * 180,
        )));
    }
    if live && feed.task.is_none() {
        bail!(
            "{}: spec.mode is live, which trades on live candles only (no --data, marketData.source: binance)",
            strategy_file.display()
        );
    }
    session.live = live_exchange;
    session.notifier = notifier;
    session.max_cycles = args.max_cycles;
    // a replay's decisions reach the store and the API within a second (live ones at once)
    session.record_within = Some(Duration::from_secs(1));
    if let Some(task) = &feed.task {
        // the live order books price the paper fills (market orders walk the visible levels)
        let symbols = session.team_config.strategy.spec.symbols.clone();
        session.books = Some(agent::market::live::stream_books(
            &args.ws_url,
            symbols,
            task,
        ));
    }
    let symbols = session.team_config.strategy.spec.symbols.join(", ");
    let subjects = Subjects::new(&args.bus.namespace, &name)?;
    let bus = args.bus.connect("coordinator").await?;
    let options = coordinator_options(&args, &name).await?;
    let summary = agent::coordination::run(
        session,
        feed,
        bus,
        subjects.clone(),
        &args.bus.nats,
        options,
    )
    .await?;
    eprintln!(
        "{} cycles over {} candles of {symbols}; {} decisions on {}",
        summary.cycles,
        summary.candles,
        summary.published,
        subjects.decision()
    );
    if let Some(audit) = &summary.audit {
        // the anchor to keep outside the database: `audit verify --expect-head`, or `--nats` when
        // it is on the audit stream
        tracing::info!(entries = audit.entries, head = %audit.head, keyed = audit.keyed,
            anchored = summary.anchored.as_ref().is_some_and(|a| a.head == audit.head),
            subject = %subjects.audit(), "audit chain head");
    }
    if args.hold_after_replay {
        tracing::info!("the replay is over; holding until SIGTERM (--hold-after-replay)");
        shutdown_signal().await;
    }
    Ok(())
}

/// Binance spot when `strategy` says `mode: live`, with its keys from the environment (a
/// Secret); paper trading otherwise.
fn live_account(
    strategy: &Strategy,
    strategy_file: &std::path::Path,
) -> anyhow::Result<Option<BinanceSpot>> {
    if strategy.spec.mode != protocol::crd::TradingMode::Live {
        return Ok(None);
    }
    let exchange = strategy.spec.exchange.clone().unwrap_or_default();
    let base_url = exchange
        .base_url
        .unwrap_or_else(|| agent::exchange::binance::TESTNET.to_string());
    let credentials = agent::exchange::binance::Credentials::from_env()
        .with_context(|| format!("{}: spec.mode is live", strategy_file.display()))?;
    tracing::warn!(%base_url, "LIVE trading: orders go to the exchange");
    Ok(Some(BinanceSpot::new(&base_url, credentials)))
}

/// The coordinator's session: a replay of files (`--data`, or the Strategy's `marketData.source:
/// replay`), or a warm-up from Binance followed by live candles.
async fn coordinator_session(
    args: &CoordinatorArgs,
    mut team_config: TeamConfig,
) -> anyhow::Result<(Session, LiveFeed)> {
    let market = &team_config.strategy.spec.market_data;
    let replay_asked = market.source == protocol::crd::MarketDataSource::Replay;
    let mut replay_args = args.replay.clone();
    if replay_asked && replay_args.data.is_empty() {
        replay_args.data.extend(market.replay_file.iter().cloned());
    }
    if !args.replay.data.is_empty() || replay_asked {
        tracing::info!(data = ?replay_args.data, "replaying candles (empty: the bundled data)");
        let Prepared { mut backtest, .. } = prepare(&replay_args, team_config)?;
        // the history before --from warms the indicators only: no cycles through the bus
        backtest.shadow_cycles = false;
        return Ok((backtest, LiveFeed::default()));
    }
    let interval = args
        .replay
        .interval
        .unwrap_or(team_config.strategy.spec.interval);
    team_config.strategy.spec.interval = interval;
    let rest = BinanceRest::new(&args.rest_url);
    let symbols = team_config.strategy.spec.symbols.clone();
    let (series, live_from) =
        warm_up(&rest, &args.rest_url, &symbols, interval, args.warmup).await?;
    let (task, candles) = live_feed(&rest, &args.ws_url, &series, interval);
    let stopper = task.abort_handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        stopper.abort(); // the feed ends; the cycle in flight completes and everything is flushed
    });
    // the warm-up candles are history: they teach the indicators, never reach an order
    let session = Session {
        trade_from: Some(live_from),
        ..Session::new(team_config, series, interval.millis())
    };
    let feed = LiveFeed {
        candles: Some(candles),
        task: Some(task),
    };
    Ok((session, feed))
}

/// The declared team, the store and the API as the flags say.
async fn coordinator_options(args: &CoordinatorArgs, name: &str) -> anyhow::Result<Options> {
    let declared = match &args.team_file {
        Some(path) => Some(agent::config::load_team(path, name)?),
        None => {
            tracing::warn!(
                "no --team-file: any assistant that announces itself for Strategy {name} votes (at weight 1)"
            );
            None
        }
    };
    let store = match &args.db {
        Some(url) => Some(agent::store::Store::connect(url).await?),
        None => None,
    };
    Ok(Options {
        declared,
        wait_for_voters: Duration::from_secs(args.wait_for_voters),
        store,
        api: ApiOptions {
            listen: args.listen,
            token: std::env::var(protocol::env::API_TOKEN).ok(),
            read_auth: args.api_read_auth,
            allowed_origins: args.api_allowed_origin.clone(),
        },
        json_lines: args.json,
        max_unpublished: args.max_unpublished,
        services: args.services,
    })
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
