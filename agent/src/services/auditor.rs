//! The auditor service (`trading-agent assistant --role auditor --db URL`): the single writer of
//! the team's record. It follows the decision stream with two durable consumers (`….decision` and
//! the executor's `….order`) and writes each batch of decisions (with their debates) or order
//! reports to the store, appending their audit
//! entries to the chain, then anchors the chain's head on `….audit` and acknowledges the batch.
//!
//! Nothing is lost and nothing is written twice: a batch is acknowledged only once it is stored,
//! so whatever a crash or an outage interrupted is delivered again, and a decision or order already
//! stored (same strategy and id) is left as it is, adding no audit row. While the database does
//! not answer the batch is retried (the engine's writer: backing off up to 5 s) and the stream
//! holds the rest: the decision stream is the durable log the store is fed from.

use super::ServiceError;
use crate::audit::AuditKey;
use crate::bus::consumer::Delivered;
use crate::bus::nats::NatsBus;
use crate::coordination::anchor::{self, Anchoring};
use crate::engine::writer::RecordWriter;
use crate::store::{Store, StoreError};
use protocol::messages::Message;
use protocol::subjects::Subjects;
use protocol::Role;
use std::time::Duration;

/// Messages written in one batch at most.
const BATCH: usize = 2048;
/// How long a batch waits for more messages after its first.
const LINGER: Duration = Duration::from_millis(100);

/// What an auditor service did until it stopped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AuditorSummary {
    /// Decisions handed to the store (one already stored is not written again).
    pub decisions: u64,
    /// Order reports handed to the store.
    pub orders: u64,
    /// Batches written.
    pub batches: u64,
}

/// Runs the auditor of Strategy `strategy` on `bus` into the database at `url`, its chain keyed
/// with `key`, until a stop is asked (SIGTERM).
pub async fn run(
    bus: &NatsBus,
    subjects: &Subjects,
    strategy: &str,
    url: &str,
    key: &AuditKey,
    peers: &super::Peers,
) -> Result<AuditorSummary, ServiceError> {
    super::unsigned_warning("decisions", peers.coordinator.as_ref(), "--coordinator-key");
    super::unsigned_warning("order reports", peers.executor.as_ref(), "--executor-key");
    let Some((mut writer, mut anchoring)) = open(bus, subjects, strategy, url, key).await? else {
        return Ok(AuditorSummary::default()); // asked to stop before the database answered
    };
    // the process waits for this run to end after a stop is asked (crate::shutdown)
    let _busy = crate::shutdown::busy();
    writer.anchored(anchoring.sender.take());
    let batches = follow(bus, subjects, peers).await?;
    tracing::info!("recording the team's decisions and orders");
    let summary = record(batches, &mut writer, strategy).await?;
    drop(writer);
    anchoring.finish().await;
    tracing::info!(?summary, "the auditor stops");
    Ok(summary)
}

/// Connects to the database, reads the chain back and checks the anchor, trying again (backing
/// off up to 5 s) while the database does not answer: it may come up after the auditor, or be
/// restarting. `None` when a stop is asked first.
async fn open(
    bus: &NatsBus,
    subjects: &Subjects,
    strategy: &str,
    url: &str,
    key: &AuditKey,
) -> Result<Option<(RecordWriter, Anchoring)>, ServiceError> {
    let mut backoff = crate::shutdown::Backoff::default();
    loop {
        let opened = async {
            let store = Store::connect(url).await?;
            let writer = RecordWriter::new(Some(&store), strategy, key).await?;
            let anchoring = anchor::start(bus, subjects, strategy, &store).await?;
            Ok::<_, StoreError>((writer, anchoring))
        };
        match opened.await {
            Ok(opened) => return Ok(Some(opened)),
            Err(error) if error.is_transient() => {
                tracing::warn!(%error, "the database does not answer yet; trying again")
            }
            Err(error) => return Err(error.into()),
        }
        if !backoff.pause().await {
            return Ok(None);
        }
    }
}

/// Batches from the auditor's two consumers (decisions; the executor's order reports), each
/// pulled by a task of its own, as they come.
async fn follow(
    bus: &NatsBus,
    subjects: &Subjects,
    peers: &super::Peers,
) -> Result<tokio::sync::mpsc::Receiver<Vec<Delivered>>, ServiceError> {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    for (name, filter, signed_by) in [
        (
            subjects.service_consumer(Role::Auditor),
            subjects.decision(),
            peers.coordinator.clone(),
        ),
        (
            subjects.auditor_orders_consumer(),
            subjects.order(),
            peers.executor.clone(),
        ),
    ] {
        let mut consumer = bus
            .service_consumer(&name, &filter, 4 * BATCH as i64, false, signed_by)
            .await?;
        tracing::info!(consumer = %name, %filter, "following");
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(batch) = consumer.batch(BATCH, LINGER).await {
                if tx.send(batch).await.is_err() {
                    return; // the auditor is stopping
                }
            }
            // a consumer that ends would leave half an auditor: an empty batch stops it (and its
            // pod is started again)
            tracing::error!(consumer = %name, "the consumer ended");
            let _ = tx.send(Vec::new()).await;
        });
    }
    Ok(rx)
}

/// The decisions and order reports of `strategy` among `messages` (the candles are the
/// executor's). One that names another Strategy is logged and left out: the team's subjects carry
/// only its own, so it came some other way (another namespace's team of the same name aside, which
/// this cannot tell), and the record keeps only what its team did.
fn ours<'m>(
    strategy: &str,
    messages: impl Iterator<Item = &'m Message>,
) -> (
    Vec<protocol::messages::Decision>,
    Vec<crate::store::OrderRecord>,
) {
    let (mut decisions, mut orders) = (Vec::new(), Vec::new());
    for message in messages {
        if let Some(named) = message.strategy().filter(|n| *n != strategy) {
            tracing::warn!(kind = message.type_name(), %named, "a message of another Strategy on this team's subjects: not recorded");
            continue;
        }
        match message {
            Message::Decision(d) => decisions.push(d.clone()),
            Message::OrderReport(r) => orders.push(r.clone()),
            _ => {} // the candles the executor reads
        }
    }
    (decisions, orders)
}

/// Stores each batch (through any outage) and then acknowledges it, until a stop is asked; a stop
/// during an outage ends with the batch unacknowledged, delivered again to the next auditor.
async fn record(
    mut batches: tokio::sync::mpsc::Receiver<Vec<Delivered>>,
    writer: &mut RecordWriter,
    strategy: &str,
) -> Result<AuditorSummary, ServiceError> {
    let mut summary = AuditorSummary::default();
    loop {
        let batch = tokio::select! {
            batch = batches.recv() => batch,
            () = crate::shutdown::stop_requested() => None,
        };
        let Some(batch) = batch else { break };
        if batch.is_empty() {
            return Err(ServiceError::Bus(crate::bus::BusError::Closed {
                subject: "the auditor's consumers of IA_DECISIONS".into(),
            }));
        }
        let (decisions, orders) = ours(strategy, batch.iter().filter_map(|d| d.message.as_ref()));
        let counts = (decisions.len() as u64, orders.len() as u64);
        writer.write(decisions, orders).await?;
        writer.finish().await?;
        for delivered in &batch {
            if let Err(error) = delivered.ack().await {
                tracing::warn!(%error, "acknowledging failed; the message comes again and is stored once");
            }
        }
        summary.decisions += counts.0;
        summary.orders += counts.1;
        summary.batches += 1;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::messages::{Decision, MarketCandle};
    use protocol::Action;

    fn decision(strategy: &str, id: &str) -> Message {
        Message::Decision(Decision {
            id: id.into(),
            strategy: strategy.into(),
            symbol: "BTCUSDT".into(),
            action: Action::Hold,
            confidence: 1.0,
            consensus_reached: true,
            escalated: false,
            vetoed: false,
            rejected: false,
            resolved_by: None,
            rounds: vec![],
            transcript: vec![],
            price: 100.0,
            decided_at: 1,
        })
    }

    /// The record keeps its team's decisions only; the candles are the executor's.
    #[test]
    fn only_the_teams_own_decisions_are_recorded() {
        let candle = Message::Candle(MarketCandle {
            strategy: "btc".into(),
            symbol: "BTCUSDT".into(),
            open_time: 0,
            close_time: 3_599_999,
            open: 1.0,
            high: 1.0,
            low: 1.0,
            close: 1.0,
            volume: 1.0,
            live: false,
            volatility: None,
        });
        let batch = [
            candle,
            decision("btc", "d1"),
            decision("someone-else", "d2"),
            decision("btc", "d3"),
        ];
        let (decisions, orders) = ours("btc", batch.iter());
        let ids: Vec<&str> = decisions.iter().map(|d| d.id.as_str()).collect();
        assert_eq!((ids, orders.len()), (vec!["d1", "d3"], 0));
    }
}
