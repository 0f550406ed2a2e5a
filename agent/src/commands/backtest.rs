//! `trading-agent backtest`: the whole team in one process over real candles, with a report.

use agent::backtest::report::{html_report, json_report, table, RunInfo};
use agent::config::TeamConfig;
use agent::engine::{Series, Session};
use agent::market::{bundled, file::parse_candles, read_candles, Candle};
use agent::store::Store;
use anyhow::{anyhow, bail, Context};
use chrono::{NaiveDate, NaiveTime};
use clap::Args;
use flate2::read::MultiGzDecoder;
use indicatif::{ProgressBar, ProgressStyle};
use protocol::crd::Interval;
use serde_json::{json, Map, Value};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// Strategy manifest (YAML) to run; default: the built-in sample (config/samples/strategy.yaml:
    /// BTCUSDT + ETHUSDT, 1h, paper).
    #[arg(
        long,
        value_name = "FILE",
        env = protocol::env::STRATEGY_FILE,
        requires = "policy_file"
    )]
    pub strategy_file: Option<PathBuf>,
    /// ConsensusPolicy manifest (YAML) the Strategy references; default: the built-in `balanced`.
    #[arg(
        long,
        value_name = "FILE",
        env = protocol::env::POLICY_FILE,
        requires = "strategy_file"
    )]
    pub policy_file: Option<PathBuf>,
    /// Symbols to trade, comma-separated (default: the Strategy's).
    #[arg(long, value_delimiter = ',', env = "IA_SYMBOLS")]
    pub symbols: Vec<String>,
    /// Candle interval (default: the data's, else the Strategy's), e.g. 1h or 1m.
    #[arg(long, env = "IA_INTERVAL")]
    pub interval: Option<Interval>,
    /// Candle file to replay instead of the bundled data, as `FILE` (one symbol) or `SYMBOL=FILE`;
    /// repeat for several symbols. Formats: OHLCV CSV with header or Binance kline CSV, optionally .gz.
    #[arg(
        long,
        value_name = "[SYMBOL=]FILE",
        env = "IA_DATA",
        value_delimiter = ','
    )]
    pub data: Vec<String>,
    /// First day to replay (UTC, YYYY-MM-DD, inclusive). Default: everything in --data files; for the
    /// bundled data, the last year of it (2020), unless --to is given.
    #[arg(long, value_name = "DATE", env = "IA_FROM")]
    pub from: Option<NaiveDate>,
    /// Last day to replay (UTC, YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DATE", env = "IA_TO")]
    pub to: Option<NaiveDate>,
}

#[derive(Args, Debug)]
pub struct BacktestArgs {
    #[command(flatten)]
    pub replay: ReplayArgs,
    /// Weighted share the winning action needs (ConsensusPolicy spec.threshold).
    #[arg(long, env = "IA_THRESHOLD")]
    threshold: Option<f64>,
    /// Share of voting weight that must answer (spec.quorum).
    #[arg(long, env = "IA_QUORUM")]
    quorum: Option<f64>,
    /// Rounds per cycle, analysis included (spec.maxRounds).
    #[arg(long, env = "IA_MAX_ROUNDS")]
    max_rounds: Option<u32>,
    /// Initial capital in the quote asset (Strategy spec.capital).
    #[arg(long, env = "IA_CAPITAL")]
    capital: Option<f64>,
    /// Fee per fill as a fraction of notional (spec.exchange.feeRate).
    #[arg(long, env = "IA_FEE_RATE")]
    fee_rate: Option<f64>,
    /// Slippage in basis points (spec.exchange.slippageBps).
    #[arg(long, env = "IA_SLIPPAGE_BPS")]
    slippage_bps: Option<f64>,
    /// Stop-loss as a fraction below entry (spec.risk.stopLoss).
    #[arg(long, env = "IA_STOP_LOSS")]
    stop_loss: Option<f64>,
    /// Take-profit as a fraction above entry (spec.risk.takeProfit).
    #[arg(long, env = "IA_TAKE_PROFIT")]
    take_profit: Option<f64>,
    /// Largest position as a fraction of equity (spec.risk.maxPositionFraction).
    #[arg(long, env = "IA_MAX_POSITION_FRACTION")]
    max_position_fraction: Option<f64>,
    /// Database for every decision, opinion, order and audit entry: sqlite://PATH or postgres://…
    /// (default: sqlite://OUT/ia-agents.db, replaced on each run).
    #[arg(long, value_name = "URL", env = protocol::env::DB, hide_env_values = true)]
    db: Option<String>,
    /// Directory for report.json, report.html and ia-agents.db.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "ia-agents-out",
        env = "IA_OUT"
    )]
    out: PathBuf,
    /// Ollama base URL: the reasoning roles (all voters but the risk manager) ask this model, falling
    /// back to their rules on timeouts, errors and invalid answers.
    #[arg(
        long,
        value_name = "URL",
        env = protocol::env::OLLAMA_URL,
        hide_env_values = true
    )]
    ollama_url: Option<String>,
    /// The Ollama model for --ollama-url.
    #[arg(long, default_value = "llama3.2", env = protocol::env::MODEL)]
    model: String,
    /// Seconds to wait for the model per opinion.
    #[arg(long, default_value_t = 20, env = protocol::env::MODEL_TIMEOUT)]
    model_timeout: u64,
    /// An ML ensemble saved by `trading-agent train`: the strategist adds its forecast to the regime.
    #[arg(long, value_name = "FILE", env = "IA_FORECASTER")]
    forecaster: Option<PathBuf>,
    /// Retrain the strategist's ML ensemble on the Strategy's learning schedule from the candles seen
    /// so far (starting from --forecaster's model, if any), logging how each new model compares with
    /// the previous one on the most recent candles and storing it in the `models` table.
    #[arg(long, env = "IA_RETRAIN")]
    retrain: bool,
    /// Dated headlines for the fundamental analyst: CSV with a `time,headline` header, time in ms
    /// since the epoch or RFC 3339; it reads the 24 hours up to each candle (without: it abstains).
    #[arg(long, value_name = "FILE", env = "IA_NEWS")]
    news: Option<PathBuf>,
    /// Print report.json on stdout instead of the table.
    #[arg(long, env = "IA_JSON")]
    json: bool,
}

impl BacktestArgs {
    fn overrides(&self) -> (Value, Value) {
        let mut strategy = Map::new();
        let mut policy = Map::new();
        let mut risk = Map::new();
        let mut exchange = Map::new();
        let put = |map: &mut Map<String, Value>, key: &str, value: Option<Value>| {
            if let Some(v) = value {
                map.insert(key.into(), v);
            }
        };
        put(&mut policy, "threshold", self.threshold.map(Value::from));
        put(&mut policy, "quorum", self.quorum.map(Value::from));
        put(&mut policy, "maxRounds", self.max_rounds.map(Value::from));
        put(&mut strategy, "capital", self.capital.map(Value::from));
        if !self.replay.symbols.is_empty() {
            strategy.insert("symbols".into(), json!(self.replay.symbols));
        }
        put(&mut risk, "stopLoss", self.stop_loss.map(Value::from));
        put(&mut risk, "takeProfit", self.take_profit.map(Value::from));
        put(
            &mut risk,
            "maxPositionFraction",
            self.max_position_fraction.map(Value::from),
        );
        put(&mut exchange, "feeRate", self.fee_rate.map(Value::from));
        put(
            &mut exchange,
            "slippageBps",
            self.slippage_bps.map(Value::from),
        );
        if !risk.is_empty() {
            strategy.insert("risk".into(), Value::Object(risk));
        }
        if !exchange.is_empty() {
            strategy.insert("exchange".into(), Value::Object(exchange));
        }
        (Value::Object(strategy), Value::Object(policy))
    }
}

/// The candle files to replay, per symbol: explicit `--data` or the bundled ones.
fn load_series(
    args: &ReplayArgs,
    symbols: &[String],
    interval: Interval,
) -> anyhow::Result<(Vec<Series>, Vec<String>)> {
    let mut series = Vec::new();
    let mut sources = Vec::new();
    if args.data.is_empty() {
        for symbol in symbols {
            let (name, bytes) = bundled::find(symbol, interval.as_str()).ok_or_else(|| {
                anyhow!(
                    "no bundled data for {symbol} {interval} (bundled: {}); pass --data FILE, or fetch it with `trading-agent data download --symbol {symbol} --interval {interval}`",
                    bundled::listing()
                )
            })?;
            let candles = parse_candles(MultiGzDecoder::new(bytes), Path::new(name))?;
            series.push(Series {
                symbol: symbol.clone(),
                candles,
            });
            sources.push(format!("{name} (bundled; {})", bundled::ATTRIBUTION));
        }
        return Ok((series, sources));
    }
    for spec in &args.data {
        let (symbol, path) = match spec.split_once('=') {
            Some((symbol, path)) => (symbol.to_string(), PathBuf::from(path)),
            None if symbols.len() == 1 => (symbols[0].clone(), PathBuf::from(spec)),
            None => bail!(
                "--data {spec}: say which symbol it holds (--data SYMBOL=FILE) since the Strategy trades {}",
                symbols.join(", ")
            ),
        };
        if !symbols.contains(&symbol) {
            bail!(
                "--data {spec}: {symbol} is not one of the symbols traded ({})",
                symbols.join(", ")
            );
        }
        let candles = read_candles(&path)?;
        sources.push(path.display().to_string());
        series.push(Series { symbol, candles });
    }
    for symbol in symbols {
        if !series.iter().any(|s| &s.symbol == symbol) {
            bail!("--data: no file for {symbol}; pass one --data {symbol}=FILE per symbol");
        }
    }
    Ok((series, sources))
}

/// The interval of a candle series: the most common gap between consecutive candles.
fn spacing(candles: &[Candle]) -> Option<i64> {
    let mut gaps: Vec<i64> = candles
        .windows(2)
        .map(|w| w[1].open_time - w[0].open_time)
        .take(1000)
        .collect();
    gaps.sort_unstable();
    gaps.get(gaps.len() / 2).copied()
}

fn within(candles: Vec<Candle>, from: Option<i64>, to: Option<i64>) -> Vec<Candle> {
    candles
        .into_iter()
        .filter(|c| from.is_none_or(|f| c.open_time >= f) && to.is_none_or(|t| c.open_time < t))
        .collect()
}

const YEAR_MS: i64 = 366 * 86_400_000;

/// How much history before `--from` a replay keeps for warm-up and learning.
pub const HISTORY_MS: i64 = 365 * 86_400_000;

fn day_start(date: NaiveDate) -> i64 {
    date.and_time(NaiveTime::MIN).and_utc().timestamp_millis()
}

/// A replay ready to run, and what it is about.
pub struct Prepared {
    pub backtest: Session,
    pub info: RunInfo,
}

/// Loads the data for `team_config`'s symbols, settles the interval and the date range.
pub fn prepare(args: &ReplayArgs, mut team_config: TeamConfig) -> anyhow::Result<Prepared> {
    if let (Some(from), Some(to)) = (args.from, args.to) {
        if to < from {
            bail!("--from {from} is after --to {to}: the date range is empty");
        }
    }
    let symbols = team_config.strategy.spec.symbols.clone();
    // the interval: explicit, else the data's (checked below), else the Strategy's
    let wanted = args.interval.unwrap_or(team_config.strategy.spec.interval);
    let (mut series, sources) = load_series(args, &symbols, wanted)?;
    let interval = match series.first().and_then(|s| spacing(&s.candles)) {
        Some(ms) => Interval::ALL
            .into_iter()
            .find(|i| i.millis() == ms)
            .ok_or_else(|| {
                anyhow!(
                    "{}: candles are {ms} ms apart, which is no Binance interval",
                    sources[0]
                )
            })?,
        None => wanted,
    };
    if args.interval.is_some_and(|i| i != interval) {
        bail!(
            "--interval {wanted}: {} holds {interval} candles",
            sources[0]
        );
    }
    for (s, source) in series.iter().zip(&sources) {
        if spacing(&s.candles).is_some_and(|ms| ms != interval.millis()) {
            bail!("{source}: its candles are not {interval} apart like the others'");
        }
    }
    team_config.strategy.spec.interval = interval;
    let (mut from, to) = (
        args.from.map(day_start),
        args.to.map(|d| day_start(d) + 86_400_000),
    );
    if args.data.is_empty() && from.is_none() && to.is_none() {
        // the bundled data spans years; a first run replays its last year
        let last = series
            .iter()
            .filter_map(|s| s.candles.last())
            .map(|c| c.open_time)
            .max();
        from = last.map(|t| t + interval.millis() - YEAR_MS);
    }
    for s in &mut series {
        let first = s.candles.first().map(|c| c.open_time);
        let last = s.candles.last().map(|c| c.open_time);
        // candles before --from are history: the team warms up and learns on them, never trades
        let history_from = from.map(|f| f - HISTORY_MS);
        s.candles = within(std::mem::take(&mut s.candles), history_from, to);
        if !s
            .candles
            .iter()
            .any(|c| from.is_none_or(|f| c.open_time >= f))
        {
            bail!(
                "no {} candles between {} and {} (the data covers {} to {})",
                s.symbol,
                args.from.map_or("the start".into(), |d| d.to_string()),
                args.to.map_or("the end".into(), |d| d.to_string()),
                first.map_or("nothing".into(), agent::backtest::report::utc),
                last.map_or("nothing".into(), agent::backtest::report::utc),
            );
        }
    }
    let spec = &team_config.strategy.spec;
    // the sample's fees and slippage (ExchangeSpec's defaults) when the Strategy names no exchange
    let exchange = spec.exchange.clone().unwrap_or_default();
    let info = RunInfo {
        strategy: team_config
            .strategy
            .metadata
            .name
            .clone()
            .unwrap_or_default(),
        symbols: symbols.clone(),
        interval: interval.to_string(),
        data: sources,
        capital: spec.capital,
        fee_rate: exchange.fee_rate,
        slippage_bps: exchange.slippage_bps,
        policy: serde_json::to_value(&team_config.policy.spec)?,
        wall_seconds: 0.0,
    };
    Ok(Prepared {
        backtest: Session {
            trade_from: from,
            ..Session::new(team_config, series, interval.millis())
        },
        info,
    })
}

/// The strategist's forecaster (`--forecaster`, `--retrain`), the reasoning model
/// (`--ollama-url`) and the dated headlines (`--news`) the flags ask for.
fn with_models(backtest: &mut Session, args: &BacktestArgs) -> anyhow::Result<()> {
    let initial = args
        .forecaster
        .as_deref()
        .map(agent::ml::Ensemble::load)
        .transpose()?;
    if args.retrain {
        let retrainer = std::sync::Arc::new(agent::ml::Retrainer::new(
            initial,
            agent::ml::Training::default(),
            12,
            24 * 180,
        ));
        backtest.forecaster = Some(retrainer.clone());
        backtest.retrainer = Some(retrainer);
    } else if let Some(model) = initial {
        backtest.forecaster = Some(std::sync::Arc::new(model));
    }
    if let Some(url) = &args.ollama_url {
        backtest.llm = Some(
            agent::llm::LlmReasoner::new(
                url,
                &args.model,
                0.2,
                std::time::Duration::from_secs(args.model_timeout),
                4,
            )
            .map_err(|e| anyhow!("--ollama-url: {e}"))?,
        );
    }
    if let Some(path) = &args.news {
        backtest.news = Some(std::sync::Arc::new(
            agent::roles::fundamental::DatedHeadlines::load(path)
                .map_err(|e| anyhow!("--news: {e}"))?,
        ));
    }
    Ok(())
}

/// A progress bar over `total` candles when stderr is a terminal.
fn progress_bar(total: u64) -> Option<ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} replaying [{bar:40}] {pos}/{len} candles ({per_sec}, {eta} left)",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar
    })
}

/// The record's store: `--db`, or our own database file in `--out`, written under a temporary
/// name without a journal (each page once) that takes its name only when the run completed: a run
/// that dies leaves `ia-agents.db.partial`, never a half-written `ia-agents.db`. With the file,
/// the (partial, final) paths.
async fn open_store(args: &BacktestArgs) -> anyhow::Result<(Store, Option<(PathBuf, PathBuf)>)> {
    if let Some(url) = &args.db {
        return Ok((Store::connect(url).await?, None));
    }
    let path = args.out.join("ia-agents.db");
    let partial = args.out.join("ia-agents.db.partial");
    for stale in ["", "-wal", "-shm", ".partial"] {
        let file = PathBuf::from(format!("{}{stale}", path.display()));
        if file.exists() {
            std::fs::remove_file(&file).with_context(|| format!("replacing {}", file.display()))?;
        }
    }
    Ok((
        Store::create_output_file(&partial).await?,
        Some((partial, path)),
    ))
}

pub async fn run(args: BacktestArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let base = match (&args.replay.strategy_file, &args.replay.policy_file) {
        (Some(s), Some(p)) => TeamConfig::load(s, p)?,
        _ => TeamConfig::builtin()?,
    };
    let (strategy_patch, policy_patch) = args.overrides();
    let team_config = base.with_overrides(strategy_patch, policy_patch)?;
    let Prepared { mut backtest, info } = prepare(&args.replay, team_config)?;
    with_models(&mut backtest, &args)?;
    let total: u64 = backtest.series.iter().map(|s| s.candles.len() as u64).sum();
    let bar = progress_bar(total);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let (store, output_file) = open_store(&args).await?;
    let mut last_line = 0u64;
    let outcome = agent::backtest::run(&backtest, Some(&store), |done, total| match &bar {
        Some(bar) => bar.set_position(done),
        None => {
            if done * 10 / total.max(1) > last_line || done == total {
                last_line = done * 10 / total.max(1);
                eprintln!("replayed {done}/{total} candles");
            }
        }
    })
    .await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    store.close().await;
    let db_name = match output_file {
        Some((partial, path)) => {
            std::fs::rename(&partial, &path)
                .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
            format!("sqlite://{}", path.display())
        }
        None => store.name().to_string(),
    };
    let info = RunInfo {
        wall_seconds: started.elapsed().as_secs_f64(),
        ..info
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let report = json_report(&outcome, &info);
    let json_path = args.out.join("report.json");
    std::fs::write(&json_path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    let html_path = args.out.join("report.html");
    std::fs::write(&html_path, html_report(&outcome, &info))
        .with_context(|| format!("writing {}", html_path.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&outcome, &info));
        println!(
            "\nwrote {}, {} and {} in {:.2} s",
            json_path.display(),
            html_path.display(),
            db_name,
            info.wall_seconds
        );
    }
    Ok(())
}
