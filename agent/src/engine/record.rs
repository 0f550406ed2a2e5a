//! The record of a session (docs/architecture.md, "Execution and the record"): every store write
//! and every metric and notification of the engine go through here, on one path. Decisions and
//! orders are buffered and written in batches ([`writer::RecordWriter`]) with their audit entries;
//! the book and the vote weights are saved with every batch, so the API shows them during a run
//! and a restarted coordinator resumes from them.

use super::writer::{AuditHead, RecordWriter};
use super::{DecisionCounts, DecisionRecord, Trigger, RECORDS_KEPT};
use crate::consensus::Voter;
use crate::exchange::PaperExchange;
use crate::store::{OrderRecord, Store, StoreError};
use notify::{Event, Notifier};
use protocol::messages::{Decision, Fill};
use protocol::Action;
use std::collections::VecDeque;

/// Decisions buffered before a write to the store in a replay (live decisions are written one by
/// one, as they are made).
pub const FLUSH_EVERY: usize = 2048;

/// What a session has decided, ordered and filled, on its way to the store and the metrics.
pub struct Record<'s> {
    strategy: String,
    store: Option<&'s Store>,
    writer: RecordWriter,
    notifier: Notifier,
    decisions: Vec<Decision>,
    orders: Vec<OrderRecord>,
    flush_every: usize,
    counts: DecisionCounts,
    notable: VecDeque<DecisionRecord>,
    notable_total: u64,
}

/// What the record holds when the session ends.
pub struct Closed {
    /// Decisions by outcome and action.
    pub counts: DecisionCounts,
    /// The latest [`RECORDS_KEPT`] notable decisions.
    pub notable: VecDeque<DecisionRecord>,
    /// How many notable decisions there were in all.
    pub notable_total: u64,
    /// The audit chain's head once everything is stored (with a store).
    pub audit: Option<AuditHead>,
}

impl<'s> Record<'s> {
    /// A record of `strategy` into `store` (none: counted and told, never stored), continuing its
    /// audit chain under `key`, writing every `flush_every` decisions.
    pub async fn new(
        store: Option<&'s Store>,
        strategy: &str,
        key: &crate::audit::AuditKey,
        notifier: Notifier,
        flush_every: usize,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            strategy: strategy.to_string(),
            store,
            writer: RecordWriter::new(store, strategy, key).await?,
            notifier,
            decisions: Vec::with_capacity(flush_every),
            orders: Vec::new(),
            flush_every,
            counts: DecisionCounts::default(),
            notable: VecDeque::with_capacity(RECORDS_KEPT),
            notable_total: 0,
        })
    }

    /// The store, when there is one.
    pub fn store(&self) -> Option<&'s Store> {
        self.store
    }

    /// An order the desk placed, filled, refused or let expire: counted, its fill told.
    pub fn order(&mut self, record: OrderRecord) {
        crate::metrics::ordered(&self.strategy, record.order.side, record.fill.as_ref());
        if let Some(fill) = &record.fill {
            self.notifier.send(|| Event::fill(fill));
        }
        self.orders.push(record);
    }

    /// A risk limit that stopped or closed a trade on `symbol` (for `decision_id`), told.
    pub fn risk(&self, symbol: &str, decision_id: &str, reason: &str) {
        self.notifier
            .send(|| Event::risk_limit(&self.strategy, symbol, decision_id, reason));
    }

    /// A decision and what the desk did with it (`execution`, its `fill`).
    pub fn decided(
        &mut self,
        decision: Decision,
        trigger: Trigger,
        execution: String,
        fill: Option<Fill>,
    ) {
        self.counts.add(&decision);
        if decision.vetoed {
            self.risk(&decision.symbol, &decision.id, &veto_reason(&decision));
        }
        if fill.is_some()
            || decision.escalated
            || decision.vetoed
            || decision.rejected
            || decision.action != Action::Hold
        {
            self.notable_total += 1;
            if self.notable.len() == RECORDS_KEPT {
                self.notable.pop_front();
            }
            self.notable.push_back(DecisionRecord {
                decision: decision.clone(),
                trigger,
                execution,
                fill,
            });
        }
        self.decisions.push(decision);
    }

    /// Whether a full batch of decisions waits to be written.
    pub fn flush_due(&self) -> bool {
        self.decisions.len() >= self.flush_every
    }

    /// Hands what was decided and ordered so far to the store, and saves the book and the weights
    /// as they are at `at` (a failed save is retried at the next flush).
    pub async fn flush(
        &mut self,
        at: i64,
        voters: &[Voter],
        ledger: &PaperExchange,
    ) -> Result<(), StoreError> {
        let decisions =
            std::mem::replace(&mut self.decisions, Vec::with_capacity(self.flush_every));
        self.writer
            .write(decisions, std::mem::take(&mut self.orders))
            .await?;
        if let Some(store) = self.store {
            if let Err(error) = save_state(store, &self.strategy, at, voters, ledger).await {
                tracing::warn!(%error, "saving the book and weights failed; retried at the next flush");
            }
        }
        Ok(())
    }

    /// Writes the rest, waits for the store, and saves the final book and weights.
    pub async fn finish(
        mut self,
        at: i64,
        voters: &[Voter],
        ledger: &PaperExchange,
    ) -> Result<Closed, StoreError> {
        let decisions = std::mem::take(&mut self.decisions);
        self.writer
            .write(decisions, std::mem::take(&mut self.orders))
            .await?;
        self.writer.finish().await?;
        if let Some(store) = self.store {
            save_state(store, &self.strategy, at, voters, ledger).await?;
        }
        Ok(Closed {
            counts: self.counts,
            notable: self.notable,
            notable_total: self.notable_total,
            audit: self.writer.head(),
        })
    }

    /// A voter's vote weight, as the metrics show it.
    pub fn weight(&self, assistant: &str, weight: f64) {
        crate::metrics::WEIGHTS
            .with_label_values(&[&self.strategy, assistant])
            .set(weight);
    }

    /// A cycle of `symbol` not run because its escalation is still open.
    pub fn held(&self, symbol: &str) {
        crate::metrics::HELD_FOR_ESCALATION
            .with_label_values(&[&self.strategy, symbol])
            .inc();
    }

    /// The portfolio after a scored step.
    pub fn portfolio(&self, equity: f64, capital: f64, drawdown: f64, max_drawdown: f64) {
        crate::metrics::portfolio(&self.strategy, equity, capital);
        crate::metrics::risk(&self.strategy, drawdown, max_drawdown);
    }
}

impl DecisionCounts {
    /// Counts `decision` by its outcome and action.
    fn add(&mut self, decision: &Decision) {
        self.total += 1;
        self.consensus += u64::from(decision.consensus_reached);
        self.escalated += u64::from(decision.escalated);
        self.vetoed += u64::from(decision.vetoed);
        self.rejected += u64::from(decision.rejected);
        match decision.action {
            Action::Hold => self.hold += 1,
            Action::Buy => self.buy += 1,
            Action::Sell => self.sell += 1,
        }
    }
}

/// Why a vetoed decision was stopped: the vetoing opinion's reasoning.
fn veto_reason(decision: &Decision) -> String {
    match decision.transcript.iter().rev().find(|o| o.veto) {
        Some(o) => format!("{} vetoed {:?}: {}", o.role, decision.action, o.reasoning),
        None => "vetoed".into(),
    }
}

/// Writes the vote weights and the book (positions, equity, cash) as they are at `at`.
async fn save_state(
    store: &Store,
    strategy: &str,
    at: i64,
    voters: &[Voter],
    ledger: &PaperExchange,
) -> Result<(), StoreError> {
    let weights: Vec<(String, f64)> = voters
        .iter()
        .map(|v| (v.assistant.clone(), v.weight))
        .collect();
    store.save_weights(strategy, at, &weights).await?;
    let positions: Vec<(String, String, String)> = ledger
        .positions()
        .map(|p| {
            (
                p.symbol.clone(),
                p.quantity.to_string(),
                p.entry_price.to_string(),
            )
        })
        .collect();
    store
        .save_portfolio(
            strategy,
            at,
            &ledger.equity().round_dp(8).to_string(),
            &ledger.cash().round_dp(8).to_string(),
            &positions,
        )
        .await
}
