//! Writes a replay's record (decisions with their debates, orders, audit entries) to the store while
//! the replay goes on: one batch in flight on a task of its own, the next one filling meanwhile.
//!
//! On a multi-threaded runtime the store's work (building the statements, and SQLite's own thread)
//! overlaps the team's; on a single-threaded one the batch is written when the replay next waits,
//! i.e. the same as writing it in place. At most one batch is in flight, and the next one waits for
//! it, so batches (and the order of their audit entries) do not depend on timing.
//!
//! A database that stops answering (an outage, a restart: [`StoreError::is_transient`]) does not
//! stop the team: the batch in flight is retried, backing off from 250 ms to 5 s, for as long as it
//! takes, while new decisions are held in memory (up to [`HOLD_AT_MOST`], then the replay waits for
//! the store) and written as one batch once it answers; `ia_agent_unstored_decisions` says how many are waiting.
//! After a failed attempt the chain is read back from the store before the next one, since a commit
//! whose answer was lost must not be chained twice. Any other error stops the replay at the next
//! batch (or at the end) with the store's error.

use crate::audit::{AuditChain, AuditKey};
use crate::store::{OrderRecord, Store, StoreError};
use protocol::messages::Decision;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Decisions held in memory at most while the store does not answer; past them the replay waits
/// for the store (back-pressure, nothing dropped).
pub const HOLD_AT_MOST: usize = 50_000;

/// What was decided and ordered and is not handed to the store yet.
type Batch = (Vec<Decision>, Vec<OrderRecord>);

/// The book (positions, equity, cash) and the vote weights at one moment, saved after the batch
/// it was handed over with: on the writer's task, so the replay never waits for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BookState {
    /// When, ms since the epoch.
    pub at: i64,
    /// Each voter's weight, by assistant.
    pub weights: Vec<(String, f64)>,
    /// Equity, as an exact decimal string.
    pub equity: String,
    /// Cash, as an exact decimal string.
    pub cash: String,
    /// (symbol, quantity, entry price) of each open position, decimals as strings.
    pub positions: Vec<(String, String, String)>,
}

impl BookState {
    /// Writes the weights and the book.
    pub async fn save(&self, store: &Store, strategy: &str) -> Result<(), StoreError> {
        store.save_weights(strategy, self.at, &self.weights).await?;
        store
            .save_portfolio(strategy, self.at, &self.equity, &self.cash, &self.positions)
            .await
    }
}

/// Where the audit chain's head goes each time a batch of audit rows is stored, as the anchor
/// message: the latest only (the coordinator publishes it; sending never waits).
pub type AnchorSender = tokio::sync::watch::Sender<Option<protocol::messages::AuditHead>>;

/// The record's writer: batches to the store, one in flight, through outages (see the module).
pub struct RecordWriter {
    store: Option<Store>,
    strategy: String,
    /// The audit chain's head; `None` while a batch (which owns it) is in flight.
    chain: Option<AuditChain>,
    in_flight: Option<JoinHandle<Result<AuditChain, StoreError>>>,
    anchor: Option<AnchorSender>,
    /// The chain's key, to read it back from the store after a failed write.
    key: AuditKey,
    /// Decided while the batch in flight could not be stored: the next batch.
    held: Batch,
    /// The latest book handed over, saved after the next batch.
    book: Option<BookState>,
    /// Whether the batch in flight has met a store that does not answer.
    outage: Arc<Outage>,
}

/// Whether the batch in flight meets a store that does not answer, and a wake-up when it starts to.
#[derive(Default)]
struct Outage {
    on: AtomicBool,
    began: tokio::sync::Notify,
}

impl Outage {
    fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    fn set(&self, on: bool) {
        if !self.on.swap(on, Ordering::Relaxed) && on {
            self.began.notify_waiters();
        }
    }

    /// Resolves once an outage is on.
    async fn begun(&self) {
        loop {
            let began = self.began.notified();
            tokio::pin!(began);
            began.as_mut().enable();
            if self.is_on() {
                return;
            }
            began.await;
        }
    }
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
            key: key.clone(),
            held: Batch::default(),
            book: None,
            outage: Arc::default(),
        })
    }

    /// Tells `anchor` the chain's head after each batch that added audit rows, once it is stored.
    pub fn anchored(&mut self, anchor: Option<AnchorSender>) {
        self.anchor = anchor;
    }

    /// Hands a batch over, after the previous one is stored; while that one meets a store that does
    /// not answer, the new one is held instead (up to [`HOLD_AT_MOST`] decisions, then it waits).
    pub async fn write(
        &mut self,
        decisions: Vec<Decision>,
        orders: Vec<OrderRecord>,
    ) -> Result<(), StoreError> {
        if self.store.is_none() {
            return Ok(());
        }
        self.held.0.extend(decisions);
        self.held.1.extend(orders);
        self.stored_or_outage().await?;
        if self.in_flight.is_some() && self.held.0.len() < HOLD_AT_MOST {
            return Ok(()); // the store is out: held for the next batch
        }
        self.land().await?;
        self.send_held();
        Ok(())
    }

    /// Waits until the batch in flight is stored, or until it meets a store that does not answer
    /// (then it is still in flight).
    async fn stored_or_outage(&mut self) -> Result<(), StoreError> {
        let Some(batch) = self.in_flight.as_mut() else {
            return Ok(());
        };
        let outage = self.outage.clone();
        let joined = tokio::select! {
            joined = batch => Some(joined),
            () = outage.begun() => None,
        };
        if let Some(joined) = joined {
            self.in_flight = None;
            self.chain = Some(joined.map_err(|e| StoreError::Writer(e.to_string()))??);
        }
        Ok(())
    }

    /// Saves `book` after the next batch is stored (a newer one handed over before then
    /// replaces it; a failed save is logged, and the next batch's book saves the newer state).
    pub fn book(&mut self, book: BookState) {
        self.book = Some(book);
    }

    /// Whether the batch in flight is meeting a store that does not answer.
    pub fn in_outage(&self) -> bool {
        self.outage.is_on()
    }

    /// Starts writing what is held, if anything (nothing is in flight).
    fn send_held(&mut self) {
        let Some(store) = self.store.clone() else {
            return;
        };
        if self.held.0.is_empty() && self.held.1.is_empty() && self.book.is_none() {
            return;
        }
        let batch = std::mem::take(&mut self.held);
        let book = self.book.take();
        let chain = self.chain.take().expect("no batch in flight after land");
        let (strategy, key, anchor) =
            (self.strategy.clone(), self.key.clone(), self.anchor.clone());
        let outage = self.outage.clone();
        self.in_flight = Some(tokio::spawn(async move {
            let before = chain.head().0;
            let chain =
                store_until_answered(&store, &strategy, chain, &key, &batch, &outage).await?;
            if let Some(book) = book {
                if let Err(error) = book.save(&store, &strategy).await {
                    tracing::warn!(%error, "saving the book and weights failed; the next batch saves them");
                }
            }
            // committed: the anchor may now point at it (a replayed batch adds no row, no anchor)
            if let Some(anchor) = anchor.filter(|_| chain.head().0 > before) {
                let (entries, head) = chain.head();
                anchor.send_replace(Some(protocol::messages::AuditHead {
                    strategy: strategy.into(),
                    head: head.to_string(),
                    entries: entries.unsigned_abs(),
                    at: chrono::Utc::now().timestamp_millis(),
                    keyed: chain.is_keyed(),
                }));
            }
            Ok(chain)
        }));
    }

    /// The chain's head once every batch is stored: (entries, hash, keyed); `None` without a store.
    pub fn head(&self) -> Option<AuditHead> {
        let chain = self.chain.as_ref()?;
        self.store.as_ref()?;
        Some(head_of(chain))
    }

    /// Waits until everything handed over (held batches too) is stored.
    pub async fn finish(&mut self) -> Result<(), StoreError> {
        self.land().await?;
        self.send_held();
        self.land().await
    }

    /// Waits until the batch in flight, if any, is stored.
    async fn land(&mut self) -> Result<(), StoreError> {
        if let Some(batch) = self.in_flight.take() {
            let chain = batch
                .await
                .map_err(|e| StoreError::Writer(e.to_string()))??;
            self.chain = Some(chain);
        }
        Ok(())
    }
}

/// Stores `batch` and returns the chain after it, trying again while the store does not answer
/// (see the module); the chain is read back from the store before each new attempt.
async fn store_until_answered(
    store: &Store,
    strategy: &str,
    mut chain: AuditChain,
    key: &AuditKey,
    batch: &Batch,
    outage: &Outage,
) -> Result<AuditChain, StoreError> {
    let unstored = crate::metrics::UNSTORED.with_label_values(&[strategy]);
    let (mut backoff, mut attempt, mut reread) = (crate::shutdown::Backoff::default(), 0u32, false);
    loop {
        let tried = if reread {
            store.audit_chain(strategy, key).await.map(|read| {
                chain = read;
                reread = false;
            })
        } else {
            match store.record(strategy, &mut chain, &batch.0, &batch.1).await {
                Ok(()) => {
                    outage.set(false);
                    if attempt > 0 {
                        tracing::info!(decisions = batch.0.len(), attempts = attempt + 1,
                            "the store answers again: the decisions held through the outage are stored");
                        unstored.set(0);
                    }
                    return Ok(chain);
                }
                Err(error) => Err(error),
            }
        };
        // the chain was read back: store the batch on it next
        let Err(error) = tried else {
            continue;
        };
        if !error.is_transient() || crate::shutdown::requested() {
            return Err(error);
        }
        attempt += 1;
        reread = true;
        outage.set(true);
        unstored.set(batch.0.len() as i64);
        if attempt == 1 || attempt.is_multiple_of(10) {
            tracing::warn!(%error, attempt, held = batch.0.len(),
                "the store does not answer; holding the decisions and trying again");
        }
        backoff.pause().await;
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
