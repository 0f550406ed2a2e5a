//! The executor service (`trading-agent assistant --role executor`): it follows the team's decision
//! stream with its durable consumer and runs the engine's desk on it, message by message in the
//! stream's order: a candle fills resting limit orders, checks stops and targets and marks the
//! book; a decision is planned against the book and the Strategy's risk limits (checked again
//! here, whatever the coordinator saw) and placed on the venue (paper, or Binance spot when the
//! Strategy is live, where the client order id is the decision id). Each order's report goes on
//! `….order` and each fill on `….fill`, with the decision id as the message id, before the
//! message that caused them is acknowledged.
//!
//! **Its book is a function of the stream.** On start the consumer is made again from the
//! stream's first message: everything the previous process had acknowledged is replayed into the
//! book without publishing (it was published then), the rest is acted on. So a restarted paper
//! executor has the same book as before, and a redelivered decision never places a second order:
//! its report has the same message id (the stream keeps one) and a live order the same client
//! order id (Binance keeps one). Live, a replayed or late decision on a candle no longer fresh is
//! reported EXPIRED, never sent, and the book is reconciled with the account on the first live
//! candle.

use super::{publish_until_out, ServiceError};
use crate::bus::consumer::Delivered;
use crate::bus::nats::NatsBus;
use crate::bus::Bus;
use crate::engine::desk::{At, Desk};
use crate::engine::record::Record;
use crate::engine::venue::{AnyVenue, Paper};
use crate::exchange::binance::BinanceSpot;
use crate::executor::Market;
use crate::market::Candle;
use crate::standing::Standing;
use crate::store::OrderRecord;
use protocol::crd::Strategy;
use protocol::messages::{BookPosition, Decision, ExecutorBook, MarketCandle, Message};
use protocol::subjects::Subjects;
use protocol::Role;
use rust_decimal::prelude::ToPrimitive;
use std::collections::HashMap;

/// Unacknowledged messages the executor may hold at once (its work is one message at a time).
const MAX_ACK_PENDING: i64 = 1024;

/// What an executor service did until it stopped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExecutorSummary {
    /// Messages replayed into the book without acting (the previous process had acted on them).
    pub replayed: u64,
    /// Decisions acted on.
    pub decisions: u64,
    /// Order reports published.
    pub orders: u64,
    /// Of them, filled.
    pub fills: u64,
}

/// The executor's book: the desk, the standing it sizes against, the last candle of each symbol.
pub struct Book<'a> {
    name: String,
    desk: Desk<'a>,
    record: Record<'a>,
    standing: Standing,
    last: HashMap<String, MarketCandle>,
    last_t: i64,
    last_decision: Option<protocol::ids::DecisionId>,
}

impl<'a> Book<'a> {
    /// The book of Strategy `strategy` on `venue`, telling fills and risk limits to `notifier`.
    pub async fn new(
        strategy: &Strategy,
        venue: AnyVenue<'a>,
        notifier: notify::Notifier,
    ) -> Result<Self, ServiceError> {
        let name = strategy.metadata.name.clone().unwrap_or_default();
        let spec = &strategy.spec;
        let key = crate::audit::AuditKey::Unkeyed;
        Ok(Self {
            desk: Desk::of_strategy(spec, &name, venue, None, spec.interval.millis()),
            name: name.clone(),
            record: Record::new(None, &name, &key, notifier, 1).await?,
            standing: Standing::new(),
            last: HashMap::new(),
            last_t: i64::MIN,
            last_decision: None,
        })
    }

    /// Acts on one message of the stream; the orders it led to (placed, filled, refused, expired).
    pub async fn apply(&mut self, message: &Message) -> Vec<OrderRecord> {
        if let Some(named) = message.strategy().filter(|n| *n != self.name) {
            // the team's subjects carry only its own: this came some other way (a consumer of
            // another team pushed onto them), and acting on it would trade for someone else
            tracing::warn!(kind = message.type_name(), %named, "a message of another Strategy on this team's decision stream: not acted on");
            return Vec::new();
        }
        match message {
            Message::Candle(candle) => self.on_candle(candle).await,
            Message::Decision(decision) => self.on_decision(decision).await,
            _ => {} // nothing else travels on `….decision`
        }
        self.record.take_orders()
    }

    /// The book as the coordinator's view follows it: cash and open positions, at the last
    /// candle acted on.
    pub fn state(&self) -> ExecutorBook {
        let ledger = self.desk.ledger();
        let mut positions: Vec<BookPosition> = ledger
            .positions()
            .map(|p| BookPosition {
                symbol: p.symbol.clone(),
                quantity: p.quantity,
                entry_price: p.entry_price,
                opened_at: p.opened_at,
            })
            .collect();
        positions.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        ExecutorBook {
            strategy: self.name.as_str().into(),
            at: self.last_t,
            decision: self.last_decision.clone(),
            cash: ledger.cash(),
            positions,
        }
    }

    /// The ledger, for tests and the final log.
    pub fn ledger(&self) -> &crate::exchange::PaperExchange {
        self.desk.ledger()
    }

    async fn on_candle(&mut self, c: &MarketCandle) {
        // the standing (drawdown, the day's loss) is sampled once per time step, before its candles
        if c.open_time > self.last_t {
            self.last_t = c.open_time;
            let equity = self.desk.ledger().equity().to_f64().unwrap_or(0.0);
            self.standing.record(c.open_time, equity);
        }
        let candle = Candle {
            open_time: c.open_time,
            open: c.open,
            high: c.high,
            low: c.low,
            close: c.close,
            volume: c.volume,
        };
        self.desk
            .on_candle(&c.symbol, &candle, at(c), &mut self.record)
            .await;
        self.last.insert(c.symbol.to_string(), c.clone());
    }

    async fn on_decision(&mut self, decision: &Decision) {
        // a decision comes after the candle it was taken on; without it (a coordinator that does
        // not run with --services) there is no price to act at, and acting would risk trading twice
        let Some(candle) = self.last.get(decision.symbol.as_str()) else {
            tracing::warn!(id = %decision.id, symbol = %decision.symbol,
                "a decision without its candle on the stream: not acted on (is the coordinator running with --services?)");
            return;
        };
        self.last_decision = Some(decision.id.clone());
        let context = self
            .desk
            .context(&decision.symbol, candle.close, &self.standing);
        let market = Market {
            volatility: candle.volatility,
        };
        let (execution, _) = self
            .desk
            .execute(decision, &context, market, at(candle), &mut self.record)
            .await;
        tracing::debug!(id = %decision.id, %execution, "executed");
    }
}

fn at(c: &MarketCandle) -> At {
    At {
        t: c.open_time,
        close_time: c.close_time,
        close: c.close,
        live: c.live,
    }
}

/// Runs the executor of `strategy` on `bus` until a stop is asked (SIGTERM): orders on `live` when
/// given (the Strategy is live), else on paper.
pub async fn run(
    bus: &NatsBus,
    subjects: &Subjects,
    strategy: &Strategy,
    live: Option<&BinanceSpot>,
    notifier: notify::Notifier,
    peers: &super::Peers,
) -> Result<ExecutorSummary, ServiceError> {
    // the process waits for this run to end after a stop is asked (crate::shutdown)
    let _busy = crate::shutdown::busy();
    // live, the coordinator's view of the book follows this one (a paper executor's book is the
    // coordinator's own paper view already)
    let tells_book = live.is_some();
    super::unsigned_warning(
        "candles and decisions",
        peers.coordinator.as_ref(),
        "--coordinator-key",
    );
    let venue = live.map_or(AnyVenue::Paper(Paper), AnyVenue::Live);
    let mut book = Book::new(strategy, venue, notifier).await?;
    let name = subjects.service_consumer(Role::Executor);
    let mut consumer = bus
        .service_consumer(
            &name,
            &subjects.decision(),
            MAX_ACK_PENDING,
            true,
            peers.coordinator.clone(),
        )
        .await?;
    let acted_on = consumer.acknowledged;
    tracing::info!(consumer = %name, replaying = acted_on, "executing the team's decisions");
    let mut summary = ExecutorSummary::default();
    // the stream sequence of the last message in the book: one delivered again because its
    // acknowledgement was lost (the bus away) is in the book already, and acting on it again
    // would trade twice on the book (its report would be a duplicate the stream drops)
    let mut applied = 0;
    loop {
        let delivered = tokio::select! {
            delivered = consumer.next() => delivered,
            () = crate::shutdown::stop_requested() => None,
        };
        let Some(delivered) = delivered else { break };
        if delivered.sequence <= applied {
            tracing::debug!(
                sequence = delivered.sequence,
                "delivered again: already in the book"
            );
            if let Err(error) = delivered.ack().await {
                tracing::warn!(%error, "acknowledging failed; the message comes again and is not acted on twice");
            }
            continue;
        }
        let replayed = delivered.sequence <= acted_on;
        if !act_on(bus, subjects, &mut book, &delivered, replayed, &mut summary).await {
            break; // asked to stop with a report not out: the message is delivered again
        }
        applied = delivered.sequence;
        let rebuilt = replayed && delivered.sequence == acted_on;
        if rebuilt {
            tracing::info!(replayed = summary.replayed, equity = %book.ledger().equity(), "the book is rebuilt from the stream");
        }
        // (not the book rebuilt from the stream: live, it is reconciled with the account only on
        // the first live candle, which is acted on)
        if tells_book && !replayed {
            tell_book(bus, subjects, &book).await;
        }
        if let Err(error) = delivered.ack().await {
            tracing::warn!(%error, "acknowledging failed; the message comes again and is not acted on twice");
        }
    }
    tracing::info!(?summary, equity = %book.ledger().equity(), "the executor stops");
    Ok(summary)
}

/// Publishes the book on `….book` (core NATS, the newest wins); a failed publish is logged, and
/// the next message's book replaces it.
async fn tell_book(bus: &NatsBus, subjects: &Subjects, book: &Book<'_>) {
    let state = Message::Book(book.state());
    if let Err(error) = bus.publish(&subjects.book(), &state).await {
        tracing::debug!(%error, "the book was not told; the next one replaces it");
    }
}

/// Applies one delivered message to the book and, unless `replayed`, publishes what it led to;
/// false when a stop came before everything was out.
async fn act_on(
    bus: &NatsBus,
    subjects: &Subjects,
    book: &mut Book<'_>,
    delivered: &Delivered,
    replayed: bool,
    summary: &mut ExecutorSummary,
) -> bool {
    let Some(message) = &delivered.message else {
        return true; // undecodable: counted by the bus, nothing to act on
    };
    let orders = book.apply(message).await;
    if replayed {
        summary.replayed += 1;
        return true;
    }
    if matches!(message, Message::Decision(_)) {
        summary.decisions += 1;
    }
    for report in orders {
        let id = report.order.decision_id.clone();
        let fill = report.fill.clone();
        if !publish_until_out(bus, &subjects.order(), &id, &Message::OrderReport(report)).await {
            return false;
        }
        summary.orders += 1;
        if let Some(fill) = fill {
            if !publish_until_out(bus, &subjects.fill(), &id, &Message::Fill(fill)).await {
                return false;
            }
            summary.fills += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::binance::Credentials;
    use protocol::Action;
    use std::sync::{Arc, Mutex};
    use test_support::binance::{serve, signed_account, signed_orders};
    use warp::Filter;

    const HOUR: i64 = 3_600_000;

    /// A BTCUSDT candle of the live feed that closed a second ago.
    fn fresh_candle() -> MarketCandle {
        let close_time = chrono::Utc::now().timestamp_millis() - 1_000;
        MarketCandle {
            strategy: "btc-eth-paper".into(),
            symbol: "BTCUSDT".into(),
            open_time: close_time + 1 - HOUR,
            close_time,
            open: 100.0,
            high: 102.0,
            low: 99.0,
            close: 101.0,
            volume: 10.0,
            live: true,
            volatility: Some(0.5),
        }
    }

    /// The team's BUY on `candle`.
    fn buy(candle: &MarketCandle) -> Decision {
        Decision {
            id: format!("btc-eth-paper_BTCUSDT_{}_schedule", candle.open_time).into(),
            strategy: "btc-eth-paper".into(),
            symbol: "BTCUSDT".into(),
            action: Action::Buy,
            confidence: 0.9,
            consensus_reached: true,
            escalated: false,
            vetoed: false,
            rejected: false,
            resolved_by: None,
            rounds: vec![],
            transcript: vec![],
            price: candle.close,
            decided_at: candle.close_time,
        }
    }

    /// A live executor restarted within the hour replays the candle and the decision it had
    /// already acted on (its consumer starts again from the stream's first message): the replayed
    /// fresh candle reconciles the book with the account, which holds the bought position, so the
    /// decision sends nothing a second time.
    #[tokio::test]
    async fn a_restarted_live_executor_sends_no_decision_twice() {
        let balances = Arc::new(Mutex::new(HashMap::from([(
            "BTC".to_string(),
            "0".to_string(),
        )])));
        let (orders, posted) = signed_orders("key", "secret");
        let account = signed_account("key", "secret", balances.clone());
        let addr = serve(orders.or(account).unify()).await;
        let live = BinanceSpot::new(&format!("http://{addr}"), Credentials::new("key", "secret"));
        let strategy = crate::config::TeamConfig::builtin().unwrap().strategy;
        let candle = fresh_candle();
        let candle_at = candle.open_time;
        let decision = buy(&candle);
        let stream_decision_id = decision.id.clone();
        // the candle goes ahead of its decision, as on the stream
        let stream = [Message::Candle(candle), Message::Decision(decision)];

        let mut first = Book::new(&strategy, AnyVenue::Live(&live), notify::Notifier::none())
            .await
            .unwrap();
        let mut reports = Vec::new();
        for message in &stream {
            reports.extend(first.apply(message).await);
        }
        assert_eq!(posted.lock().unwrap().len(), 1, "one BUY sent: {reports:?}");
        let bought = posted.lock().unwrap()[0]["quantity"].clone();
        // the book it tells the coordinator holds what the exchange filled
        let told = first.state();
        assert_eq!(
            (told.strategy.as_str(), told.at),
            ("btc-eth-paper", candle_at)
        );
        assert_eq!(told.decision.as_ref(), Some(&stream_decision_id));
        assert_eq!(told.positions.len(), 1, "{told:?}");
        assert!(
            told.positions[0].opened_at > 0,
            "with its opening time: {told:?}"
        );
        assert_eq!(told.positions[0].quantity.to_string(), bought);
        assert!(told.cash < rust_decimal::Decimal::from(10_000), "{told:?}");
        // the exchange filled it: the account holds it
        balances
            .lock()
            .unwrap()
            .insert("BTC".into(), bought.clone());

        let mut again = Book::new(&strategy, AnyVenue::Live(&live), notify::Notifier::none())
            .await
            .unwrap();
        for message in &stream {
            again.apply(message).await;
        }
        assert_eq!(posted.lock().unwrap().len(), 1, "nothing sent twice");
        let held = again
            .ledger()
            .position("BTCUSDT")
            .expect("the account's position");
        assert_eq!(held.quantity.to_string(), bought);
    }

    /// A candle and a decision of another Strategy on the team's stream (pushed there by a
    /// consumer of another team) are never acted on; the team's own are.
    #[tokio::test]
    async fn another_strategys_decision_is_never_acted_on() {
        let strategy = crate::config::TeamConfig::builtin().unwrap().strategy;
        let mut book = Book::new(&strategy, AnyVenue::Paper(Paper), notify::Notifier::none())
            .await
            .unwrap();
        let mut candle = fresh_candle();
        candle.live = false;
        let mut decision = buy(&candle);
        let (theirs_candle, theirs_decision) = {
            let (mut c, mut d) = (candle.clone(), decision.clone());
            c.strategy = "someone-else".into();
            d.strategy = "someone-else".into();
            (c, d)
        };
        assert!(book.apply(&Message::Candle(theirs_candle)).await.is_empty());
        assert!(book
            .apply(&Message::Decision(theirs_decision))
            .await
            .is_empty());
        assert!(
            book.ledger().position("BTCUSDT").is_none(),
            "nothing traded"
        );
        decision.id = format!("{}_own", decision.id).into();
        assert!(book.apply(&Message::Candle(candle)).await.is_empty());
        let orders = book.apply(&Message::Decision(decision)).await;
        assert_eq!(orders.len(), 1, "its own decision is: {orders:?}");
    }
}
