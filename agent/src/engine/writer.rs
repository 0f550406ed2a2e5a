//! Writes a replay's record (decisions with their debates, orders, audit entries) to the store while
//! the replay goes on: one batch in flight on a task of its own, the next one filling meanwhile.
//!
//! On a multi-threaded runtime the store's work (building the statements, and SQLite's own thread)
//! overlaps the team's; on a single-threaded one the batch is written when the replay next waits,
//! i.e. the same as writing it in place. At most one batch is in flight, so memory stays bounded, and
//! a failed write stops the replay at the next batch (or at the end) with the store's error.

use crate::audit::{AuditChain, AuditKey};
use crate::store::{OrderRecord, Store, StoreError};
use protocol::messages::Decision;
use tokio::task::JoinHandle;

/// Where the audit chain's head goes each time a batch of audit rows is stored, as the anchor
/// message: the latest only (the coordinator publishes it; sending never waits).
pub type AnchorSender = tokio::sync::watch::Sender<Option<protocol::messages::AuditHead>>;

pub(super) struct RecordWriter {
    store: Option<Store>,
    strategy: String,
    /// The audit chain's head; `None` while a batch (which owns it) is in flight.
    chain: Option<AuditChain>,
    in_flight: Option<JoinHandle<Result<AuditChain, StoreError>>>,
    anchor: Option<AnchorSender>,
}

impl RecordWriter {
    /// A writer continuing `strategy`'s audit chain in `store` under `key` (or discarding batches
    /// without a store).
    pub async fn new(
        store: Option<&Store>,
        strategy: &str,
        key: &AuditKey,
    ) -> Result<Self, StoreError> {
        let chain = match store {
            Some(store) => store.audit_chain(strategy, key).await?,
            None => AuditChain::resume(0, crate::audit::GENESIS.into(), key.clone()),
        };
        Ok(Self {
            store: store.cloned(),
            strategy: strategy.to_string(),
            chain: Some(chain),
            in_flight: None,
            anchor: None,
        })
    }

    /// Tells `anchor` the chain's head after each batch that added audit rows, once it is stored.
    pub fn anchored(&mut self, anchor: Option<AnchorSender>) {
        self.anchor = anchor;
    }

    /// Hands a batch over, after the previous one is stored.
    pub async fn write(
        &mut self,
        decisions: Vec<Decision>,
        orders: Vec<OrderRecord>,
    ) -> Result<(), StoreError> {
        self.finish().await?;
        let Some(store) = self.store.clone() else {
            return Ok(());
        };
        if decisions.is_empty() && orders.is_empty() {
            return Ok(());
        }
        let strategy = self.strategy.clone();
        let mut chain = self.chain.take().expect("no batch in flight after finish");
        let anchor = self.anchor.clone();
        self.in_flight = Some(tokio::spawn(async move {
            let before = chain.head().0;
            store
                .record(&strategy, &mut chain, &decisions, &orders)
                .await?;
            // committed: the anchor may now point at it (a replayed batch adds no row, no anchor)
            if let Some(anchor) = anchor.filter(|_| chain.head().0 > before) {
                let (entries, head) = chain.head();
                anchor.send_replace(Some(protocol::messages::AuditHead {
                    strategy,
                    head: head.to_string(),
                    entries: entries.unsigned_abs(),
                    at: chrono::Utc::now().timestamp_millis(),
                    keyed: chain.is_keyed(),
                }));
            }
            Ok(chain)
        }));
        Ok(())
    }

    /// The chain's head once every batch is stored: (entries, hash, keyed); `None` without a store.
    pub fn head(&self) -> Option<AuditHead> {
        let chain = self.chain.as_ref()?;
        self.store.as_ref()?;
        Some(head_of(chain))
    }

    /// Waits until the batch in flight is stored.
    pub async fn finish(&mut self) -> Result<(), StoreError> {
        if let Some(batch) = self.in_flight.take() {
            let chain = batch
                .await
                .map_err(|e| StoreError::Writer(e.to_string()))??;
            self.chain = Some(chain);
        }
        Ok(())
    }
}

fn head_of(chain: &AuditChain) -> AuditHead {
    let (entries, hash) = chain.head();
    AuditHead {
        entries,
        head: hash.to_string(),
        keyed: chain.is_keyed(),
    }
}

/// Where a run left its audit chain: the anchor to keep outside the database and check with
/// `trading-agent audit verify --expect-head`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditHead {
    /// Entries in the chain (its last `seq`).
    pub entries: i64,
    /// The last entry's hash.
    pub head: String,
    /// Whether it is HMAC-keyed (`IA_AUDIT_KEY`).
    pub keyed: bool,
}
