//! The desk (docs/architecture.md, "Execution and the record"): the executor's plans placed on a
//! [`Venue`], resting limit orders, and the stops and targets of held positions, all booked in the
//! ledger the team reads its portfolio from. Everything it orders goes to the [`Record`].

use super::feed::{fresh, now_ms};
use super::record::Record;
use super::venue::{AnyVenue, Venue};
use super::SharedBooks;
use crate::exchange::paper::decimal;
use crate::exchange::{FeeModel, OrderRejection, PaperExchange, Placement};
use crate::executor::{Executor, Market, Plan};
use crate::market::Candle;
use crate::standing::Standing;
use crate::store::{OrderRecord, OrderStatus};
use protocol::crd::StrategySpec;
use protocol::messages::{Decision, Fill, Order, OrderKind, PortfolioContext, Side};
use rust_decimal::prelude::ToPrimitive;
use std::collections::HashMap;

/// The desk of one session.
pub struct Desk<'a> {
    strategy: String,
    executor: Executor,
    venue: AnyVenue<'a>,
    ledger: PaperExchange,
    /// The live order books that price paper market orders, when they stream.
    books: Option<&'a SharedBooks>,
    limit_ttl_ms: i64,
    stop_loss: f64,
    take_profit: f64,
    interval_ms: i64,
    /// When each symbol's live book was last reconciled with the account (a candle's open time).
    reconciled: HashMap<String, i64>,
}

/// A live book is reconciled with the account on each symbol's first live candle, then every this
/// many candles (a day of hourly candles).
pub const RECONCILE_EVERY_CANDLES: i64 = 24;

/// When and how a decision is executed.
#[derive(Debug, Clone, Copy)]
pub struct At {
    /// The decided candle's open time.
    pub t: i64,
    /// Its close time: a live decision is traded only while it is fresh.
    pub close_time: i64,
    /// Its close, the orders' reference price.
    pub close: f64,
    /// Whether the candle came from the live feed.
    pub live: bool,
}

impl<'a> Desk<'a> {
    /// A desk that plans with `executor`, trades on `venue` and books in `ledger`.
    pub fn new(
        executor: Executor,
        venue: AnyVenue<'a>,
        ledger: PaperExchange,
        books: Option<&'a SharedBooks>,
        limit_ttl_ms: i64,
        interval_ms: i64,
    ) -> Self {
        Self {
            strategy: executor.strategy.clone(),
            stop_loss: executor.limits.stop_loss,
            take_profit: executor.limits.take_profit,
            executor,
            venue,
            ledger,
            books,
            limit_ttl_ms,
            interval_ms,
            reconciled: HashMap::new(),
        }
    }

    /// The desk of Strategy `name` (its `spec`): its executor and limits, its capital and fees, on
    /// `venue`, deciding on candles `interval_ms` long.
    pub fn of_strategy(
        spec: &StrategySpec,
        name: &str,
        venue: AnyVenue<'a>,
        books: Option<&'a SharedBooks>,
        interval_ms: i64,
    ) -> Self {
        let exchange = spec.exchange.clone().unwrap_or_default();
        let executor = Executor {
            strategy: name.to_string(),
            limits: spec.risk.clone(),
            paused: spec.paused,
            order_type: exchange.order_type,
            limit_offset_bps: exchange.limit_offset_bps,
            min_hold_ms: super::MIN_HOLD_CANDLES * interval_ms,
        };
        let fees = FeeModel::new(exchange.fee_rate, exchange.slippage_bps);
        let ledger = PaperExchange::new(decimal(spec.capital), fees);
        let limit_ttl_ms = i64::from(exchange.limit_ttl_candles) * interval_ms;
        Self::new(executor, venue, ledger, books, limit_ttl_ms, interval_ms)
    }

    /// Starts from `book` instead of the Strategy's capital (a restarted live run).
    pub fn restore(&mut self, book: &super::OpeningBook) {
        self.ledger.restore(book.cash, &book.positions);
    }

    /// Takes the executor's `book` as the view's cash and positions (services mode, live):
    /// [`PaperExchange::follow`].
    pub fn follow(&mut self, book: &protocol::messages::ExecutorBook) {
        self.ledger.follow(book.cash, &book.positions);
    }

    /// The book: cash, positions, equity, closed trades.
    pub fn ledger(&self) -> &PaperExchange {
        &self.ledger
    }

    /// What a candle of `symbol` does to the book before the team decides on it: resting limit
    /// orders it reaches fill, those whose time ran out expire, a held position's stop or target
    /// inside its range closes it (on the venue: a live position is sold on the exchange), and the
    /// position is marked at its close.
    pub async fn on_candle(
        &mut self,
        symbol: &str,
        candle: &Candle,
        at: At,
        record: &mut Record<'_>,
    ) {
        let t = at.t;
        self.reconcile(symbol, candle.close, at).await;
        let (open, high, low) = (
            decimal(candle.open),
            decimal(candle.high),
            decimal(candle.low),
        );
        for (resting, result) in self.ledger.fill_resting(symbol, open, high, low, t) {
            record.order(order_record(resting.order, result, &resting.reason));
        }
        for expired in self.ledger.expire_resting(symbol, t) {
            record.order(OrderRecord {
                order: expired.order,
                fill: None,
                status: OrderStatus::Expired,
                reason: "limit not reached before spec.exchange.limitTtlCandles".into(),
            });
        }
        self.exit(symbol, candle, at, record).await;
        self.ledger.mark(symbol, decimal(candle.close));
    }

    /// Closes a held position whose stop-loss or take-profit the candle reaches. On paper the
    /// ledger sells at the level (or the open, past a gap). Live, the stop is the executor's, not
    /// the exchange's (docs/architecture.md, "Live safety"): a market SELL goes to the exchange
    /// for the held quantity when a fresh live candle reaches the level, with the level as its
    /// reference price; on a stale candle nothing is sent (recorded EXPIRED) and the next fresh
    /// candle that still reaches the level sends it.
    async fn exit(&mut self, symbol: &str, candle: &Candle, at: At, record: &mut Record<'_>) {
        let t = at.t;
        let Some((price, reason)) = self.ledger.exit_on_candle(
            symbol,
            candle.open,
            candle.high,
            candle.low,
            self.stop_loss,
            self.take_profit,
        ) else {
            return;
        };
        let quantity = self
            .ledger
            .position(symbol)
            .map(|p| p.quantity)
            .unwrap_or_default();
        let order = Order {
            decision_id: format!("{}_{symbol}_{t}_{reason}", self.strategy).into(),
            strategy: self.strategy.as_str().into(),
            symbol: symbol.into(),
            side: Side::Sell,
            kind: OrderKind::Market,
            quantity,
            limit_price: None,
            at: t,
        };
        record.risk(symbol, &order.decision_id, reason);
        let result = match &self.venue {
            // slippage applies to the level too; a refusal cannot happen for a held quantity
            AnyVenue::Paper(_) => self.ledger.execute(&order, price, reason),
            AnyVenue::Live(_) if !(at.live && fresh(at.close_time, self.interval_ms, now_ms())) => {
                let stale = stale_order_record(order, now_ms() - at.close_time);
                tracing::warn!(%symbol, reason = %stale.reason, "{reason} not sent");
                record.order(stale);
                return;
            }
            AnyVenue::Live(_) => {
                let expires_at = t + self.limit_ttl_ms;
                match self
                    .venue
                    .submit(&mut self.ledger, &order, price, expires_at)
                    .await
                {
                    Ok(Placement::Filled(fill)) => Ok(fill),
                    Ok(Placement::Resting) => Err(OrderRejection::Exchange(
                        "the exchange left the market SELL resting".into(),
                    )),
                    Err(rejection) => Err(rejection),
                }
            }
        };
        record.order(order_record(order, result, reason));
    }

    /// Live only, when due ([`RECONCILE_EVERY_CANDLES`]): sets `symbol`'s position to what the
    /// exchange account holds (the account is the Strategy's own: its balance of the base asset is
    /// the position), logging and counting a difference. A failed read is logged and tried again
    /// on the next candle.
    async fn reconcile(&mut self, symbol: &str, close: f64, at: At) {
        let AnyVenue::Live(live) = &self.venue else {
            return;
        };
        let due = self
            .reconciled
            .get(symbol)
            .is_none_or(|last| at.t - last >= RECONCILE_EVERY_CANDLES * self.interval_ms);
        if !at.live || !due {
            return;
        }
        match live.holding(symbol).await {
            Ok(held) => {
                self.reconciled.insert(symbol.to_string(), at.t);
                let before = self.ledger.reconcile(symbol, held, decimal(close), at.t);
                if let Some(before) = before {
                    tracing::warn!(%symbol, book = %before, account = %held, "the book differed from the exchange account: it now holds the account's balance");
                    crate::metrics::reconciled(&self.strategy, symbol);
                }
            }
            Err(error) => {
                tracing::warn!(%symbol, %error, "could not reconcile the book with the account")
            }
        }
    }

    /// The portfolio as the team sees it when deciding on `symbol` at `close`.
    pub fn context(&self, symbol: &str, close: f64, standing: &Standing) -> PortfolioContext {
        let equity = self.ledger.equity().to_f64().unwrap_or(0.0);
        let position = self.ledger.position(symbol);
        PortfolioContext {
            equity,
            position_fraction: position.map_or(0.0, |p| {
                (p.quantity * decimal(close)).to_f64().unwrap_or(0.0)
                    / equity.max(f64::MIN_POSITIVE)
            }),
            entry_price: position.and_then(|p| p.entry_price.to_f64()),
            open_positions: self.ledger.positions().count() as u32,
            drawdown: standing.drawdown(equity),
            daily_loss: standing.daily_loss(equity),
        }
    }

    /// Executes `decision`: what was done, for the log, and its fill.
    pub async fn execute(
        &mut self,
        decision: &Decision,
        context: &PortfolioContext,
        market: Market,
        at: At,
        record: &mut Record<'_>,
    ) -> (String, Option<Fill>) {
        match self.executor.plan(decision, &self.ledger, context, market) {
            Plan::Trade(order) if at.live && !fresh(at.close_time, self.interval_ms, now_ms()) => {
                let stale = stale_order_record(order, now_ms() - at.close_time);
                tracing::warn!(symbol = %decision.symbol, decision = %decision.id, reason = %stale.reason, "not traded");
                let execution = format!("expired: {}", stale.reason);
                record.order(stale);
                (execution, None)
            }
            Plan::Trade(order) => self.trade(order, at, record).await,
            Plan::Nothing(why) => (why, None),
            Plan::Refused(why) => {
                record.risk(&decision.symbol, &decision.id, &why);
                (format!("refused: {why}"), None)
            }
        }
    }

    /// Places `order` on the venue; a limit order that rests is recorded when it fills or expires.
    async fn trade(
        &mut self,
        order: Order,
        at: At,
        record: &mut Record<'_>,
    ) -> (String, Option<Fill>) {
        if let Some(books) = self.books {
            let book = books
                .lock()
                .expect("books lock")
                .get(order.symbol.as_str())
                .cloned();
            if let Some((depth, arrived)) = book {
                self.ledger.update_book(depth, arrived);
            }
        }
        let placed = self
            .venue
            .submit(
                &mut self.ledger,
                &order,
                decimal(at.close),
                at.t + self.limit_ttl_ms,
            )
            .await;
        let result = match placed {
            Ok(Placement::Filled(fill)) => Ok(fill),
            Err(rejection) => Err(rejection),
            Ok(Placement::Resting) => {
                let execution = format!(
                    "limit {:?} {} @ {} resting",
                    order.side,
                    order.quantity,
                    order.limit_price.unwrap_or_default()
                );
                return (execution, None);
            }
        };
        let placed = order_record(order, result, "decision");
        let execution = match &placed.fill {
            Some(fill) => format!("{:?} {} @ {}", fill.side, fill.quantity, fill.price),
            None => format!("rejected: {}", placed.reason),
        };
        let fill = placed.fill.clone();
        record.order(placed);
        (execution, fill)
    }
}

/// The store's record of an order the venue filled or refused.
fn order_record(order: Order, result: Result<Fill, OrderRejection>, reason: &str) -> OrderRecord {
    match result {
        Ok(fill) => OrderRecord {
            order,
            fill: Some(fill),
            status: OrderStatus::Filled,
            reason: reason.to_string(),
        },
        Err(rejection) => OrderRecord {
            order,
            fill: None,
            status: OrderStatus::Rejected,
            reason: rejection.to_string(),
        },
    }
}

/// The store's record of an order that was planned on a live candle closed `age_ms` ago, too
/// stale to trade on, and never sent.
fn stale_order_record(order: Order, age_ms: i64) -> OrderRecord {
    let age_s = age_ms / 1000;
    OrderRecord {
        order,
        fill: None,
        status: OrderStatus::Expired,
        reason: format!(
            "the candle closed {age_s} s ago, more than one interval: too old to trade on"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::binance::{client_order_id, BinanceSpot, Credentials};
    use crate::exchange::FeeModel;
    use protocol::crd::{OrderType, RiskSpec};
    use rust_decimal::Decimal;
    use warp::Filter;

    const HOUR: i64 = 3_600_000;

    fn executor() -> Executor {
        Executor {
            strategy: "s".into(),
            limits: RiskSpec {
                stop_loss: 0.05,
                take_profit: 0.5,
                ..RiskSpec::default()
            },
            paused: false,
            order_type: OrderType::Market,
            limit_offset_bps: 0.0,
            min_hold_ms: 0,
        }
    }

    /// A ledger holding 0.5 BTCUSDT bought at 100.
    fn holding() -> PaperExchange {
        let mut ledger = PaperExchange::new(Decimal::from(1000), FeeModel::new(0.0, 0.0));
        let buy = Order {
            decision_id: "s_BTCUSDT_0_schedule".into(),
            strategy: "s".into(),
            symbol: "BTCUSDT".into(),
            side: Side::Buy,
            kind: OrderKind::Market,
            quantity: Decimal::new(5, 1),
            limit_price: None,
            at: 0,
        };
        ledger
            .execute(&buy, Decimal::from(100), "decision")
            .unwrap();
        ledger
    }

    /// A candle opening at `t` whose low (94) is under a 5% stop from 100.
    fn falling(t: i64) -> Candle {
        Candle {
            open_time: t,
            open: 99.0,
            high: 99.5,
            low: 94.0,
            close: 95.0,
            volume: 1.0,
        }
    }

    /// A live candle that closed `ago_ms` ago.
    fn live_at(ago_ms: i64) -> At {
        let close_time = now_ms() - ago_ms;
        At {
            t: close_time + 1 - HOUR,
            close_time,
            close: 95.0,
            live: true,
        }
    }

    /// A live desk on a local Binance whose account holds `btc`, with the book `ledger`, fed one
    /// falling candle at `at`: what was posted, and the book after.
    async fn live_candle(
        at: At,
        ledger: PaperExchange,
        btc: &str,
    ) -> (Vec<HashMap<String, String>>, PaperExchange) {
        use test_support::binance::{serve, signed_account, signed_orders};
        let balances = std::sync::Arc::new(std::sync::Mutex::new(HashMap::from([(
            "BTC".to_string(),
            btc.to_string(),
        )])));
        let (orders, posted) = signed_orders("key", "secret");
        let addr = serve(orders.or(signed_account("key", "secret", balances)).unify()).await;
        let live = BinanceSpot::new(&format!("http://{addr}"), Credentials::new("key", "secret"));
        let mut desk = Desk::new(executor(), AnyVenue::Live(&live), ledger, None, HOUR, HOUR);
        let key = crate::audit::AuditKey::Unkeyed;
        let mut record = Record::new(None, "s", &key, notify::Notifier::none(), 16)
            .await
            .unwrap();
        desk.on_candle("BTCUSDT", &falling(at.t), at, &mut record)
            .await;
        let orders = posted.lock().unwrap().clone();
        (orders, desk.ledger)
    }

    #[tokio::test]
    async fn a_live_stop_sells_on_the_exchange_when_a_fresh_candle_reaches_it() {
        let at = live_at(1_000);
        let (orders, ledger) = live_candle(at, holding(), "0.5").await;
        assert_eq!(orders.len(), 1, "one market SELL sent: {orders:?}");
        let sent = &orders[0];
        assert_eq!(
            (sent["side"].as_str(), sent["type"].as_str()),
            ("SELL", "MARKET")
        );
        assert_eq!(sent["quantity"], "0.5");
        let id = format!("s_BTCUSDT_{}_stop-loss", at.t);
        assert_eq!(sent["newClientOrderId"], client_order_id(&id));
        assert!(
            ledger.position("BTCUSDT").is_none(),
            "the ledger books the exchange's fill"
        );
    }

    #[tokio::test]
    async fn a_live_stop_on_a_stale_candle_is_not_sent() {
        let (orders, ledger) = live_candle(live_at(3 * HOUR), holding(), "0.5").await;
        assert!(
            orders.is_empty(),
            "nothing sent on a stale candle: {orders:?}"
        );
        assert!(
            ledger.position("BTCUSDT").is_some(),
            "still held until a fresh candle"
        );
    }

    #[tokio::test]
    async fn a_live_book_takes_the_account_s_balance_on_its_first_live_candle() {
        let flat = PaperExchange::new(Decimal::from(1000), FeeModel::new(0.0, 0.0));
        let (orders, ledger) = live_candle(live_at(1_000), flat, "0.3004").await;
        assert!(orders.is_empty(), "reconciling sends no order: {orders:?}");
        let position = ledger
            .position("BTCUSDT")
            .expect("the account's BTC is the position");
        // rounded down to the exchange's lot step (0.001)
        assert_eq!(position.quantity, Decimal::new(300, 3));
        let spent = Decimal::new(300, 3) * Decimal::from(95);
        assert_eq!(ledger.cash(), Decimal::from(1000) - spent);
        // and a held position the account no longer backs is dropped from the book
        let (_, ledger) = live_candle(live_at(1_000), holding(), "0").await;
        assert!(ledger.position("BTCUSDT").is_none());
    }
}
