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

pub(super) struct RecordWriter {
    store: Option<Store>,
    strategy: String,
    /// The audit chain's head; `None` while a batch (which owns it) is in flight.
    chain: Option<AuditChain>,
    in_flight: Option<JoinHandle<Result<AuditChain, StoreError>>>,
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
        })
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
        self.in_flight = Some(tokio::spawn(async move {
            store
                .record(&strategy, &mut chain, &decisions, &orders)
                .await
                .map(|()| chain)
        }));
        Ok(())
    }

    /// The chain's head once every batch is stored: (entries, hash, keyed); `None` without a store.
    pub fn head(&self) -> Option<AuditHead> {
        let chain = self.chain.as_ref()?;
        self.store.as_ref()?;
        let (entries, hash) = chain.head();
        Some(AuditHead {
            entries,
            head: hash.to_string(),
            keyed: chain.is_keyed(),
        })
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
