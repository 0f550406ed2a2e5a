//! The protocol's codec on a consensus round's messages, as the five voters produce them: encoding
//! and decoding a round-1 request (the snapshot), a round-2 request (the snapshot and the five
//! opinions of round 1), and each voter's opinion. A round over NATS pays one request encoding, five
//! request decodings (one per voter), five opinion encodings and five opinion decodings.
//!
//! `cargo bench -p ia-agent --bench codec`

// criterion's macros generate public functions without docs
#![allow(missing_docs)]

use agent::roles::analyst_for;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use protocol::crd::RiskSpec;
use protocol::messages::{
    decode, encode, Indicators, MarketSnapshot, Message, Opinion, PortfolioContext, RoundRequest,
};
use protocol::Role;
use std::hint::black_box;

fn round_one() -> RoundRequest {
    RoundRequest {
        cycle_id: "btc-eth-paper_BTCUSDT_1583020800000_schedule".into(),
        round: 1,
        strategy: "btc-eth-paper".into(),
        snapshot: MarketSnapshot {
            symbol: "BTCUSDT".into(),
            open_time: 1_583_020_800_000,
            open: 8523.61,
            high: 8600.0,
            low: 8498.15,
            close: 8566.41,
            volume: 1843.207,
            indicators: Indicators {
                sma_20: Some(8601.4205),
                ema_20: Some(8_589.731_245_118_2),
                rsi_14: Some(47.312_887_603_5),
                macd: Some(-12.498_133_7),
                macd_signal: Some(-8.224_601_9),
                macd_hist: Some(-4.273_531_8),
                bb_upper: Some(8_712.559_117),
                bb_middle: Some(8601.4205),
                bb_lower: Some(8_490.281_883),
                stoch_k: Some(41.625_094_2),
                stoch_d: Some(38.008_812_6),
                willr_14: Some(-58.374_905_8),
                cci_20: Some(-31.847_215_4),
                adx_14: Some(18.442_301_7),
                atr_14: Some(61.184_285_7),
                obv: 125_311.402,
                volume_ratio_20: Some(1.083_551_2),
                return_12: Some(-0.004_127_3),
                ..Default::default()
            },
            portfolio: PortfolioContext::default(),
        },
        debate: vec![],
        deadline: 1_583_020_830_000,
        round_timeout_ms: 30_000,
    }
}

/// The five voters' opinions on round 1, with their evidence.
fn opinions(request: &RoundRequest) -> Vec<Opinion> {
    Role::DEFAULT_VOTERS
        .iter()
        .map(|&role| {
            analyst_for(role, &Default::default(), &RiskSpec::default())
                .unwrap()
                .unwrap()
                .answer(request, role.as_str())
        })
        .collect()
}

fn codec(c: &mut Criterion) {
    let first = round_one();
    let answers = opinions(&first);
    // round 2 carries round 1's opinions without their evidence, as the cycle sends them
    let second = RoundRequest {
        round: 2,
        debate: answers
            .iter()
            .map(|o| Opinion {
                evidence: Default::default(),
                ..o.clone()
            })
            .collect(),
        ..first.clone()
    };
    let messages = [
        ("round-1 request", Message::RoundRequest(Box::new(first))),
        ("round-2 request", Message::RoundRequest(Box::new(second))),
        (
            "technical analyst's opinion",
            Message::Opinion(answers[1].clone()),
        ),
    ];
    let mut group = c.benchmark_group("codec");
    for (name, message) in &messages {
        let bytes = encode(message);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("encode {name} ({} bytes)", bytes.len()), |b| {
            b.iter(|| encode(black_box(message)))
        });
        group.bench_function(format!("decode {name} ({} bytes)", bytes.len()), |b| {
            b.iter(|| decode(black_box(&bytes)).unwrap())
        });
    }
    // a whole round's codec work, as the processes of a round do it between them
    let answers: Vec<Message> = answers.into_iter().map(Message::Opinion).collect();
    let replies: Vec<Vec<u8>> = answers.iter().map(encode).collect();
    let (_, request) = &messages[1];
    group.throughput(Throughput::Elements(1));
    group.bench_function("a round-2 round (1 + 5 × 3 codec calls)", |b| {
        b.iter(|| {
            let sent = encode(black_box(request));
            for reply in &replies {
                black_box(decode(&sent).unwrap());
                black_box(decode(black_box(reply)).unwrap());
            }
            for answer in &answers {
                black_box(encode(black_box(answer)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
