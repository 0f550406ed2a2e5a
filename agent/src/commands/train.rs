//! `trading-agent train`: the ML ensemble on historical candles, evaluated walk-forward, saved for
//! the strategist (`backtest --forecaster FILE`).

use agent::market::{bundled, file::parse_candles, read_candles};
use agent::ml::{walk_forward, Dataset, Ensemble, Training};
use anyhow::{anyhow, bail, Context};
use clap::Args;
use flate2::read::MultiGzDecoder;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Symbol of the bundled data to train on (ignored with --data).
    #[arg(long, default_value = "BTCUSDT", env = "IA_SYMBOL")]
    symbol: String,
    /// Candle file to train on instead of the bundled data.
    #[arg(long, value_name = "FILE", env = "IA_DATA")]
    data: Option<PathBuf>,
    /// First day to train on (UTC, YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DATE")]
    from: Option<chrono::NaiveDate>,
    /// Last day to train on (UTC, YYYY-MM-DD, inclusive): keep it before the period a backtest of
    /// the model scores (`backtest --from`), or the score sees what the model learned from.
    #[arg(long, value_name = "DATE")]
    to: Option<chrono::NaiveDate>,
    /// Candles ahead the labels look.
    #[arg(long, default_value_t = 12, env = "IA_HORIZON")]
    horizon: usize,
    /// Walk-forward folds.
    #[arg(long, default_value_t = 5, env = "IA_FOLDS")]
    folds: usize,
    /// Trees per forest.
    #[arg(long, default_value_t = 40)]
    trees: u16,
    /// Depth limit of each tree.
    #[arg(long, default_value_t = 8)]
    max_depth: u16,
    /// Where to save the model trained on all the data.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "ia-agents-out/model.json",
        env = "IA_MODEL_FILE"
    )]
    out: PathBuf,
}

pub fn train(args: TrainArgs) -> anyhow::Result<()> {
    if args.horizon == 0 {
        bail!("--horizon must be at least 1 candle");
    }
    let candles = match &args.data {
        Some(path) => read_candles(path)?,
        None => {
            let (name, bytes) = bundled::find(&args.symbol, "1h").ok_or_else(|| {
                anyhow!(
                    "no bundled data for {} (bundled: {}); pass --data FILE",
                    args.symbol,
                    bundled::listing()
                )
            })?;
            parse_candles(MultiGzDecoder::new(bytes), Path::new(name))?
        }
    };
    let day = |d: chrono::NaiveDate| {
        d.and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis()
    };
    let (from, to) = (args.from.map(day), args.to.map(|d| day(d) + 86_400_000));
    if let (Some(f), Some(t)) = (from, to) {
        if t <= f {
            bail!("--from is after --to: the training range is empty");
        }
    }
    let candles: Vec<_> = candles
        .into_iter()
        .filter(|c| from.is_none_or(|f| c.open_time >= f) && to.is_none_or(|t| c.open_time < t))
        .collect();
    if candles.is_empty() {
        bail!("no candles between --from and --to to train on");
    }
    let ds = Dataset::from_candles(&candles, args.horizon);
    let training = Training {
        trees: args.trees,
        max_depth: args.max_depth,
        seed: 42,
    };
    eprintln!(
        "{} samples from {} candles; walk-forward over {} folds",
        ds.len(),
        candles.len(),
        args.folds
    );
    println!(
        "{:>6} {:>7} {:>6} {:>9} {:>9} {:>7} {:>14} {:>9}",
        "fold", "train", "test", "accuracy", "baseline", "brier", "magnitude MAE", "risk MAE"
    );
    // purged: a training label looks `horizon` candles ahead, into the next fold
    for (k, f) in walk_forward(&ds, args.folds, args.horizon, training)?
        .iter()
        .enumerate()
    {
        println!(
            "{:>6} {:>7} {:>6} {:>8.1}% {:>8.1}% {:>7.4} {:>13.3}% {:>8.3}%",
            k + 1,
            f.train,
            f.test,
            f.accuracy * 100.0,
            f.baseline * 100.0,
            f.brier,
            f.magnitude_mae,
            f.risk_mae
        );
    }
    let mut model = Ensemble::train(&ds, training)?;
    model.horizon = args.horizon;
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    model.save(&args.out)?;
    println!(
        "saved the ensemble trained on all {} samples to {}",
        ds.len(),
        args.out.display()
    );
    Ok(())
}
