//! The audit anchor out of the coordinator: the head of the team's audit chain, published on
//! `….audit` (the `IA_AUDIT` stream keeps the last one) each time a batch of audit rows is stored,
//! never before, so the anchor never points past the database. `trading-agent audit verify --nats`
//! checks the database against it, and the operator shows it in the Strategy's status.
//!
//! A coordinator that restarts on a database whose chain no longer reaches the anchor already on
//! the stream (truncated or rewritten while it was down) publishes no anchor: a new one would
//! replace the evidence.

use crate::bus::publisher::publish_latest;
use crate::bus::Bus;
use crate::engine::AnchorSender;
use crate::store::{Store, StoreError};
use protocol::messages::{AuditHead, Message};
use protocol::subjects::Subjects;
use tokio::task::JoinHandle;

/// The anchor's publisher, while it runs.
#[derive(Default)]
pub struct Anchoring {
    /// Where the record tells each stored head (`None`: anchoring is withheld).
    pub sender: Option<AnchorSender>,
    /// The publisher's task: the last anchor it published.
    pub task: Option<JoinHandle<Option<AuditHead>>>,
}

impl Anchoring {
    /// Waits for the publisher to put out the last head (after the record's sender is gone); the
    /// last anchor published.
    pub async fn finish(self) -> Option<AuditHead> {
        drop(self.sender);
        self.task?.await.ok().flatten()
    }
}

/// Checks the anchor already on the bus against `store`, then starts publishing `strategy`'s
/// anchors on `subjects.audit()`.
pub async fn start<B: Bus>(
    bus: &B,
    subjects: &Subjects,
    strategy: &str,
    store: &Store,
) -> Result<Anchoring, StoreError> {
    let subject = subjects.audit();
    if !reaches_previous(bus, &subject, strategy, store).await? {
        return Ok(Anchoring::default());
    }
    let (sender, latest) = tokio::sync::watch::channel(None);
    let bus = bus.clone();
    let task = tokio::spawn(async move {
        let publish = |head: &AuditHead| {
            let (bus, subject) = (bus.clone(), subject.clone());
            let message = Message::AuditHead(head.clone());
            let id = head.head.clone();
            async move {
                bus.publish_durable(&subject, &id, &message)
                    .await
                    .map(|_| ())
            }
        };
        let last = publish_latest("the audit anchor", latest, publish).await;
        if let Some(head) = &last {
            tracing::info!(entries = head.entries, head = %head.head, "audit chain anchored on NATS");
        }
        last
    });
    Ok(Anchoring {
        sender: Some(sender),
        task: Some(task),
    })
}

/// Whether the chain in `store` still holds the anchor last published on `subject` (true when
/// there is none). One that cannot be read is not replaced: it may be the evidence that the
/// database was rewritten, so this run publishes no anchor and says why.
async fn reaches_previous<B: Bus>(
    bus: &B,
    subject: &str,
    strategy: &str,
    store: &Store,
) -> Result<bool, StoreError> {
    let previous = match bus.last_durable(subject).await {
        Ok(Some(Message::AuditHead(previous))) => previous,
        Ok(_) => return Ok(true),
        Err(error) => {
            tracing::error!(%error, %subject,
                "cannot read the previous audit anchor: NO ANCHOR IS PUBLISHED by this run, so that one this database no longer reaches is not overwritten");
            return Ok(false);
        }
    };
    let seq = i64::try_from(previous.entries).unwrap_or(i64::MAX);
    let stored = store.audit_hash(strategy, seq).await?;
    if stored.as_deref() == Some(previous.head.as_str()) {
        return Ok(true);
    }
    tracing::error!(
        %subject,
        anchored_entries = previous.entries,
        anchored_head = %previous.head,
        stored_hash = stored.as_deref().unwrap_or("(no such entry)"),
        "the audit chain in {} does not reach the anchor on NATS: it was truncated or rewritten. \
         NO ANCHOR IS PUBLISHED by this run, so that the evidence stays; check with `trading-agent \
         audit verify --nats`",
        store.name()
    );
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditKey;
    use crate::bus::memory::MemoryBus;
    use crate::engine::record::Record;
    use crate::engine::Trigger;
    use crate::exchange::{FeeModel, PaperExchange};
    use protocol::messages::Decision;
    use protocol::Action;

    fn decision(id: &str) -> Decision {
        Decision {
            id: id.into(),
            strategy: "s".into(),
            symbol: "BTCUSDT".into(),
            action: Action::Hold,
            confidence: 0.5,
            consensus_reached: true,
            escalated: false,
            vetoed: false,
            rejected: false,
            resolved_by: None,
            rounds: vec![],
            transcript: vec![],
            price: 1.0,
            decided_at: 0,
        }
    }

    /// Records `ids` as one batch into `store`, anchored by `anchoring`; the chain's head.
    async fn record(store: &Store, anchoring: Anchoring, ids: &[&str]) -> Option<AuditHead> {
        let ledger = PaperExchange::new(1000.into(), FeeModel::new(0.0, 0.0));
        let key = AuditKey::Keyed(b"k".to_vec());
        let mut record = Record::new(Some(store), "s", &key, notify::Notifier::none(), 100)
            .await
            .unwrap()
            .anchored(anchoring.sender);
        for id in ids {
            record.decided(decision(id), Trigger::Schedule, String::new(), None);
        }
        record.flush(0, &[], &ledger).await.unwrap();
        let closed = record.finish(0, &[], &ledger).await.unwrap();
        let published = match anchoring.task {
            Some(task) => task.await.unwrap(),
            None => None,
        };
        let head = closed.audit.unwrap();
        if let Some(anchor) = &published {
            assert_eq!(
                (anchor.entries, anchor.head.as_str(), anchor.keyed),
                (head.entries as u64, head.head.as_str(), true)
            );
        }
        published
    }

    #[tokio::test]
    async fn the_stored_head_is_anchored_and_a_truncated_database_is_not_anchored_over() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        let store = Store::connect(&url).await.unwrap();
        let bus = MemoryBus::new();
        let subjects = Subjects::new("ns", "s").unwrap();

        let first = start(&bus, &subjects, "s", &store).await.unwrap();
        let anchored = record(&store, first, &["d1", "d2", "d3"]).await.unwrap();
        assert_eq!(anchored.entries, 3);
        assert_eq!(
            bus.last_durable(&subjects.audit()).await.unwrap(),
            Some(Message::AuditHead(anchored.clone()))
        );
        // a replayed batch adds no audit row, and no anchor
        let again = start(&bus, &subjects, "s", &store).await.unwrap();
        assert_eq!(record(&store, again, &["d1"]).await, None);

        // the chain goes on from the anchored head: anchored again
        let next = start(&bus, &subjects, "s", &store).await.unwrap();
        assert_eq!(record(&store, next, &["d4"]).await.unwrap().entries, 4);

        // truncated while the coordinator was away: the anchor on the bus stays as it was
        let Store::Sqlite { pool, .. } = &store else {
            unreachable!()
        };
        sqlx::query("DELETE FROM audit_log WHERE seq >= 3")
            .execute(pool)
            .await
            .unwrap();
        let kept = bus.last_durable(&subjects.audit()).await.unwrap();
        let withheld = start(&bus, &subjects, "s", &store).await.unwrap();
        assert!(withheld.sender.is_none() && withheld.task.is_none());
        assert_eq!(record(&store, withheld, &["d5"]).await, None);
        assert_eq!(bus.last_durable(&subjects.audit()).await.unwrap(), kept);
    }
}
