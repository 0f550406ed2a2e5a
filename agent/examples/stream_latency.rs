//! Decision → fill latency of a team whose executor is its own process, read from the decision
//! stream itself: for each filled order report on `….order`, the time the stream stored it minus
//! the time it stored the decision it executes (both stamped by the one nats-server, so no clocks
//! are compared across processes). Used by `scripts/bench-distributed.sh` with `SERVICES=1`.
//!
//! `cargo run --release --example stream_latency -- NATS_URL NAMESPACE STRATEGY`

use async_nats::jetstream::consumer::pull::OrderedConfig;
use futures::StreamExt;
use protocol::messages::{decode, Message, OrderStatus};
use protocol::subjects::{Subjects, STREAM_DECISIONS};
use std::collections::HashMap;

/// Every message on `subject` with the time the stream stored it (ns since the epoch).
async fn stamped(
    jetstream: &async_nats::jetstream::Context,
    subject: String,
) -> anyhow::Result<Vec<(i128, Message)>> {
    let stream = jetstream.get_stream(STREAM_DECISIONS).await?;
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: subject,
            ..Default::default()
        })
        .await?;
    let mut pending = consumer.cached_info().num_pending;
    let mut messages = consumer.messages().await?;
    let mut out = Vec::new();
    while pending > 0 {
        let Some(message) = messages.next().await else {
            break;
        };
        let message = message?;
        let info = message.info().map_err(|e| anyhow::anyhow!("{e}"))?;
        pending = info.pending;
        let at = info.published.unix_timestamp_nanos();
        if let Ok(decoded) = decode(&message.payload) {
            out.push((at, decoded));
        }
    }
    Ok(out)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, namespace, strategy] = args.as_slice() else {
        anyhow::bail!("usage: stream_latency NATS_URL NAMESPACE STRATEGY");
    };
    let subjects = Subjects::new(namespace, strategy)?;
    let jetstream = async_nats::jetstream::new(async_nats::connect(url.as_str()).await?);
    let decided: HashMap<protocol::ids::DecisionId, i128> =
        stamped(&jetstream, subjects.decision())
            .await?
            .into_iter()
            .filter_map(|(at, m)| match m {
                Message::Decision(d) => Some((d.id, at)),
                _ => None,
            })
            .collect();
    let mut latencies_ms: Vec<f64> = stamped(&jetstream, subjects.order())
        .await?
        .into_iter()
        .filter_map(|(at, m)| match m {
            Message::OrderReport(r) if r.status == OrderStatus::Filled => decided
                .get(&r.order.decision_id)
                .map(|decided| (at - decided) as f64 / 1e6),
            _ => None, // stops and targets have no decision of their own
        })
        .collect();
    anyhow::ensure!(
        !latencies_ms.is_empty(),
        "no filled order of a decision on the stream"
    );
    latencies_ms.sort_by(f64::total_cmp);
    let at = |q: f64| latencies_ms[((latencies_ms.len() - 1) as f64 * q).round() as usize];
    println!(
        "decision -> fill over the stream: {} fills, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies_ms.len(),
        at(0.5),
        at(0.99),
        latencies_ms[latencies_ms.len() - 1]
    );
    Ok(())
}
