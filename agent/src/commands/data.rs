//! `trading-agent data download`: real klines from Binance's public REST API into a local CSV cache
//! that `backtest --data` and `indicators --input` read. Resumable: a second run continues after the
//! last candle on disk; every page is appended as it arrives, so an interrupted download loses nothing.

use agent::market::binance::{BinanceRest, MAINNET};
use agent::market::file::OHLCV_HEADER;
use agent::market::read_candles;
use anyhow::{bail, Context};
use clap::Args;
use protocol::crd::Interval;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DownloadArgs {
    /// Symbol, as Binance spells it (BTCUSDT).
    #[arg(long, env = "IA_SYMBOL")]
    symbol: String,
    /// Candle interval (1m, 5m, 1h, 1d, ...).
    #[arg(long, default_value = "1h", env = "IA_INTERVAL")]
    interval: Interval,
    /// How many days back from now.
    #[arg(long, default_value_t = 365, env = "IA_DAYS")]
    days: u32,
    /// Cache directory; the file is DIR/SYMBOL-INTERVAL.csv.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "ia-agents-data",
        env = "IA_DATA_DIR"
    )]
    dir: PathBuf,
    /// Binance REST base URL (mainnet by default; the spot testnet or a mirror also work).
    #[arg(long, value_name = "URL", default_value = MAINNET, env = "IA_BINANCE_URL")]
    base_url: String,
}

pub async fn download(args: DownloadArgs) -> anyhow::Result<()> {
    if args.days == 0 {
        bail!("--days must be at least 1");
    }
    let symbol = args.symbol.trim().to_ascii_uppercase();
    if symbol.is_empty() || !symbol.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!(
            "--symbol {:?}: expected a Binance symbol such as BTCUSDT",
            args.symbol
        );
    }
    let interval_ms = args.interval.millis();
    let now = chrono::Utc::now().timestamp_millis();
    let to = now - now.rem_euclid(interval_ms);
    let mut from = to - i64::from(args.days) * 86_400_000;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let path = args.dir.join(format!("{symbol}-{}.csv", args.interval));
    let existing = path.exists()
        && std::fs::metadata(&path)
            .map(|m| m.len() > 0)
            .unwrap_or(false);
    if existing {
        let candles = read_candles(&path)?;
        if let Some(last) = candles.last() {
            from = from.max(last.open_time + interval_ms);
            eprintln!(
                "{}: {} candles on disk, resuming after {}",
                path.display(),
                candles.len(),
                agent::backtest::report::utc(last.open_time)
            );
        }
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    if !existing {
        writeln!(file, "{}", OHLCV_HEADER.join(","))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let client = BinanceRest::new(&args.base_url);
    let mut fetched = 0u64;
    let total = client
        .klines_range(
            &symbol,
            interval_ms,
            args.interval.as_str(),
            from,
            to,
            |page| {
                for c in page {
                    writeln!(
                        file,
                        "{},{},{},{},{},{}",
                        c.open_time, c.open, c.high, c.low, c.close, c.volume
                    )?;
                }
                file.flush()?;
                fetched += page.len() as u64;
                if let Some(last) = page.last() {
                    eprintln!(
                        "{symbol} {}: {fetched} candles, up to {}",
                        args.interval,
                        agent::backtest::report::utc(last.open_time)
                    );
                }
                Ok(())
            },
        )
        .await
        .with_context(|| {
            format!(
                "downloading {symbol} {} into {}",
                args.interval,
                path.display()
            )
        })?;
    println!(
        "{}: {total} new candles ({symbol} {}, up to {})",
        path.display(),
        args.interval,
        agent::backtest::report::utc(to - interval_ms)
    );
    Ok(())
}
