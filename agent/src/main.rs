//! `trading-agent`: runs one assistant role, the coordinator, or the whole team locally.

mod commands;

/// mimalloc instead of glibc's allocator: a cycle allocates many small, short-lived strings and
/// maps (opinions, their evidence, the records), where glibc's free lists cost ~40% of a backtest.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The ia-agents agent. In a cluster the operator runs it once per pod with one role; outside a
/// cluster it reads the same Strategy and ConsensusPolicy manifests from files.
#[derive(Parser, Debug)]
#[command(name = "trading-agent", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a Strategy and ConsensusPolicy manifest pair exactly as the cluster would (schema, CEL
    /// rules, the policy reference) and print the effective configuration, defaults filled in, as JSON.
    CheckConfig {
        /// YAML file holding one Strategy.
        #[arg(long, value_name = "FILE", env = protocol::env::STRATEGY_FILE)]
        strategy_file: PathBuf,
        /// YAML file holding the ConsensusPolicy the Strategy references.
        #[arg(long, value_name = "FILE", env = protocol::env::POLICY_FILE)]
        policy_file: PathBuf,
    },
    /// Replay real candles through the whole team in one process (coordinator, five voters, executor,
    /// paper exchange) and report the result against buy-and-hold, SMA crossover and MACD.
    /// With no options it runs the built-in sample Strategy on the bundled BTCUSDT and ETHUSDT data.
    Backtest(Box<commands::backtest::BacktestArgs>),
    /// Walk the team forward out of sample: each window (a year by default) of each symbol is traded
    /// with fresh capital after a year of history it only learns from, against buy-and-hold, SMA
    /// crossover, MACD and each voter alone; prints a table and writes evaluate.json and
    /// evaluate.html with the probabilistic and deflated Sharpe ratios.
    Evaluate(Box<commands::evaluate::EvaluateArgs>),
    /// Write a nats-server configuration for a team on a bare machine: one nkey identity per
    /// component (coordinator, executor, auditor, operator, each voting role), each allowed only
    /// its own subjects, and one seed file per identity for --nats-nkey-file.
    NatsConfig(commands::nats_config::NatsConfigArgs),
    /// Market data for users with a network.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Work with the auditor's hash-chained log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Run the whole team in this process on live Binance data (`run --local`): warm up from the
    /// REST API, then decide on each closed candle from the WebSocket streams, printing decisions.
    Run(Box<commands::live::RunArgs>),
    /// Serve one role on NATS: heartbeat into the presence bucket and answer analyze requests
    /// (replicas of one assistant share them through a queue group).
    Assistant(Box<commands::team::AssistantArgs>),
    /// Run consensus cycles for a Strategy over NATS: ask the present voters round by round, apply
    /// the ConsensusPolicy, publish each Decision exactly once to the JetStream decision stream.
    Coordinator(Box<commands::team::CoordinatorArgs>),
    /// Train the strategist's ML ensemble (direction, magnitude, confidence, risk) on historical
    /// candles, print its walk-forward evaluation, and save it.
    Train(commands::train::TrainArgs),
    /// Compute every technical indicator for every candle of a file and write them as CSV
    /// (header: open_time,close,sma_20,ema_20,rsi_14,macd,macd_signal,macd_hist,bb_upper,bb_middle,
    /// bb_lower,stoch_k,stoch_d,willr_14,cci_20,adx_14,atr_14,obv; empty cells during warm-up).
    Indicators {
        /// Candle file: CSV with header open_time,open,high,low,close,volume (ms since the epoch, UTC)
        /// or Binance's 12-column kline CSV; `.gz` files are decompressed.
        #[arg(long, value_name = "FILE", env = "IA_INPUT")]
        input: PathBuf,
        /// Where to write the CSV (default: standard output).
        #[arg(long, value_name = "FILE", env = "IA_OUTPUT")]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Fetch real klines from Binance's public REST API into DIR/SYMBOL-INTERVAL.csv (resumable,
    /// rate-limit aware); the file feeds `backtest --data` and `indicators --input`.
    Download(commands::data::DownloadArgs),
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Check that no audit row was edited, inserted or deleted, that every decision and order row
    /// is what its audit entry committed to, and (with --expect-head, or the anchor read from NATS
    /// with --nats) that the chain still reaches its anchor; exits non-zero naming the first row at
    /// fault. The chain's key comes from IA_AUDIT_KEY.
    Verify {
        /// The database: sqlite://PATH or postgres://USER@HOST/DB (a password belongs in the env var).
        #[arg(long, value_name = "URL", env = protocol::env::DB, hide_env_values = true)]
        db: String,
        /// The chain head kept outside the database (report.json's audit.head, the Strategy's
        /// status.audit.head, or the head a coordinator logged): the chain must still contain it.
        #[arg(long, value_name = "HASH")]
        expect_head: Option<String>,
        #[command(flatten)]
        anchor: commands::audit::AnchorArgs,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// For the team's replays (backtest, run --local): the team decides on the main thread, and one
/// worker thread writes the record to the store meanwhile (`engine::writer`).
fn replay_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("ia-store-writer")
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Logs on stderr: human-readable, or JSON lines with IA_LOG_FORMAT=json (clusters); level from
/// RUST_LOG (default info).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var(protocol::env::LOG_FORMAT).is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    init_logging();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::CheckConfig {
            strategy_file,
            policy_file,
        } => {
            let team = agent::config::TeamConfig::load(&strategy_file, &policy_file)?;
            let effective = serde_json::json!({
                "strategy": team.strategy,
                "consensusPolicy": team.policy,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&effective).context("printing the configuration")?
            );
        }
        Command::Backtest(args) => replay_runtime()?.block_on(commands::backtest::run(*args))?,
        Command::Evaluate(args) => commands::evaluate::run(*args)?,
        Command::NatsConfig(args) => commands::nats_config::run(args)?,
        Command::Run(args) => replay_runtime()?.block_on(stoppable(commands::live::run(*args)))?,
        Command::Assistant(args) => {
            runtime()?.block_on(stoppable(commands::team::assistant(*args)))?
        }
        Command::Coordinator(args) => {
            runtime()?.block_on(stoppable(commands::team::coordinator(*args)))?
        }
        Command::Train(args) => commands::train::train(args)?,
        Command::Data {
            command: DataCommand::Download(args),
        } => runtime()?.block_on(commands::data::download(args))?,
        Command::Audit {
            command:
                AuditCommand::Verify {
                    db,
                    expect_head,
                    anchor,
                },
        } => runtime()?.block_on(commands::audit::verify(&db, expect_head, anchor))?,
        Command::Indicators { input, output } => write_indicators(&input, output.as_deref())?,
    }
    Ok(())
}

/// Runs a long-lived command until it ends or the process is asked to stop (SIGTERM, Ctrl-C): with
/// nothing in flight it stops at once (connecting, retrying, waiting for voters, holding); work in
/// flight gets [`agent::shutdown::GRACE`] to finish and write down what it has.
async fn stoppable(
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    agent::shutdown::listen();
    let result = until_stopped(work).await;
    // a stop for a reason the process cannot get past (`agent::shutdown::fail`) is an error
    match (agent::shutdown::failure(), result) {
        (Some(reason), Ok(())) => Err(anyhow::anyhow!(reason)),
        (Some(reason), Err(error)) => Err(error.context(reason)),
        (None, result) => result,
    }
}

/// Runs `work` until it ends, or until a stop is asked and it is done with what it had in flight
/// (at most [`agent::shutdown::GRACE`]).
async fn until_stopped(
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let mut work = std::pin::pin!(work);
    tokio::select! {
        result = &mut work => return result,
        () = agent::shutdown::stop_requested() => {}
    }
    if !agent::shutdown::is_busy() {
        tracing::info!("stopped: nothing was in flight");
        return Ok(());
    }
    let grace = agent::shutdown::GRACE;
    match tokio::time::timeout(grace, work).await {
        Ok(result) => result,
        Err(_) => anyhow::bail!(
            "still busy {} s after the stop request: stopping with work unfinished",
            grace.as_secs()
        ),
    }
}

fn write_indicators(input: &Path, output: Option<&Path>) -> anyhow::Result<()> {
    let candles = agent::market::read_candles(input)?;
    let mut out: Box<dyn Write> = match output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let name = output.map_or("standard output".into(), |p| p.display().to_string());
    agent::indicators::write_csv(&candles, &mut out)
        .and_then(|()| out.flush())
        .with_context(|| format!("writing {name}"))?;
    eprintln!(
        "{} candles from {} -> {name}",
        candles.len(),
        input.display()
    );
    Ok(())
}
