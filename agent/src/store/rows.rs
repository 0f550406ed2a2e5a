//! Decisions and orders as the store holds them, with the digest of that content: the audit entry
//! of each row commits to its digest, so `audit verify` sees an edit to a row itself, not only to
//! the audit log (docs/architecture.md, "Storage").

use super::{kind, round_scores, side, transcript, OrderRecord, Store};
use crate::audit::content_digest;
use protocol::messages::Decision;

/// A `decisions` row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DecisionRow {
    /// The decision (cycle) id, unique within the strategy.
    pub id: String,
    /// The symbol decided on.
    pub symbol: String,
    /// `BUY`, `SELL` or `HOLD`.
    pub action: String,
    /// Winning share of the final tally, 0 to 1.
    pub confidence: f64,
    /// Whether the winning share reached the policy's threshold.
    pub consensus_reached: bool,
    /// Whether a human was asked.
    pub escalated: bool,
    /// Whether a veto forced HOLD.
    pub vetoed: bool,
    /// Whether the cycle was dropped (policy or a human's rejection): no order follows.
    pub rejected: bool,
    /// Who answered the escalation, when someone did.
    pub resolved_by: Option<String>,
    /// Number of debate rounds held.
    pub rounds: i32,
    /// Every round's scores (JSON).
    pub votes: String,
    /// The close the decision was taken on.
    pub price: f64,
    /// When it was decided, ms since the epoch.
    pub decided_at: i64,
    /// The debate (JSON).
    pub transcript: String,
}

impl DecisionRow {
    /// The row of `d`, its rounds and transcript as JSON.
    pub fn of(d: &Decision) -> Self {
        Self {
            id: d.id.to_string(),
            symbol: d.symbol.to_string(),
            action: d.action.as_str().to_string(),
            confidence: d.confidence,
            consensus_reached: d.consensus_reached,
            escalated: d.escalated,
            vetoed: d.vetoed,
            rejected: d.rejected,
            resolved_by: d.resolved_by.clone(),
            rounds: d.rounds.len() as i32,
            votes: round_scores(d),
            price: d.price,
            decided_at: d.decided_at,
            transcript: transcript(d),
        }
    }

    /// SHA-256 of every column (floats by their bits, so nothing is lost to formatting). Who
    /// resolved it comes last and only when someone did, so the digests of the decisions nobody
    /// resolved (every backtest's) are what they were before the column existed.
    pub fn digest(&self) -> String {
        let resolved_by = self
            .resolved_by
            .as_deref()
            .map(|by| format!("resolved_by={by}"));
        let columns = [
            &self.id,
            &self.symbol,
            &self.action,
            &self.confidence.to_bits().to_string(),
            flag(self.consensus_reached),
            flag(self.escalated),
            flag(self.vetoed),
            flag(self.rejected),
            &self.rounds.to_string(),
            &self.votes,
            &self.price.to_bits().to_string(),
            &self.decided_at.to_string(),
            &self.transcript,
        ];
        match &resolved_by {
            Some(by) => content_digest(&[&columns[..], &[by.as_str()]].concat()),
            None => content_digest(&columns),
        }
    }
}

/// An `orders` row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderRow {
    /// The decision the order carries out: the row's key within the strategy.
    pub decision_id: String,
    /// The symbol traded.
    pub symbol: String,
    /// `BUY` or `SELL`.
    pub side: String,
    /// `MARKET` or `LIMIT`.
    pub kind: String,
    /// Quantity ordered in the base asset, as an exact decimal string.
    pub quantity: String,
    /// `FILLED`, `REJECTED` or `EXPIRED`.
    pub status: String,
    /// Fill price as a decimal string; None unless filled.
    pub price: Option<String>,
    /// Fee paid in the quote asset, as a decimal string; None unless filled.
    pub fee: Option<String>,
    /// Why it was placed, or why it was refused or expired.
    pub reason: String,
    /// The order's time, ms since the epoch.
    pub at: i64,
}

impl OrderRow {
    /// The row of `o`, decimals as strings so nothing is lost.
    pub fn of(o: &OrderRecord) -> Self {
        Self {
            decision_id: o.order.decision_id.to_string(),
            symbol: o.order.symbol.to_string(),
            side: side(o.order.side).to_string(),
            kind: kind(o.order.kind).to_string(),
            quantity: o.order.quantity.to_string(),
            status: o.status.as_str().to_string(),
            price: o.fill.as_ref().map(|f| f.price.to_string()),
            fee: o.fill.as_ref().map(|f| f.fee.to_string()),
            reason: o.reason.clone(),
            at: o.order.at,
        }
    }

    /// SHA-256 of every column.
    pub fn digest(&self) -> String {
        let optional = |v: &Option<String>| v.as_ref().map_or("-".to_string(), |v| format!("+{v}"));
        content_digest(&[
            &self.decision_id,
            &self.symbol,
            &self.side,
            &self.kind,
            &self.quantity,
            &self.status,
            &optional(&self.price),
            &optional(&self.fee),
            &self.reason,
            &self.at.to_string(),
        ])
    }
}

fn flag(on: bool) -> &'static str {
    if on {
        "1"
    } else {
        "0"
    }
}

/// What [`super::Store::row_digests`] pages through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audited {
    /// The `decisions` table, keyed by (strategy, id).
    Decisions,
    /// The `orders` table, keyed by (strategy, decision id).
    Orders,
}

impl Store {
    /// At most `limit` rows of `table` after the key `after` (strategy, id; from the start when
    /// `None`), each as (strategy, id, digest of its content), in key order.
    pub async fn row_digests(
        &self,
        table: Audited,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<(String, String, String)>, super::StoreError> {
        use sqlx::Row;
        let (strategy, id) = after.unwrap_or(("", ""));
        let sql = match table {
            Audited::Decisions => "SELECT strategy, id, symbol, action, confidence, consensus_reached, escalated, vetoed, rejected, rounds, votes, price, decided_at, transcript, resolved_by FROM decisions WHERE (strategy, id) > ($1, $2) ORDER BY strategy, id LIMIT $3",
            Audited::Orders => "SELECT strategy, decision_id, symbol, side, kind, quantity, status, price, fee, reason, at FROM orders WHERE (strategy, decision_id) > ($1, $2) ORDER BY strategy, decision_id LIMIT $3",
        };
        let rows = on_pool!(self, pool => sqlx::query(sql)
            .bind(strategy)
            .bind(id)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(self.err("reading rows to verify"))?
            .into_iter()
            .map(|r| {
                let digest = match table {
                    Audited::Decisions => DecisionRow {
                        id: r.get(1),
                        symbol: r.get(2),
                        action: r.get(3),
                        confidence: r.get(4),
                        consensus_reached: r.get(5),
                        escalated: r.get(6),
                        vetoed: r.get(7),
                        rejected: r.get(8),
                        rounds: r.get(9),
                        votes: r.get(10),
                        price: r.get(11),
                        decided_at: r.get(12),
                        transcript: r.get(13),
                        resolved_by: r.get(14),
                    }
                    .digest(),
                    Audited::Orders => OrderRow {
                        decision_id: r.get(1),
                        symbol: r.get(2),
                        side: r.get(3),
                        kind: r.get(4),
                        quantity: r.get(5),
                        status: r.get(6),
                        price: r.get(7),
                        fee: r.get(8),
                        reason: r.get(9),
                        at: r.get(10),
                    }
                    .digest(),
                };
                (r.get::<String, _>(0), r.get::<String, _>(1), digest)
            })
            .collect::<Vec<_>>());
        Ok(rows)
    }
}
