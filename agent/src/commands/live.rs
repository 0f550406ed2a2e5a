//! `trading-agent run --local`: the whole team in one process on live Binance data: a warm-up of
//! recent candles from the REST API, then closed candles from the WebSocket streams as they come,
//! each decision printed as it is made.

use agent::config::TeamConfig;
use agent::engine::{EscalationsTimeOut, Session};
use agent::market::binance::{BinanceRest, MAINNET};
use agent::market::live::{live_feed, warm_up};
use agent::market::stream::MAINNET_WS;
use agent::store::Store;
use anyhow::{bail, Context};
use clap::Args;
use protocol::crd::Interval;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run the team in this process (the only mode of `run`; in a cluster the operator runs one role per pod).
    #[arg(long)]
    local: bool,
    /// Strategy manifest (default: the built-in sample).
    #[arg(
        long,
        value_name = "FILE",
        env = protocol::env::STRATEGY_FILE,
        requires = "policy_file"
    )]
    strategy_file: Option<PathBuf>,
    /// ConsensusPolicy manifest (default: the built-in sample).
    #[arg(
        long,
        value_name = "FILE",
        env = protocol::env::POLICY_FILE,
        requires = "strategy_file"
    )]
    policy_file: Option<PathBuf>,
    /// Symbols, comma-separated (default: the Strategy's).
    #[arg(long, value_delimiter = ',', env = "IA_SYMBOLS")]
    symbols: Vec<String>,
    /// Candle interval (default: the Strategy's).
    #[arg(long, env = "IA_INTERVAL")]
    interval: Option<Interval>,
    /// Candles of history to warm the indicators up with.
    #[arg(long, default_value_t = 200, env = "IA_WARMUP")]
    warmup: u32,
    /// Binance REST base URL.
    #[arg(long, value_name = "URL", default_value = MAINNET, env = "IA_BINANCE_URL")]
    rest_url: String,
    /// Binance WebSocket base URL.
    #[arg(long, value_name = "URL", default_value = MAINNET_WS, env = "IA_BINANCE_WS_URL")]
    ws_url: String,
    /// Stop after this many cycles (warm-up included).
    #[arg(long, env = "IA_MAX_CYCLES")]
    max_cycles: Option<u64>,
    /// Print each decision as one JSON line.
    #[arg(long, env = "IA_JSON")]
    json: bool,
    /// Directory for ia-agents.db.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "ia-agents-out",
        env = "IA_OUT"
    )]
    out: PathBuf,
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    if !args.local {
        bail!("`run` needs --local (the team in this process); in a cluster, apply the manifests and let the operator run it");
    }
    let mut team_config = match (&args.strategy_file, &args.policy_file) {
        (Some(s), Some(p)) => TeamConfig::load(s, p)?,
        _ => TeamConfig::builtin()?,
    };
    let mut patch = serde_json::Map::new();
    if !args.symbols.is_empty() {
        patch.insert("symbols".into(), json!(args.symbols));
    }
    if let Some(i) = args.interval {
        patch.insert("interval".into(), json!(i.as_str()));
    }
    team_config = team_config.with_overrides(serde_json::Value::Object(patch), json!({}))?;
    if team_config.strategy.spec.mode == protocol::crd::TradingMode::Live {
        // the one-process team paper-trades only; live orders go through the coordinator
        anyhow::bail!(
            "spec.mode is live: `run --local` paper-trades only; run the team with \
             `trading-agent coordinator` (or in a cluster) to trade live"
        );
    }
    let interval = team_config.strategy.spec.interval;
    let symbols = team_config.strategy.spec.symbols.clone();
    let rest = BinanceRest::new(&args.rest_url);
    let (series, to) = warm_up(&rest, &args.rest_url, &symbols, interval, args.warmup).await?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let store = Store::connect(&format!(
        "sqlite://{}",
        args.out.join("ia-agents.db").display()
    ))
    .await?;
    // fills and risk limits are told as in a cluster (the addresses from IA_NOTIFY_<NAME>)
    let notifier = notify::from_env(team_config.strategy.spec.notifications.as_ref())
        .context("spec.notifications")?;
    let opening_book = opening_book(&store, &team_config, &args.out).await?;
    let backtest = Session {
        max_cycles: args.max_cycles,
        opening_book,
        // the warm-up candles are history: they teach the indicators, never reach an order
        trade_from: Some(to),
        notifier,
        ..Session::new(team_config, series, interval.millis())
    };
    let (team, voters) = backtest.local_team()?;
    let (streaming, rx) = live_feed(&rest, &args.ws_url, &backtest.series, interval);
    let stopper = streaming.abort_handle();
    tokio::spawn(async move {
        agent::shutdown::stop_requested().await;
        eprintln!("stopping: finishing the current cycle");
        stopper.abort(); // the feed ends, the team flushes and reports
    });
    eprintln!(
        "live on {} ({interval}); decisions follow, Ctrl-C stops",
        symbols.join(", ")
    );
    let json_lines = args.json;
    let outcome = backtest
        .replay(
            Some(rx),
            agent::engine::ReplayTeam {
                transport: &team,
                escalations: &EscalationsTimeOut,
                voters,
            },
            Some(&store),
            |d| {
                if json_lines {
                    println!("{}", agent::coordination::publish::decision_line(d));
                } else {
                    println!(
                        "{} {} {} {} confidence {:.2} ({} rounds{}{})",
                        agent::backtest::report::utc(d.decided_at),
                        d.symbol,
                        d.action,
                        d.price,
                        d.confidence,
                        d.rounds.len(),
                        if d.escalated { ", escalated" } else { "" },
                        if d.vetoed { ", vetoed" } else { "" },
                    );
                }
            },
            |_, _| {},
        )
        .await?;
    streaming.abort();
    eprintln!(
        "{} cycles over {} candles; equity {:.2}; every decision is in {}",
        outcome.cycles,
        outcome.candles,
        outcome.figures.final_equity,
        store.name()
    );
    Ok(())
}

/// A restart goes on from the book it last wrote in `out` (none the first time).
async fn opening_book(
    store: &Store,
    team_config: &agent::config::TeamConfig,
    out: &std::path::Path,
) -> anyhow::Result<Option<agent::engine::OpeningBook>> {
    let name = team_config.strategy.metadata.name.as_deref();
    let book = agent::engine::OpeningBook::load(store, name.unwrap_or_default()).await?;
    if let Some(book) = &book {
        eprintln!(
            "resuming the book in {}: cash {}, {} position(s)",
            out.display(),
            book.cash,
            book.positions.len()
        );
    }
    Ok(book)
}
