//! What the console reads beside the paged listings: one decision with its whole debate, and the
//! equity curve (the portfolio snapshots).

use super::{DecisionRow, Snapshot, Store, StoreError};

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
        let row = on_pool!(self, pool => sqlx::query_as("SELECT id, symbol, action, confidence, consensus_reached, escalated, vetoed, rejected, votes, transcript, price, decided_at, rounds, resolved_by FROM decisions WHERE strategy = $1 AND id = $2")
            .bind(strategy)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(self.err("reading a decision"))?);
        Ok(row)
    }

    /// The latest `limit` (at most [`MAX_CURVE_POINTS`]) portfolio snapshots, oldest first.
    pub async fn equity_curve(
        &self,
        strategy: &str,
        limit: i64,
    ) -> Result<Vec<Snapshot>, StoreError> {
        let limit = limit.clamp(1, MAX_CURVE_POINTS);
        let mut points: Vec<Snapshot> = on_pool!(self, pool => sqlx::query_as("SELECT at, equity, cash FROM portfolio WHERE strategy = $1 ORDER BY at DESC LIMIT $2")
            .bind(strategy)
            .bind(limit)
            .fetch_all(pool)
            .await
            .map_err(self.err("reading the equity curve"))?);
        points.reverse();
        Ok(points)
    }
}
