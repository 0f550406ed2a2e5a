//! What the console reads beside the paged listings: one decision with its whole debate, and the
//! equity curve (the portfolio snapshots).

use super::{Store, StoreError};
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
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let row = on_pool!(self, pool => sqlx::query("SELECT id, symbol, action, confidence, consensus_reached, escalated, vetoed, rejected, votes, transcript, price, decided_at FROM decisions WHERE strategy = $1 AND id = $2")
        .bind(strategy)
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(self.err("reading a decision"))?
        .map(|r| {
            let json = |i: usize| serde_json::from_str::<serde_json::Value>(&r.get::<String, _>(i)).unwrap_or_default();
            serde_json::json!({
                "id": r.get::<String, _>(0),
                "symbol": r.get::<String, _>(1),
                "action": r.get::<String, _>(2),
                "confidence": r.get::<f64, _>(3),
                "consensusReached": r.get::<bool, _>(4),
                "escalated": r.get::<bool, _>(5),
                "vetoed": r.get::<bool, _>(6),
                "rejected": r.get::<bool, _>(7),
                "rounds": json(8),
                "transcript": json(9),
                "price": r.get::<f64, _>(10),
                "decidedAt": r.get::<i64, _>(11),
            })
        }));
        Ok(row)
    }

    /// The latest `limit` (at most [`MAX_CURVE_POINTS`]) portfolio snapshots, oldest first:
    /// `{"at", "equity", "cash"}` with the amounts as decimal strings.
    pub async fn equity_curve(
        &self,
        strategy: &str,
        limit: i64,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let limit = limit.clamp(1, MAX_CURVE_POINTS);
        let mut points = on_pool!(self, pool => sqlx::query("SELECT at, equity, cash FROM portfolio WHERE strategy = $1 ORDER BY at DESC LIMIT $2")
            .bind(strategy)
            .bind(limit)
            .fetch_all(pool)
            .await
            .map_err(self.err("reading the equity curve"))?
            .into_iter()
            .map(|r| serde_json::json!({"at": r.get::<i64, _>(0), "equity": r.get::<String, _>(1), "cash": r.get::<String, _>(2)}))
            .collect::<Vec<_>>());
        points.reverse();
        Ok(points)
    }
}
