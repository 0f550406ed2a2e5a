//! `trading-agent evaluate`: parses the options, loads the candles, runs the windows in parallel
//! with a progress bar and writes the reports (the work itself is [`agent::evaluation`]).

use agent::config::TeamConfig;
use agent::engine::{default_team, Series};
use agent::evaluation::report::{html_report, json_report, summarise, table};
use agent::evaluation::windows::WindowLength;
use agent::evaluation::Evaluation;
use agent::market::{bundled, file::parse_candles, read_candles, Candle};
use anyhow::{anyhow, bail, Context};
use chrono::{NaiveDate, NaiveTime};
use clap::Args;
use flate2::read::MultiGzDecoder;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Candles of one symbol, `SYMBOL=FILE`; repeat for more symbols, and for several files of one
    /// symbol (joined in time order). Default: every bundled hourly series.
    #[arg(long, value_name = "SYMBOL=FILE")]
    data: Vec<String>,
    /// Window length: year, half, quarter or <N>d (N ≥ 28).
    #[arg(long, default_value = "year", value_name = "LENGTH")]
    windows: WindowLength,
    /// First day scored (UTC, YYYY-MM-DD; earlier candles are still history).
    #[arg(long, value_name = "DATE")]
    from: Option<NaiveDate>,
    /// Last day scored (UTC, YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DATE")]
    to: Option<NaiveDate>,
    /// Strategy manifest (YAML); default: the built-in sample.
    #[arg(long, value_name = "FILE", requires = "policy_file")]
    strategy_file: Option<PathBuf>,
    /// ConsensusPolicy manifest (YAML); default: the built-in `balanced`.
    #[arg(long, value_name = "FILE", requires = "strategy_file")]
    policy_file: Option<PathBuf>,
    /// How many configurations were tried before this one (for the deflated Sharpe ratio).
    #[arg(long, default_value_t = 1, value_name = "N")]
    trials: u32,
    /// Worker threads (default: every core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Dated headlines for the fundamental analyst (CSV `time,headline`), as `backtest --news`.
    #[arg(long, value_name = "FILE")]
    news: Option<PathBuf>,
    /// Directory for evaluate.json and evaluate.html.
    #[arg(long, default_value = "ia-agents-eval", value_name = "DIR")]
    out: PathBuf,
}

fn day_start(date: NaiveDate) -> i64 {
    date.and_time(NaiveTime::MIN).and_utc().timestamp_millis()
}

/// The candle series to evaluate, one per symbol, and where each came from.
fn load(args: &EvaluateArgs) -> anyhow::Result<(Vec<Series>, Vec<String>)> {
    let mut by_symbol: BTreeMap<String, Vec<Candle>> = BTreeMap::new();
    let mut sources = Vec::new();
    if args.data.is_empty() {
        for (symbol, interval, name, bytes) in bundled::BUNDLED {
            if interval == "1h" {
                let candles = parse_candles(MultiGzDecoder::new(bytes), Path::new(name))?;
                by_symbol
                    .entry(symbol.to_string())
                    .or_default()
                    .extend(candles);
                sources.push(format!("{name} (bundled)"));
            }
        }
    }
    for spec in &args.data {
        let (symbol, path) = spec.split_once('=').ok_or_else(|| {
            anyhow!("--data {spec}: say which symbol the file holds, as --data SYMBOL=FILE")
        })?;
        if symbol.is_empty() || !symbol.chars().all(|c| c.is_ascii_alphanumeric()) {
            bail!("--data {spec}: {symbol:?} is not a symbol such as BTCUSDT");
        }
        let candles = read_candles(Path::new(path))?;
        by_symbol
            .entry(symbol.to_string())
            .or_default()
            .extend(candles);
        sources.push(format!("{symbol}={path}"));
    }
    let series = by_symbol
        .into_iter()
        .map(|(symbol, mut candles)| {
            candles.sort_by_key(|c| c.open_time);
            candles.dedup_by_key(|c| c.open_time);
            Series { symbol, candles }
        })
        .collect();
    Ok((series, sources))
}

/// The common spacing of the series' candles.
fn interval_ms(series: &[Series]) -> anyhow::Result<i64> {
    let mut spacing = None;
    for s in series {
        let mut gaps: Vec<i64> = s
            .candles
            .windows(2)
            .map(|w| w[1].open_time - w[0].open_time)
            .take(1000)
            .collect();
        gaps.sort_unstable();
        let Some(gap) = gaps.get(gaps.len() / 2).copied() else {
            bail!("{}: fewer than two candles", s.symbol);
        };
        match spacing {
            None => spacing = Some(gap),
            Some(other) if other != gap => bail!(
                "{}: candles {gap} ms apart, the other series' are {other} ms apart",
                s.symbol
            ),
            Some(_) => {}
        }
    }
    spacing.ok_or_else(|| anyhow!("no candles to evaluate"))
}

pub fn run(args: EvaluateArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    if let (Some(from), Some(to)) = (args.from, args.to) {
        if to < from {
            bail!("--from {from} is after --to {to}: the date range is empty");
        }
    }
    let config = match (&args.strategy_file, &args.policy_file) {
        (Some(s), Some(p)) => TeamConfig::load(s, p)?,
        _ => TeamConfig::builtin()?,
    };
    let (series, sources) = load(&args)?;
    let interval_ms = interval_ms(&series)?;
    let news = args
        .news
        .as_deref()
        .map(agent::roles::fundamental::DatedHeadlines::load)
        .transpose()
        .map_err(|e| anyhow!("--news: {e}"))?
        .map(std::sync::Arc::new);
    let evaluation = Evaluation {
        news,
        config,
        team: default_team(),
        series,
        interval_ms,
        length: args.windows,
        from: args.from.map(day_start),
        to: args.to.map(|d| day_start(d) + 86_400_000),
    };
    let jobs = evaluation.jobs();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(jobs.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} evaluating [{bar:40}] {pos}/{len} windows ({eta} left)",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    let windows = evaluation.run(&jobs, threads, || bar.inc(1))?;
    bar.finish_and_clear();
    let summary = summarise(&windows, args.trials);
    let run = serde_json::json!({
        "strategy": evaluation.config.strategy.metadata.name,
        "policy": evaluation.config.policy.spec,
        "data": sources,
        "windows": args.windows.to_string(),
        "history_days": agent::evaluation::HISTORY_MS / 86_400_000,
        "trials": args.trials,
        "threads": threads,
        "wall_seconds": started.elapsed().as_secs_f64(),
    });
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let json_path = args.out.join("evaluate.json");
    let report = json_report(&windows, &summary, run.clone());
    std::fs::write(&json_path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    let html_path = args.out.join("evaluate.html");
    std::fs::write(&html_path, html_report(&windows, &summary, &run))
        .with_context(|| format!("writing {}", html_path.display()))?;
    print!("{}", table(&windows, &summary));
    println!(
        "\nwrote {} and {} in {:.2} s ({} windows on {threads} threads)",
        json_path.display(),
        html_path.display(),
        started.elapsed().as_secs_f64(),
        windows.len()
    );
    Ok(())
}
