//! Nanoseconds per candle of each streaming indicator and of all of them together, and opinions per
//! second of the deterministic technical analyst, over 1M candles made of the bundled real BTCUSDT
//! hourly series repeated end to end (prices rescaled at each seam so the series stays continuous).
//!
//! `cargo bench -p ia-agent --bench indicators`; TA-Lib's batch figure for the same candles comes from
//! `scripts/bench-indicators.sh`, which runs both.

// criterion's macros generate public functions without docs
#![allow(missing_docs)]

use agent::indicators::{
    Adx, Atr, Bollinger, Cci, Ema, IndicatorSet, Macd, Obv, Rsi, Sma, Stochastic, WilliamsR,
};
use agent::market::{read_candles, Candle};
use agent::roles::technical::TechnicalAnalyst;
use agent::roles::Analyst;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use protocol::messages::{MarketSnapshot, PortfolioContext, RoundRequest};
use std::hint::black_box;
use std::path::Path;

const CANDLES: usize = 1_000_000;

/// 1M continuous candles from the bundled real series.
pub fn million_candles() -> Vec<Candle> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/BTCUSDT-1h.csv.gz");
    let real = read_candles(&path).expect("bundled data");
    let mut out = Vec::with_capacity(CANDLES);
    let mut scale = 1.0;
    let mut t = 0;
    while out.len() < CANDLES {
        for c in &real {
            if out.len() == CANDLES {
                break;
            }
            out.push(Candle {
                open_time: t,
                open: c.open * scale,
                high: c.high * scale,
                low: c.low * scale,
                close: c.close * scale,
                volume: c.volume,
            });
            t += 3_600_000;
        }
        scale *= real[0].open / real[real.len() - 1].close;
    }
    out
}

fn indicators(c: &mut Criterion) {
    let candles = million_candles();
    let mut group = c.benchmark_group("indicator_per_candle");
    group.throughput(Throughput::Elements(candles.len() as u64));
    group.sample_size(10);
    macro_rules! bench {
        ($name:expr, $make:expr, |$ind:ident, $c:ident| $update:expr) => {
            group.bench_function(BenchmarkId::from_parameter($name), |b| {
                b.iter(|| {
                    let mut $ind = $make;
                    for $c in &candles {
                        black_box($update);
                    }
                })
            });
        };
    }
    bench!("sma_20", Sma::new(20), |i, c| i.update(c.close));
    bench!("ema_20", Ema::new(20), |i, c| i.update(c.close));
    bench!("rsi_14", Rsi::new(14), |i, c| i.update(c.close));
    bench!("macd_12_26_9", Macd::new(12, 26, 9), |i, c| i
        .update(c.close));
    bench!("bbands_20_2", Bollinger::new(20, 2.0), |i, c| i
        .update(c.close));
    bench!("stoch_14_3_3", Stochastic::new(14, 3, 3), |i, c| i
        .update(c.high, c.low, c.close));
    bench!("willr_14", WilliamsR::new(14), |i, c| i
        .update(c.high, c.low, c.close));
    bench!("cci_20", Cci::new(20), |i, c| i.update(c.typical_price()));
    bench!("adx_14", Adx::new(14), |i, c| i
        .update(c.high, c.low, c.close));
    bench!("atr_14", Atr::new(14), |i, c| i
        .update(c.high, c.low, c.close));
    bench!("obv", Obv::new(), |i, c| i.update(c.close, c.volume));
    bench!("all_together", IndicatorSet::new(), |i, c| i.update(c));
    group.finish();
}

fn technical_analyst(c: &mut Criterion) {
    let candles = million_candles();
    let mut set = IndicatorSet::new();
    // snapshots of 10,000 warm candles, built once: the bench measures the opinion only
    let requests: Vec<RoundRequest> = candles
        .iter()
        .map(|c| (c, set.update(c)))
        .skip(100)
        .take(10_000)
        .map(|(c, v)| RoundRequest {
            cycle_id: "bench".into(),
            round: 1,
            strategy: "bench".into(),
            snapshot: MarketSnapshot {
                symbol: "BTCUSDT".into(),
                open_time: c.open_time,
                open: c.open,
                high: c.high,
                low: c.low,
                close: c.close,
                volume: c.volume,
                indicators: v.indicators,
                portfolio: PortfolioContext::default(),
            },
            debate: vec![],
            deadline: 0,
            round_timeout_ms: 0,
        })
        .collect();
    let analyst = TechnicalAnalyst;
    let mut group = c.benchmark_group("technical_analyst");
    group.throughput(Throughput::Elements(requests.len() as u64));
    group.bench_function("judgement", |b| {
        b.iter(|| {
            for r in &requests {
                black_box(analyst.analyze(r));
            }
        })
    });
    group.bench_function("opinion", |b| {
        b.iter(|| {
            for r in &requests {
                black_box(analyst.answer(r, "technical-analyst"));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, indicators, technical_analyst);
criterion_main!(benches);
