//! The paper exchange: market orders filled at a reference price (the candle's close, or the stop /
//! take-profit level that a later candle crosses) with fees and slippage; positions, cash and equity
//! kept in exact decimals. Orders are idempotent by decision id: a replayed decision never trades twice.

use protocol::ids::{DecisionId, Symbol};
use protocol::messages::{Fill, Order, OrderKind, Side};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashSet};

/// Fees and slippage of the exchange.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeeModel {
    /// Fee per fill as a fraction of its notional (0.001 = 0.1%).
    pub fee_rate: Decimal,
    /// Price slippage against the taker, in basis points.
    pub slippage_bps: Decimal,
}

impl FeeModel {
    /// From the Strategy's `exchange.feeRate` (fraction) and `exchange.slippageBps`.
    pub fn new(fee_rate: f64, slippage_bps: f64) -> Self {
        Self {
            fee_rate: decimal(fee_rate),
            slippage_bps: decimal(slippage_bps),
        }
    }

    /// The price a taker gets on `side` for a reference price.
    pub fn execution_price(&self, side: Side, reference: Decimal) -> Decimal {
        let slip = reference * self.slippage_bps / Decimal::from(10_000);
        match side {
            Side::Buy => reference + slip,
            Side::Sell => reference - slip,
        }
    }
}

/// An f64 as a decimal (prices and rates from candles and manifests); non-finite values become 0.
pub fn decimal(value: f64) -> Decimal {
    Decimal::from_f64(value).unwrap_or_default()
}

/// An open position.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    /// The symbol held.
    pub symbol: Symbol,
    /// Quantity held, in the base asset (always positive: long only).
    pub quantity: Decimal,
    /// Average entry price, fees excluded.
    pub entry_price: Decimal,
    /// Cash spent to open it, fees included (for the trade's PnL).
    pub cost: Decimal,
    /// When its first buy filled, ms since the epoch.
    pub opened_at: i64,
}

/// A round trip, once the position is closed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClosedTrade {
    /// The symbol traded.
    pub symbol: Symbol,
    /// When the position was first bought, ms since the epoch.
    pub opened_at: i64,
    /// When the sell that closed it (or part of it) filled, ms since the epoch.
    pub closed_at: i64,
    /// The position's average entry price, fees excluded.
    pub entry_price: Decimal,
    /// The sell's fill price.
    pub exit_price: Decimal,
    /// Quantity sold, in the base asset (part of the position on a partial sell).
    pub quantity: Decimal,
    /// Proceeds minus cost, fees included.
    pub pnl: Decimal,
    /// Why it closed: `decision`, `stop-loss`, `take-profit`, or `exchange` for a live fill.
    pub reason: String,
}

/// Why an order was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrderRejection {
    #[error("decision {0} has already traded")]
    /// This decision id already has an order (filled or resting).
    Duplicate(DecisionId),
    #[error("order for {symbol}: needs {needed} in cash, {available} available")]
    /// A buy costs more than the cash left.
    InsufficientCash {
        /// The order's symbol.
        symbol: Symbol,
        /// Quantity × price plus the fee, in the quote asset.
        needed: Decimal,
        /// Cash at hand, in the quote asset.
        available: Decimal,
    },
    #[error("order for {symbol}: selling {wanted}, holding {held}")]
    /// A sell is for more than is held (no short selling).
    InsufficientPosition {
        /// The order's symbol.
        symbol: Symbol,
        /// Quantity to sell.
        wanted: Decimal,
        /// Quantity held (0 without a position).
        held: Decimal,
    },
    #[error("order for {symbol}: quantity must be positive")]
    /// The quantity is zero or negative.
    ZeroQuantity {
        /// The order's symbol.
        symbol: Symbol,
    },
    #[error("limit order for {symbol}: no limit price")]
    /// A limit order without its limit price.
    NoLimitPrice {
        /// The order's symbol.
        symbol: Symbol,
    },
    #[error("the exchange did not fill it: {0}")]
    /// The live exchange refused or failed the order; its error, as text.
    Exchange(String),
}

/// A limit order waiting for a candle to reach its price.
#[derive(Debug, Clone, PartialEq)]
pub struct RestingOrder {
    /// The order as placed, its limit price set.
    pub order: Order,
    /// Why it was placed (`decision`), carried to its trade when it fills.
    pub reason: String,
    /// The order expires unfilled at this time (ms since the epoch).
    pub expires_at: i64,
}

/// What became of a placed order.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// It filled at once.
    Filled(Fill),
    /// A limit order the price has not reached: it rests until filled or expired.
    Resting,
}

/// A simulated spot account: cash, long positions and resting limit orders, in exact decimals. It
/// also serves as the live mode's ledger, booking the real exchange's fills.
#[derive(Debug, Clone)]
pub struct PaperExchange {
    fees: FeeModel,
    cash: Decimal,
    positions: BTreeMap<Symbol, Position>,
    prices: BTreeMap<Symbol, Decimal>,
    traded: HashSet<DecisionId>,
    trades: Vec<ClosedTrade>,
    fees_paid: Decimal,
    resting: Vec<RestingOrder>,
    /// The latest streamed order book per symbol and when it arrived (ms).
    books: BTreeMap<Symbol, (crate::market::book::Depth, i64)>,
    /// Sum of every fill's notional (buys and sells), for turnover.
    traded_notional: Decimal,
}

/// How old a streamed book may be and still price a market order.
pub const BOOK_FRESH_MS: i64 = 5_000;

impl PaperExchange {
    /// An account holding `capital` in cash (quote asset), no positions, trading under `fees`.
    pub fn new(capital: Decimal, fees: FeeModel) -> Self {
        Self {
            fees,
            cash: capital,
            positions: BTreeMap::new(),
            prices: BTreeMap::new(),
            traded: HashSet::new(),
            trades: Vec::new(),
            fees_paid: Decimal::ZERO,
            resting: Vec::new(),
            books: BTreeMap::new(),
            traded_notional: Decimal::ZERO,
        }
    }

    /// Sets `symbol`'s position to `held`, what the exchange account holds (a live book's
    /// reconciliation), priced at `price` for what is added, at `at`; the cash moves by the value
    /// of the difference (never below zero). Returns the quantity the book held before, when it
    /// differed.
    pub fn reconcile(
        &mut self,
        symbol: &str,
        held: Decimal,
        price: Decimal,
        at: i64,
    ) -> Option<Decimal> {
        let before = self
            .positions
            .get(symbol)
            .map_or(Decimal::ZERO, |p| p.quantity);
        if before == held {
            return None;
        }
        let value = (held - before).checked_mul(price).unwrap_or_default();
        self.cash = self
            .cash
            .checked_sub(value)
            .unwrap_or_default()
            .max(Decimal::ZERO);
        if held.is_zero() {
            self.positions.remove(symbol);
        } else if let Some(position) = self.positions.get_mut(symbol) {
            position.cost = position
                .cost
                .checked_mul(held)
                .and_then(|c| c.checked_div(before))
                .unwrap_or(position.cost);
            position.quantity = held;
        } else {
            self.positions.insert(
                symbol.into(),
                Position {
                    symbol: symbol.into(),
                    quantity: held,
                    entry_price: price,
                    cost: value,
                    opened_at: at,
                },
            );
        }
        self.prices.insert(symbol.into(), price);
        Some(before)
    }

    /// Starts from a book written before (a restarted live run): `cash` and each (symbol,
    /// quantity, entry price), marked at their entry until a candle comes. The cost of a position
    /// is taken as its quantity at its entry price (the fees it paid are not stored), and it counts
    /// as held long enough for the team's minimum hold (its opening time is not stored either).
    /// (A new exchange has no marks yet, so [`follow`](Self::follow) marks them at their entry.)
    pub fn restore(&mut self, cash: Decimal, positions: &[(String, Decimal, Decimal)]) {
        let positions: Vec<_> = positions
            .iter()
            .map(
                |(symbol, quantity, entry_price)| protocol::messages::BookPosition {
                    symbol: symbol.as_str().into(),
                    quantity: *quantity,
                    entry_price: *entry_price,
                    opened_at: i64::MIN / 2,
                },
            )
            .collect();
        self.follow(cash, &positions);
    }

    /// Takes another book's cash and positions (the coordinator's view following the executor's
    /// book, services mode): each position with its opening time, so its minimum hold counts as the
    /// executor's does; a position already marked keeps its mark until the next candle, one not
    /// yet marked is marked at its entry. Its cost is its quantity at its entry price. Resting
    /// orders stay as they are.
    pub fn follow(&mut self, cash: Decimal, positions: &[protocol::messages::BookPosition]) {
        self.cash = cash;
        self.positions.clear();
        for p in positions.iter().filter(|p| !p.quantity.is_zero()) {
            self.positions.insert(
                p.symbol.clone(),
                Position {
                    symbol: p.symbol.clone(),
                    quantity: p.quantity,
                    entry_price: p.entry_price,
                    cost: p.quantity.checked_mul(p.entry_price).unwrap_or_default(),
                    opened_at: p.opened_at,
                },
            );
            self.prices.entry(p.symbol.clone()).or_insert(p.entry_price);
        }
    }

    /// Cash not in positions, in the quote asset (a resting buy does not reserve any).
    pub fn cash(&self) -> Decimal {
        self.cash
    }

    /// The open position in `symbol`; None when flat.
    pub fn position(&self, symbol: &str) -> Option<&Position> {
        self.positions.get(symbol)
    }

    /// Every open position, by symbol.
    pub fn positions(&self) -> impl Iterator<Item = &Position> {
        self.positions.values()
    }

    /// Every closed trade so far, in the order the sells filled.
    pub fn trades(&self) -> &[ClosedTrade] {
        &self.trades
    }

    /// Fees paid on every fill so far, in the quote asset.
    pub fn fees_paid(&self) -> Decimal {
        self.fees_paid
    }

    /// The notional of every fill so far, buys and sells together.
    pub fn traded_notional(&self) -> Decimal {
        self.traded_notional
    }

    /// The value of every position at its latest price, over equity (0 when flat).
    pub fn exposure(&self) -> f64 {
        let equity = self.equity();
        if equity <= Decimal::ZERO {
            return 0.0;
        }
        ((equity - self.cash) / equity).to_f64().unwrap_or(0.0)
    }

    /// Records the latest price of a symbol (marks positions to market).
    pub fn mark(&mut self, symbol: &str, price: Decimal) {
        match self.prices.get_mut(symbol) {
            Some(p) => *p = price,
            None => {
                self.prices.insert(symbol.into(), price);
            }
        }
    }

    /// Cash plus every position at its latest price.
    pub fn equity(&self) -> Decimal {
        self.cash
            + self
                .positions
                .values()
                .map(|p| {
                    let price = self.prices.get(&p.symbol).copied().unwrap_or(p.entry_price);
                    p.quantity * price
                })
                .sum::<Decimal>()
    }

    /// Fills a market order at `reference` (± slippage), once per decision id.
    pub fn execute(
        &mut self,
        order: &Order,
        reference: Decimal,
        reason: &str,
    ) -> Result<Fill, OrderRejection> {
        if self.traded.contains(&order.decision_id) {
            return Err(OrderRejection::Duplicate(order.decision_id.clone()));
        }
        if order.quantity <= Decimal::ZERO {
            return Err(OrderRejection::ZeroQuantity {
                symbol: order.symbol.clone(),
            });
        }
        let price = self
            .book_price(order)
            .unwrap_or_else(|| self.fees.execution_price(order.side, reference));
        let fill = self.settle(order, price, order.at, reason)?;
        self.mark(&order.symbol, reference);
        Ok(fill)
    }

    /// Records a streamed order book (`at`: when it arrived), so that market orders of its symbol
    /// fill by walking its levels while it is fresh, instead of by the fixed slippage.
    pub fn update_book(&mut self, depth: crate::market::book::Depth, at: i64) {
        self.books.insert(depth.symbol.as_str().into(), (depth, at));
    }

    /// The volume-weighted price of a market order against a fresh book deep enough for it.
    fn book_price(&self, order: &Order) -> Option<Decimal> {
        let (depth, at) = self.books.get(&order.symbol)?;
        if (order.at - at).abs() > BOOK_FRESH_MS {
            return None;
        }
        let quantity = order.quantity.to_f64()?;
        let price = depth.sweep(order.side == Side::Buy, quantity)?;
        Decimal::from_f64(price).map(|p| p.round_dp(8))
    }

    /// Places an order: a market order fills at once ([`Self::execute`]); a limit order fills at once
    /// when the price is already at or better than its limit, and otherwise rests until a candle
    /// reaches it ([`Self::fill_resting`]) or it expires at `expires_at` ([`Self::expire_resting`]).
    /// Cash or the position is checked when it is placed and again when it fills.
    pub fn place(
        &mut self,
        order: &Order,
        reference: Decimal,
        reason: &str,
        expires_at: i64,
    ) -> Result<Placement, OrderRejection> {
        if order.kind == OrderKind::Market {
            return self
                .execute(order, reference, reason)
                .map(Placement::Filled);
        }
        let Some(limit) = order.limit_price else {
            return Err(OrderRejection::NoLimitPrice {
                symbol: order.symbol.clone(),
            });
        };
        if self.traded.contains(&order.decision_id) {
            return Err(OrderRejection::Duplicate(order.decision_id.clone()));
        }
        if order.quantity <= Decimal::ZERO {
            return Err(OrderRejection::ZeroQuantity {
                symbol: order.symbol.clone(),
            });
        }
        let price = self.fees.execution_price(order.side, reference);
        let marketable = match order.side {
            Side::Buy => price <= limit,
            Side::Sell => price >= limit,
        };
        if marketable {
            let fill = self.settle(order, price, order.at, reason)?;
            self.mark(&order.symbol, reference);
            return Ok(Placement::Filled(fill));
        }
        // what the fill will need must be there now
        let fee = (order.quantity * limit * self.fees.fee_rate).round_dp(8);
        self.affordable(order, limit, fee)?;
        self.traded.insert(order.decision_id.clone());
        self.resting.push(RestingOrder {
            order: order.clone(),
            reason: reason.to_string(),
            expires_at,
        });
        Ok(Placement::Resting)
    }

    /// The resting limit orders of a symbol.
    pub fn resting<'a>(&'a self, symbol: &'a str) -> impl Iterator<Item = &'a RestingOrder> {
        self.resting
            .iter()
            .filter(move |r| r.order.symbol == symbol)
    }

    /// Fills the resting limit orders of `symbol` that the candle reaches, at their limit or at the
    /// open when the candle gaps through it (the better price), without slippage (a resting order is
    /// a maker order). Each comes back with its fill, or why it could not fill.
    pub fn fill_resting(
        &mut self,
        symbol: &str,
        open: Decimal,
        high: Decimal,
        low: Decimal,
        at: i64,
    ) -> Vec<(RestingOrder, Result<Fill, OrderRejection>)> {
        let (reached, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.resting)
            .into_iter()
            .partition(|r| {
                let limit = r.order.limit_price.unwrap_or_default();
                r.order.symbol == symbol
                    && match r.order.side {
                        Side::Buy => low <= limit,
                        Side::Sell => high >= limit,
                    }
            });
        self.resting = waiting;
        reached
            .into_iter()
            .map(|r| {
                let limit = r.order.limit_price.unwrap_or_default();
                let price = match r.order.side {
                    Side::Buy => open.min(limit),
                    Side::Sell => open.max(limit),
                };
                let result = self.settle(&r.order, price, at, &r.reason);
                (r, result)
            })
            .collect()
    }

    /// Removes and returns the resting orders of `symbol` whose time ran out at `at`.
    pub fn expire_resting(&mut self, symbol: &str, at: i64) -> Vec<RestingOrder> {
        let (expired, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.resting)
            .into_iter()
            .partition(|r| r.order.symbol == symbol && r.expires_at <= at);
        self.resting = waiting;
        expired
    }

    /// Whether `order` can be paid for (buys, `fee` included) or delivered (sells) at `price`.
    fn affordable(
        &self,
        order: &Order,
        price: Decimal,
        fee: Decimal,
    ) -> Result<(), OrderRejection> {
        match order.side {
            Side::Buy => {
                let needed = order.quantity * price + fee;
                if needed > self.cash {
                    return Err(OrderRejection::InsufficientCash {
                        symbol: order.symbol.clone(),
                        needed,
                        available: self.cash,
                    });
                }
            }
            Side::Sell => {
                let held = self
                    .positions
                    .get(&order.symbol)
                    .map_or(Decimal::ZERO, |p| p.quantity);
                if order.quantity > held {
                    return Err(OrderRejection::InsufficientPosition {
                        symbol: order.symbol.clone(),
                        wanted: order.quantity,
                        held,
                    });
                }
            }
        }
        Ok(())
    }

    /// Books a fill at `price`: cash, position, fees, the closed trade of a sell.
    fn settle(
        &mut self,
        order: &Order,
        price: Decimal,
        at: i64,
        reason: &str,
    ) -> Result<Fill, OrderRejection> {
        let fee = (order.quantity * price * self.fees.fee_rate).round_dp(8);
        self.settle_with_fee(order, price, fee, at, reason)
    }

    /// Books what a real exchange filled (its quantity, price and commission), so that the book
    /// mirrors the account the orders went to.
    pub fn book_fill(&mut self, order: &Order, fill: &Fill) -> Result<Fill, OrderRejection> {
        if self.traded.contains(&order.decision_id) {
            return Err(OrderRejection::Duplicate(order.decision_id.clone()));
        }
        let filled = Order {
            quantity: fill.quantity,
            ..order.clone()
        };
        let booked = self.settle_with_fee(&filled, fill.price, fill.fee, fill.at, "exchange")?;
        self.mark(&order.symbol, fill.price);
        Ok(booked)
    }

    fn settle_with_fee(
        &mut self,
        order: &Order,
        price: Decimal,
        fee: Decimal,
        at: i64,
        reason: &str,
    ) -> Result<Fill, OrderRejection> {
        self.affordable(order, price, fee)?;
        let notional = order.quantity * price;
        match order.side {
            Side::Buy => {
                let needed = notional + fee;
                self.cash -= needed;
                let position = self
                    .positions
                    .entry(order.symbol.clone())
                    .or_insert_with(|| Position {
                        symbol: order.symbol.clone(),
                        quantity: Decimal::ZERO,
                        entry_price: Decimal::ZERO,
                        cost: Decimal::ZERO,
                        opened_at: at,
                    });
                let quantity = position.quantity + order.quantity;
                position.entry_price =
                    (position.entry_price * position.quantity + price * order.quantity) / quantity;
                position.quantity = quantity;
                position.cost += needed;
            }
            Side::Sell => {
                let proceeds = notional - fee;
                self.cash += proceeds;
                let position = self
                    .positions
                    .get_mut(&order.symbol)
                    .expect("affordable: a sell has a position to take from");
                let share = order.quantity / position.quantity;
                let cost = (position.cost * share).round_dp(8);
                position.cost -= cost;
                position.quantity -= order.quantity;
                self.trades.push(ClosedTrade {
                    symbol: order.symbol.clone(),
                    opened_at: position.opened_at,
                    closed_at: at,
                    entry_price: position.entry_price,
                    exit_price: price,
                    quantity: order.quantity,
                    pnl: proceeds - cost,
                    reason: reason.to_string(),
                });
                if position.quantity.is_zero() {
                    self.positions.remove(&order.symbol);
                }
            }
        }
        self.fees_paid += fee;
        self.traded_notional += notional;
        self.traded.insert(order.decision_id.clone());
        Ok(Fill {
            decision_id: order.decision_id.clone(),
            strategy: order.strategy.clone(),
            symbol: order.symbol.clone(),
            side: order.side,
            quantity: order.quantity,
            price,
            fee,
            at,
        })
    }

    /// The position's stop-loss or take-profit exit on a candle, if the candle reaches one:
    /// `(price, reason)`. A candle that gaps through a level fills at its open (the worse price for a
    /// stop, the better for a take-profit); when both are inside one candle, the stop is assumed first.
    pub fn exit_on_candle(
        &self,
        symbol: &str,
        open: f64,
        high: f64,
        low: f64,
        stop_loss: f64,
        take_profit: f64,
    ) -> Option<(Decimal, &'static str)> {
        let position = self.positions.get(symbol)?;
        let entry = position.entry_price.to_f64()?;
        let stop = entry * (1.0 - stop_loss);
        let take = entry * (1.0 + take_profit);
        if low <= stop {
            return Some((decimal(open.min(stop)), "stop-loss"));
        }
        if high >= take {
            return Some((decimal(open.max(take)), "take-profit"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: &str, side: Side, quantity: &str) -> Order {
        Order {
            decision_id: id.into(),
            strategy: "s".into(),
            symbol: "BTCUSDT".into(),
            side,
            kind: OrderKind::Market,
            quantity: quantity.parse().unwrap(),
            limit_price: None,
            at: 0,
        }
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn limit(id: &str, side: Side, quantity: &str, price: &str) -> Order {
        Order {
            kind: OrderKind::Limit,
            limit_price: Some(price.parse().unwrap()),
            ..order(id, side, quantity)
        }
    }

    #[test]
    fn a_limit_order_rests_until_a_candle_reaches_it_then_fills_at_its_price() {
        let mut ex = PaperExchange::new(d("10000"), FeeModel::new(0.001, 10.0));
        let buy = limit("d1", Side::Buy, "0.1", "19900");
        assert_eq!(
            ex.place(&buy, d("20000"), "decision", 3_000).unwrap(),
            Placement::Resting
        );
        assert_eq!(ex.resting("BTCUSDT").count(), 1);
        assert_eq!(ex.cash(), d("10000"), "nothing is paid while it rests");
        // a replayed decision cannot place it again
        assert!(matches!(
            ex.place(&buy, d("20000"), "decision", 3_000),
            Err(OrderRejection::Duplicate(_))
        ));
        // a candle that stays above the limit leaves it resting
        assert!(ex
            .fill_resting("BTCUSDT", d("20000"), d("20100"), d("19950"), 1_000)
            .is_empty());
        // a candle that trades through it fills it at the limit, without slippage
        let filled = ex.fill_resting("BTCUSDT", d("19980"), d("20000"), d("19850"), 2_000);
        let (resting, fill) = &filled[0];
        let fill = fill.as_ref().unwrap();
        assert_eq!(
            (resting.order.decision_id.as_str(), fill.price, fill.at),
            ("d1", d("19900"), 2_000)
        );
        assert_eq!(fill.fee, d("1.99"));
        assert_eq!(ex.cash(), d("10000") - d("1990") - d("1.99"));
        assert_eq!(ex.resting("BTCUSDT").count(), 0);
        // a sell limit above the market; the candle gaps up through it: filled at the (better) open
        let sell = limit("d2", Side::Sell, "0.1", "20500");
        assert_eq!(
            ex.place(&sell, d("20000"), "decision", 9_000).unwrap(),
            Placement::Resting
        );
        let filled = ex.fill_resting("BTCUSDT", d("20600"), d("20700"), d("20550"), 3_000);
        assert_eq!(filled[0].1.as_ref().unwrap().price, d("20600"));
        assert!(ex.position("BTCUSDT").is_none());
    }

    #[test]
    fn a_fresh_streamed_book_prices_market_orders_and_a_stale_one_does_not() {
        let mut ex = PaperExchange::new(d("100000"), FeeModel::new(0.0, 10.0));
        ex.update_book(
            crate::market::book::Depth {
                symbol: "BTCUSDT".into(),
                last_update_id: 1,
                bids: vec![(19990.0, 1.0)],
                asks: vec![(20010.0, 0.05), (20030.0, 1.0)],
            },
            0,
        );
        // 0.05 at 20010 and 0.05 at 20030
        let fill = ex
            .execute(&order("d1", Side::Buy, "0.1"), d("20000"), "decision")
            .unwrap();
        assert_eq!(fill.price, d("20020"));
        // the book is too old for a later order: the slippage model prices it (+10 bps)
        let mut late = order("d2", Side::Sell, "0.1");
        late.at = BOOK_FRESH_MS + 1;
        let fill = ex.execute(&late, d("20000"), "decision").unwrap();
        assert_eq!(fill.price, d("19980"));
    }

    #[test]
    fn a_marketable_limit_fills_at_once_and_an_unreached_one_expires() {
        let mut ex = PaperExchange::new(d("10000"), FeeModel::new(0.001, 10.0));
        // limit above the market for a buy: fills now at the market price with slippage
        let placed = ex
            .place(
                &limit("d1", Side::Buy, "0.1", "20100"),
                d("20000"),
                "decision",
                0,
            )
            .unwrap();
        let Placement::Filled(fill) = placed else {
            panic!("marketable")
        };
        assert_eq!(fill.price, d("20020"));
        // a sell limit far above: rests, then expires
        ex.place(
            &limit("d2", Side::Sell, "0.1", "25000"),
            d("20000"),
            "decision",
            5_000,
        )
        .unwrap();
        assert!(ex.expire_resting("BTCUSDT", 4_000).is_empty());
        let expired = ex.expire_resting("BTCUSDT", 5_000);
        assert_eq!(expired[0].order.decision_id, "d2");
        assert_eq!(
            ex.position("BTCUSDT").unwrap().quantity,
            d("0.1"),
            "still held"
        );
        // a resting order must be affordable when placed, and a limit order needs a price
        assert!(matches!(
            ex.place(
                &limit("d3", Side::Buy, "1", "19000"),
                d("20000"),
                "decision",
                0
            ),
            Err(OrderRejection::InsufficientCash { .. })
        ));
        let mut no_price = limit("d4", Side::Buy, "0.1", "1");
        no_price.limit_price = None;
        assert!(matches!(
            ex.place(&no_price, d("20000"), "decision", 0),
            Err(OrderRejection::NoLimitPrice { .. })
        ));
    }

    #[test]
    fn a_round_trip_pays_fees_and_slippage_exactly() {
        let mut ex = PaperExchange::new(d("10000"), FeeModel::new(0.001, 10.0));
        let buy = ex
            .execute(&order("d1", Side::Buy, "0.1"), d("20000"), "consensus")
            .unwrap();
        assert_eq!(buy.price, d("20020")); // +10 bps
        assert_eq!(buy.fee, d("2.002"));
        assert_eq!(ex.cash(), d("10000") - d("2002") - d("2.002"));
        ex.mark("BTCUSDT", d("21000"));
        assert_eq!(ex.equity(), ex.cash() + d("2100"));
        let sell = ex
            .execute(&order("d2", Side::Sell, "0.1"), d("21000"), "consensus")
            .unwrap();
        assert_eq!(sell.price, d("20979"));
        assert_eq!(sell.fee, d("2.0979"));
        let trade = &ex.trades()[0];
        assert_eq!(trade.pnl, d("2097.9") - d("2.0979") - d("2004.002"));
        assert_eq!(ex.equity(), d("10000") + trade.pnl);
        assert!(ex.position("BTCUSDT").is_none());
        assert_eq!(ex.fees_paid(), d("4.0999"));
    }

    #[test]
    fn a_decision_trades_once() {
        let mut ex = PaperExchange::new(d("10000"), FeeModel::new(0.0, 0.0));
        ex.execute(&order("d1", Side::Buy, "0.1"), d("100"), "x")
            .unwrap();
        assert_eq!(
            ex.execute(&order("d1", Side::Buy, "0.1"), d("100"), "x"),
            Err(OrderRejection::Duplicate("d1".into()))
        );
        assert_eq!(ex.position("BTCUSDT").unwrap().quantity, d("0.1"));
    }

    #[test]
    fn refuses_what_it_cannot_do_naming_the_symbol() {
        let mut ex = PaperExchange::new(d("100"), FeeModel::new(0.001, 0.0));
        let e = ex
            .execute(&order("d1", Side::Buy, "1"), d("100"), "x")
            .unwrap_err();
        assert!(
            e.to_string().starts_with("order for BTCUSDT: needs 100.1"),
            "{e}"
        );
        let e = ex
            .execute(&order("d2", Side::Sell, "1"), d("100"), "x")
            .unwrap_err();
        assert!(matches!(e, OrderRejection::InsufficientPosition { .. }));
        assert_eq!(ex.cash(), d("100"));
    }

    #[test]
    fn stops_and_targets_fill_at_their_level_or_the_gap() {
        let mut ex = PaperExchange::new(d("10000"), FeeModel::new(0.0, 0.0));
        ex.execute(&order("d1", Side::Buy, "1"), d("100"), "x")
            .unwrap();
        assert_eq!(
            ex.exit_on_candle("BTCUSDT", 100.0, 101.0, 99.0, 0.05, 0.1),
            None
        );
        assert_eq!(
            ex.exit_on_candle("BTCUSDT", 99.0, 99.5, 94.0, 0.05, 0.1),
            Some((d("95"), "stop-loss"))
        );
        assert_eq!(
            ex.exit_on_candle("BTCUSDT", 90.0, 91.0, 89.0, 0.05, 0.1),
            Some((d("90"), "stop-loss"))
        );
        assert_eq!(
            ex.exit_on_candle("BTCUSDT", 105.0, 111.0, 104.0, 0.05, 0.1)
                .unwrap()
                .1,
            "take-profit"
        );
        assert_eq!(ex.exit_on_candle("ETHUSDT", 1.0, 1.0, 1.0, 0.05, 0.1), None);
    }
}
