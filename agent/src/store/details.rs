//! What the console reads beside the paged listings: one decision with its whole debate, and the
//! equity curve (the portfolio snapshots).

use super::{DecisionRow, Snapshot, Store, StoreError};
use sqlx::Row;

/// The most portfolio snapshots [`Store::equity_curve`] returns.
pub const MAX_CURVE_POINTS: i64 = 5_000;

impl Store {
    /// One decision with every round's tally and the debate transcript (every opinion with its
    /// reasoning and evidence), or `None` when the strategy has no decision of that id.
    pub async fn decision(
        &self,
        strategy: &str,
        id: &str,
    ) -> Result<Option<DecisionRow>, StoreError> {
        let row = on_pool!(self, pool => sqlx::query("SELECT id, symbol, action, confidence, consensus_reached, escalated, vetoed, rejected, votes, transcript, price, decided_at, rounds, resolved_by FROM decisions WHERE strategy = $1 AND id = $2")
        .bind(strategy)
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(self.err("reading a decision"))?
        .map(|r| DecisionRow {
            id: r.get(0),
            symbol: r.get(1),
            action: r.get(2),
            confidence: r.get(3),
            consensus_reached: r.get(4),
            escalated: r.get(5),
            vetoed: r.get(6),
            rejected: r.get(7),
            votes: r.get(8),
            transcript: r.get(9),
            price: r.get(10),
            decided_at: r.get(11),
            rounds: r.get(12),
            resolved_by: r.get(13),
        }));
        Ok(row)
    }

    /// The latest `limit` (at most [`MAX_CURVE_POINTS`]) portfolio snapshots, oldest first.
    pub async fn equity_curve(
        &self,
        strategy: &str,
        limit: i64,
    ) -> Result<Vec<Snapshot>, StoreError> {
        let limit = limit.clamp(1, MAX_CURVE_POINTS);
        let mut points = on_pool!(self, pool => sqlx::query("SELECT at, equity, cash FROM portfolio WHERE strategy = $1 ORDER BY at DESC LIMIT $2")
            .bind(strategy)
            .bind(limit)
            .fetch_all(pool)
            .await
            .map_err(self.err("reading the equity curve"))?
            .into_iter()
            .map(|r| Snapshot { at: r.get(0), equity: r.get(1), cash: r.get(2) })
            .collect::<Vec<_>>());
        points.reverse();
        Ok(points)
    }
}
