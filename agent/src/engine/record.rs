//! The record of a session (docs/architecture.md, "Execution and the record"): every store write
//! and every metric and notification of the engine go through here, on one path. Decisions and
//! orders are buffered and written in batches ([`writer::RecordWriter`]) with their audit entries;
//! the book and the vote weights are saved with every batch, so the API shows them during a run
//! and a restarted coordinator resumes from them.

use super::writer::{AnchorSender, AuditHead, BookState, RecordWriter};
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
    /// A batch is written once its first decision is this old, full or not.
    flush_within: Option<std::time::Duration>,
    /// When the first decision of the batch filling now was made.
    batch_started: Option<std::time::Instant>,
    counts: DecisionCounts,
    notable: VecDeque<DecisionRecord>,
    notable_total: u64,
    portfolio_out: Option<PortfolioSender>,
    /// The executor and auditor services place the orders and keep the record: this one drops
    /// its orders and writes no decision, order or audit row.
    delegated: bool,
}

/// Where the book goes after each step: the latest only (sending never waits).
pub type PortfolioSender =
    tokio::sync::watch::Sender<Option<protocol::messages::PortfolioSnapshot>>;

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
            flush_within: None,
            batch_started: None,
            counts: DecisionCounts::default(),
            notable: VecDeque::with_capacity(RECORDS_KEPT),
            notable_total: 0,
            portfolio_out: None,
            delegated: false,
        })
    }

    /// With executor and auditor services (`delegated`), the desk's orders are the team's view
    /// only (not counted, told or stored) and no decision, order or audit row is written here.
    pub fn delegated(mut self, delegated: bool) -> Self {
        self.delegated = delegated;
        self
    }

    /// Also writes a batch once its first decision is `within` old (a coordinator's replay: its
    /// decisions reach the store and the API within that time, not only every full batch).
    pub fn flushed_within(mut self, within: Option<std::time::Duration>) -> Self {
        self.flush_within = within;
        self
    }

    /// Tells `anchor` the audit chain's head each time a batch adds audit rows, once they are
    /// stored (the coordinator publishes it as the anchor outside the database).
    pub fn anchored(mut self, anchor: Option<AnchorSender>) -> Self {
        self.writer.anchored(anchor);
        self
    }

    /// The store, when there is one.
    pub fn store(&self) -> Option<&'s Store> {
        self.store
    }

    /// An order the desk placed, filled, refused or let expire: counted, its fill told.
    pub fn order(&mut self, record: OrderRecord) {
        if self.delegated {
            return;
        }
        crate::metrics::ordered(&self.strategy, record.order.side, record.fill.as_ref());
        if let Some(fill) = &record.fill {
            self.notifier.send(|| Event::fill(fill));
        }
        self.orders.push(record);
    }

    /// The orders recorded since the last call (the executor service publishes them at once).
    pub fn take_orders(&mut self) -> Vec<OrderRecord> {
        std::mem::take(&mut self.orders)
    }

    /// A risk limit that stopped or closed a trade on `symbol` (for `decision_id`), told.
    pub fn risk(&self, symbol: &str, decision_id: &str, reason: &str) {
        if !self.delegated {
            self.limit_hit(symbol, decision_id, reason);
        }
    }

    fn limit_hit(&self, symbol: &str, decision_id: &str, reason: &str) {
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
            // the team's veto, told by whoever decides (the executor service tells its refusals)
            self.limit_hit(&decision.symbol, &decision.id, &veto_reason(&decision));
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
        self.batch_started
            .get_or_insert_with(std::time::Instant::now);
        if !self.delegated {
            self.decisions.push(decision);
        }
    }

    /// Whether a batch waits to be written: full, or as old as [`Record::flushed_within`] allows.
    pub fn flush_due(&self) -> bool {
        let old = match (self.flush_within, self.batch_started) {
            (Some(within), Some(started)) => started.elapsed() >= within,
            _ => false,
        };
        self.decisions.len() >= self.flush_every || old
    }

    /// Hands what was decided and ordered so far to the store, with the book and the weights as
    /// they are at `at`, which the writer saves after the batch (so the replay never waits for
    /// that save; while the store is out they wait with the decisions, the latest only).
    pub async fn flush(
        &mut self,
        at: i64,
        voters: &[Voter],
        ledger: &PaperExchange,
    ) -> Result<(), StoreError> {
        self.batch_started = None;
        let decisions =
            std::mem::replace(&mut self.decisions, Vec::with_capacity(self.flush_every));
        if self.store.is_some() {
            self.writer.book(book_state(at, voters, ledger));
        }
        self.writer
            .write(decisions, std::mem::take(&mut self.orders))
            .await
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
            book_state(at, voters, ledger)
                .save(store, &self.strategy)
                .await?;
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
    pub fn portfolio(
        &self,
        at: i64,
        (equity, open_positions): (f64, u32),
        capital: f64,
        drawdown: f64,
        max_drawdown: f64,
    ) {
        crate::metrics::portfolio(&self.strategy, equity, capital);
        crate::metrics::risk(&self.strategy, drawdown, max_drawdown);
        if let Some(out) = &self.portfolio_out {
            out.send_replace(Some(protocol::messages::PortfolioSnapshot {
                strategy: self.strategy.as_str().into(),
                equity,
                pnl: equity - capital,
                open_positions,
                at,
            }));
        }
    }

    /// Also tells `out` the book after each step (the coordinator publishes it for the operator).
    pub fn portfolio_to(mut self, out: Option<PortfolioSender>) -> Self {
        self.portfolio_out = out;
        self
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

/// The vote weights and the book (positions, equity, cash) as they are at `at`.
fn book_state(at: i64, voters: &[Voter], ledger: &PaperExchange) -> BookState {
    BookState {
        at,
        weights: voters
            .iter()
            .map(|v| (v.assistant.clone(), v.weight))
            .collect(),
        equity: ledger.equity().round_dp(8).to_string(),
        cash: ledger.cash().round_dp(8).to_string(),
        positions: ledger
            .positions()
            .map(|p| {
                (
                    p.symbol.to_string(),
                    p.quantity.to_string(),
                    p.entry_price.to_string(),
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditKey;
    use std::time::Duration;

    fn decision(id: &str) -> Decision {
        Decision {
            id: id.into(),
            strategy: "s".into(),
            symbol: "BTCUSDT".into(),
            action: Action::Hold,
            confidence: 0.0,
            consensus_reached: false,
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

    #[tokio::test]
    async fn a_batch_is_due_when_full_or_as_old_as_allowed() {
        let ledger = PaperExchange::new(1000.into(), crate::exchange::FeeModel::new(0.0, 0.0));
        let mut full_only = Record::new(None, "s", &AuditKey::Unkeyed, Notifier::none(), 2)
            .await
            .unwrap();
        full_only.decided(decision("a"), Trigger::Schedule, String::new(), None);
        assert!(!full_only.flush_due(), "one of two, and no age limit");
        full_only.decided(decision("b"), Trigger::Schedule, String::new(), None);
        assert!(full_only.flush_due(), "full");

        let mut timely = Record::new(None, "s", &AuditKey::Unkeyed, Notifier::none(), 2048)
            .await
            .unwrap()
            .flushed_within(Some(Duration::from_millis(20)));
        timely.decided(decision("c"), Trigger::Alert, String::new(), None);
        assert!(!timely.flush_due(), "young");
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(
            timely.flush_due(),
            "its first decision is older than allowed"
        );
        timely.flush(0, &[], &ledger).await.unwrap();
        assert!(
            !timely.flush_due(),
            "a new batch starts with the next decision"
        );
        assert_eq!(
            timely.finish(0, &[], &ledger).await.unwrap().counts.total,
            1
        );
    }
}
