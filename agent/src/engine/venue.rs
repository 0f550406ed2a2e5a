//! Where the desk's orders go (docs/architecture.md, "The engine"): the paper exchange, or Binance
//! spot with the paper ledger mirroring its fills. Either way the ledger (a [`PaperExchange`]) is the
//! book the team reads: cash, positions, equity.

use crate::exchange::binance::BinanceSpot;
use crate::exchange::{OrderRejection, PaperExchange, Placement};
use protocol::messages::Order;
use rust_decimal::Decimal;
use std::future::Future;

/// A market the desk places orders on.
pub trait Venue {
    /// Places `order`, priced near `reference`, and books what happened in `ledger`; a limit order
    /// that does not fill at once rests until `expires_at` (ms).
    fn submit(
        &self,
        ledger: &mut PaperExchange,
        order: &Order,
        reference: Decimal,
        expires_at: i64,
    ) -> impl Future<Output = Result<Placement, OrderRejection>>;
}

/// Paper trading: the ledger is the exchange (fees, slippage, the order book when one streams).
#[derive(Debug, Clone, Copy, Default)]
pub struct Paper;

impl Venue for Paper {
    async fn submit(
        &self,
        ledger: &mut PaperExchange,
        order: &Order,
        reference: Decimal,
        expires_at: i64,
    ) -> Result<Placement, OrderRejection> {
        ledger.place(order, reference, "decision", expires_at)
    }
}

/// `mode: live`: the order is signed and sent; the ledger books the exchange's fill.
impl Venue for BinanceSpot {
    async fn submit(
        &self,
        ledger: &mut PaperExchange,
        order: &Order,
        reference: Decimal,
        _expires_at: i64,
    ) -> Result<Placement, OrderRejection> {
        match self.place(order, reference).await {
            Ok(fill) => ledger.book_fill(order, &fill).map(Placement::Filled),
            Err(error) => {
                tracing::warn!(%error, "the live order did not go through");
                Err(OrderRejection::Exchange(error.to_string()))
            }
        }
    }
}

/// The venue a session trades on: paper unless the Strategy is live.
pub enum AnyVenue<'a> {
    /// `mode: paper`.
    Paper(Paper),
    /// `mode: live`, on this account.
    Live(&'a BinanceSpot),
}

impl Venue for AnyVenue<'_> {
    async fn submit(
        &self,
        ledger: &mut PaperExchange,
        order: &Order,
        reference: Decimal,
        expires_at: i64,
    ) -> Result<Placement, OrderRejection> {
        match self {
            Self::Paper(paper) => paper.submit(ledger, order, reference, expires_at).await,
            Self::Live(live) => live.submit(ledger, order, reference, expires_at).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::FeeModel;
    use protocol::messages::{OrderKind, Side};

    #[tokio::test]
    async fn paper_fills_a_market_order_in_the_ledger() {
        let mut ledger = PaperExchange::new(Decimal::from(1000), FeeModel::new(0.001, 0.0));
        let order = Order {
            decision_id: "d".into(),
            strategy: "s".into(),
            symbol: "BTCUSDT".into(),
            side: Side::Buy,
            kind: OrderKind::Market,
            quantity: Decimal::new(1, 2),
            limit_price: None,
            at: 0,
        };
        let placed = AnyVenue::Paper(Paper)
            .submit(&mut ledger, &order, Decimal::from(100), 0)
            .await;
        assert!(matches!(placed, Ok(Placement::Filled(_))), "{placed:?}");
        assert_eq!(
            ledger.position("BTCUSDT").unwrap().quantity,
            Decimal::new(1, 2)
        );
    }
}
