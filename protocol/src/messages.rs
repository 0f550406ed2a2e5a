//! Messages of the agent protocol (docs/architecture.md, "NATS subjects and messages"), as JSON
//! with a version and a type tag: `{"v": 1, "type": "opinion", ...}`.
//!
//! [`decode`] never panics: bytes that are not JSON, an unsupported version, an unknown type, a
//! missing field or an out-of-range value each give a [`DecodeError`] whose [`DecodeError::kind`] is a
//! stable label for the metric that counts rejected messages. Unknown *fields* are ignored, so a newer
//! peer may add fields within a version without breaking older ones.

use crate::ids::{DecisionId, StrategyName, Symbol};
use crate::{Action, Role};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u64 = 1;

/// Everything that travels on the bus.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Message {
    /// The coordinator asks one voter for its opinion (`….analyze.<role>`).
    RoundRequest(Box<RoundRequest>),
    /// A voter's answer to a round request.
    Opinion(Opinion),
    /// The outcome of a cycle (`….decision`, on the decision stream).
    Decision(Decision),
    /// No consensus: the coordinator asks a human (`….escalation.<id>`).
    Escalation(Escalation),
    /// A human's approval or rejection of an escalation (`….escalation.<id>`).
    EscalationResolution(EscalationResolution),
    /// An assistant pod's presence, put in the presence bucket every 5 s.
    Heartbeat(Heartbeat),
    /// An order sent to the exchange (`….order`).
    Order(Order),
    /// An executed (part of an) order (`….fill`).
    Fill(Fill),
    /// The head of the team's audit chain once stored (`….audit`, on the audit stream).
    AuditHead(AuditHead),
    /// The team's book as the coordinator last saw it (`….portfolio`).
    Portfolio(PortfolioSnapshot),
    /// What the executor did with one order: placed, filled, refused or expired (`….order`).
    OrderReport(OrderReport),
    /// A closed candle the team traded on, for the executor's stops and limits (`….decision`,
    /// ahead of the decision taken on it).
    Candle(MarketCandle),
    /// The executor's book of a live Strategy after each message it acted on (`….book`): what
    /// the coordinator's view of the book follows in services mode.
    Book(ExecutorBook),
}

impl Message {
    /// The Strategy the message says it belongs to; `None` for an opinion and an escalation's
    /// answer, which name none (their cycle id does).
    pub fn strategy(&self) -> Option<&str> {
        Some(match self {
            Message::RoundRequest(r) => &r.strategy,
            Message::Decision(d) => &d.strategy,
            Message::Escalation(e) => &e.strategy,
            Message::Heartbeat(h) => &h.strategy,
            Message::Order(o) => &o.strategy,
            Message::Fill(f) => &f.strategy,
            Message::AuditHead(a) => &a.strategy,
            Message::Portfolio(p) => &p.strategy,
            Message::OrderReport(r) => &r.order.strategy,
            Message::Candle(c) => &c.strategy,
            Message::Book(b) => &b.strategy,
            Message::Opinion(_) | Message::EscalationResolution(_) => return None,
        })
    }

    /// The `type` tag.
    pub fn type_name(&self) -> &'static str {
        match self {
            Message::RoundRequest(_) => "roundRequest",
            Message::Opinion(_) => "opinion",
            Message::Decision(_) => "decision",
            Message::Escalation(_) => "escalation",
            Message::EscalationResolution(_) => "escalationResolution",
            Message::Heartbeat(_) => "heartbeat",
            Message::Order(_) => "order",
            Message::Fill(_) => "fill",
            Message::AuditHead(_) => "auditHead",
            Message::Portfolio(_) => "portfolio",
            Message::OrderReport(_) => "orderReport",
            Message::Candle(_) => "candle",
            Message::Book(_) => "book",
        }
    }
}

const TYPES: [&str; 13] = [
    "roundRequest",
    "opinion",
    "decision",
    "escalation",
    "escalationResolution",
    "heartbeat",
    "order",
    "fill",
    "auditHead",
    "portfolio",
    "orderReport",
    "candle",
    "book",
];

/// The market as every voter of a round sees it: the last closed candle, the indicators computed
/// over the candles up to it, and the team's position in the symbol.
///
/// Assistants are stateless between requests (any replica of a queue group may answer), so the
/// snapshot carries everything an opinion rests on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MarketSnapshot {
    /// Exchange symbol, e.g. `BTCUSDT`.
    pub symbol: Symbol,
    /// Open time of the last closed candle, ms since the Unix epoch (UTC).
    pub open_time: i64,
    /// Open price of the candle, in the quote asset.
    pub open: f64,
    /// Highest price during the candle.
    pub high: f64,
    /// Lowest price during the candle.
    pub low: f64,
    /// Close price of the candle: the price the decision is taken on.
    pub close: f64,
    /// Traded volume during the candle, in the base asset.
    pub volume: f64,
    /// Indicators computed over the candles up to this one.
    #[serde(default)]
    pub indicators: Indicators,
    /// The team's standing (equity, position, drawdown) when the snapshot was taken.
    #[serde(default)]
    pub portfolio: PortfolioContext,
}

impl MarketSnapshot {
    /// A candle that traded at one `price` throughout (open, high, low and close; volume 1), with
    /// no indicator warmed up and a flat portfolio: what an analyst sees on a market's first candle,
    /// and the smallest snapshot a test of a role or of the bus needs.
    pub fn flat(symbol: &str, open_time: i64, price: f64) -> Self {
        Self {
            symbol: symbol.into(),
            open_time,
            open: price,
            high: price,
            low: price,
            close: price,
            volume: 1.0,
            indicators: Indicators::default(),
            portfolio: PortfolioContext::default(),
        }
    }
}

/// Indicator values at the snapshot's candle; absent while an indicator warms up.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Indicators {
    /// Simple moving average of the last 20 closes (the Bollinger middle band).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sma_20: Option<f64>,
    /// Exponential moving average of the closes, period 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema_20: Option<f64>,
    /// Relative Strength Index over 14 candles (Wilder), 0..100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rsi_14: Option<f64>,
    /// MACD line: EMA 12 minus EMA 26 of the closes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub macd: Option<f64>,
    /// MACD signal line: EMA 9 of the MACD line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub macd_signal: Option<f64>,
    /// MACD histogram: the MACD line minus its signal line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub macd_hist: Option<f64>,
    /// Upper Bollinger band: SMA 20 plus 2 standard deviations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bb_upper: Option<f64>,
    /// Middle Bollinger band (equal to `sma_20`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bb_middle: Option<f64>,
    /// Lower Bollinger band: SMA 20 minus 2 standard deviations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bb_lower: Option<f64>,
    /// Slow Stochastic %K (14, smoothed over 3), 0..100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stoch_k: Option<f64>,
    /// Slow Stochastic %D: SMA 3 of %K, 0..100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stoch_d: Option<f64>,
    /// Williams %R over 14 candles, -100..0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub willr_14: Option<f64>,
    /// Commodity Channel Index over 20 typical prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cci_20: Option<f64>,
    /// Average Directional Index over 14 candles (trend strength, 0..100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adx_14: Option<f64>,
    /// Average True Range over 14 candles, in price units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atr_14: Option<f64>,
    /// On-balance volume: starts at the first candle's volume, then adds it on up closes and
    /// subtracts it on down closes. Always present (no warm-up).
    #[serde(default)]
    pub obv: f64,
    /// Volume over its 20-candle average (1.0 = usual).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_ratio_20: Option<f64>,
    /// Close-to-close return over the last candle, as a fraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_1: Option<f64>,
    /// Close-to-close return over the last 12 candles, as a fraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_12: Option<f64>,
    /// Return over the last 168 candles (a week of hourly candles): time-series momentum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum_168: Option<f64>,
    /// Return over the last 720 candles (a month of hourly candles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum_720: Option<f64>,
    /// Return over the last 2,160 candles (a quarter of hourly candles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum_2160: Option<f64>,
    /// Realised volatility of log returns, annualised (0.6 = 60% a year).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volatility: Option<f64>,
}

/// The team's standing, as the risk manager needs it. Fractions are of equity.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PortfolioContext {
    /// Current equity (cash plus positions at market), in the quote asset.
    pub equity: f64,
    /// Value of the position held in this symbol over equity (0 = flat).
    pub position_fraction: f64,
    /// Entry price of the position in this symbol, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_price: Option<f64>,
    /// Number of symbols in which the team holds a position.
    pub open_positions: u32,
    /// Drop of equity from its peak, as a fraction (0.1 = 10% below the peak).
    pub drawdown: f64,
    /// Loss of the current UTC day as a fraction of the day's opening equity (0 when up).
    pub daily_loss: f64,
}

/// The coordinator asks one role for its opinion in one round of a cycle.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RoundRequest {
    /// Unique per (strategy, symbol, candle or alert); a restarted coordinator reuses it.
    pub cycle_id: DecisionId,
    /// 1 = initial analysis; 2.. = debate rounds.
    pub round: u32,
    /// Name of the Strategy the cycle belongs to.
    pub strategy: StrategyName,
    /// The market the voters judge.
    pub snapshot: MarketSnapshot,
    /// The other voters' opinions of the previous round (empty in round 1).
    #[serde(default)]
    pub debate: Vec<Opinion>,
    /// Answers after this instant (ms since the epoch, on the coordinator's clock: a replay's is
    /// the candle's) are ignored for this round.
    pub deadline: i64,
    /// How long the coordinator waits for this round's answers after sending the request (ms): an
    /// assistant answers within it, so a model that has not replied in time gives way to the
    /// deterministic rule. 0: not said (a coordinator from before this field).
    #[serde(default)]
    pub round_timeout_ms: u64,
}

/// An opinion's figures by name. The names the rules write are `&'static str` (`Cow::Borrowed`),
/// so a cycle allocates nothing for them; names read from the wire or from an LLM are owned.
pub type Evidence = BTreeMap<std::borrow::Cow<'static, str>, f64>;

/// An assistant's view of a symbol.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Opinion {
    /// The cycle this opinion answers (the request's `cycleId`).
    pub cycle_id: DecisionId,
    /// The round this opinion answers (the request's `round`).
    pub round: u32,
    /// The TradingAssistant that answered.
    pub assistant: String,
    /// The role the assistant plays.
    pub role: Role,
    /// Symbol the opinion is about.
    pub symbol: Symbol,
    /// What the assistant votes for.
    pub action: Action,
    /// In [0, 1].
    pub confidence: f64,
    /// Free-text explanation, from the LLM or the rule.
    pub reasoning: String,
    /// Figures the opinion rests on (e.g. `rsi_14: 71.2`).
    #[serde(default)]
    pub evidence: Evidence,
    /// A veto (risk manager): forces HOLD whatever the tally.
    #[serde(default)]
    pub veto: bool,
    /// Whether an LLM formed the opinion (false: the deterministic rule, possibly as a fallback).
    #[serde(default)]
    pub llm: bool,
}

/// One voter's counted vote in a round.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Vote {
    /// The TradingAssistant that voted.
    pub assistant: String,
    /// The voter's role.
    pub role: Role,
    /// What it voted for.
    pub action: Action,
    /// Its confidence, in [0, 1].
    pub confidence: f64,
    /// Its vote weight in this cycle (static or learned).
    pub weight: f64,
    /// Whether the vote was a veto (which forces HOLD).
    #[serde(default)]
    pub veto: bool,
}

/// The tally of one round.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RoundTally {
    /// Round number, from 1.
    pub round: u32,
    /// The votes that arrived in time, one per voter.
    pub votes: Vec<Vote>,
    /// Σ weight × confidence per action.
    pub scores: BTreeMap<Action, f64>,
    /// Weight of the voters that answered in time (the numerator of the quorum).
    pub answered_weight: f64,
    /// Weight of all expected voters (the denominator of the quorum).
    pub total_weight: f64,
}

/// The outcome of a cycle, published once to the decision stream.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Equal to the cycle id: the JetStream message id that makes publication exactly-once.
    pub id: DecisionId,
    /// Name of the Strategy that decided.
    pub strategy: StrategyName,
    /// Symbol decided on.
    pub symbol: Symbol,
    /// The action decided (HOLD when vetoed or rejected).
    pub action: Action,
    /// Winning share of the final tally, in [0, 1].
    pub confidence: f64,
    /// Whether a round reached the policy's quorum and threshold with no veto.
    pub consensus_reached: bool,
    /// Whether a human was asked (whatever the answer, or if none came in time).
    pub escalated: bool,
    /// Whether a veto forced HOLD.
    pub vetoed: bool,
    /// The cycle was dropped: the policy's `escalation.action: Reject`, or a human rejected the
    /// escalation. No order follows it, not even the resize of a held position a HOLD may make.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rejected: bool,
    /// Who answered the escalation, when someone did in time: the answer's `by` (the relaying
    /// operator's annotation and Strategy, or `http-api`), as the identity the bus let send it
    /// said it; `None` for a decision nobody resolved (not escalated, or timed out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// The tally of every round, in order (at least one).
    pub rounds: Vec<RoundTally>,
    /// Every opinion of every round, in order: the debate transcript.
    #[serde(default)]
    pub transcript: Vec<Opinion>,
    /// The close the decision was taken on.
    pub price: f64,
    /// ms since the epoch.
    pub decided_at: i64,
}

/// A team that could not agree asks a human.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Escalation {
    /// The decision (cycle) id to approve or reject.
    pub id: DecisionId,
    /// Name of the Strategy that escalates.
    pub strategy: StrategyName,
    /// Symbol the cycle is about.
    pub symbol: Symbol,
    /// The leading action the human is asked to approve.
    pub proposed: Action,
    /// Σ weight × confidence per action in the last round.
    pub scores: BTreeMap<Action, f64>,
    /// How long the coordinator waits for an answer before it takes the policy's defaultAction.
    pub timeout_seconds: u32,
    /// When the escalation was raised, ms since the epoch.
    pub raised_at: i64,
}

/// A human's answer to an escalation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EscalationResolution {
    /// The escalation (decision) id answered.
    pub id: DecisionId,
    /// True approves the proposed action; false rejects the cycle (no order).
    pub approved: bool,
    /// Who answered (annotation, API token subject, ...), for the audit log.
    pub by: String,
    /// When the human answered, ms since the epoch.
    pub at: i64,
}

/// An assistant instance announcing it is alive.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    /// The TradingAssistant this instance belongs to.
    pub assistant: String,
    /// The role it plays (`IA_ROLE`, from the TradingAssistant's spec).
    pub role: Role,
    /// Pod or process name.
    pub instance: String,
    /// Name of the Strategy the assistant serves.
    pub strategy: StrategyName,
    /// Its vote weight (`IA_WEIGHT`, the TradingAssistant's spec.weight).
    pub weight: f64,
    /// When the heartbeat was sent, ms since the epoch.
    pub at: i64,
}

/// Side of an order.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Side {
    /// Buy the base asset with the quote asset.
    Buy,
    /// Sell the base asset for the quote asset.
    Sell,
}

/// Kind of an order.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum OrderKind {
    /// Fill at the current price (± slippage on paper).
    Market,
    /// Rest at `limitPrice` until filled or expired.
    Limit,
}

/// An order the executor sends; money and quantities are exact decimals (strings on the wire).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Idempotency key: one order per decision.
    pub decision_id: DecisionId,
    /// Name of the Strategy that trades.
    pub strategy: StrategyName,
    /// Exchange symbol, e.g. `BTCUSDT`.
    pub symbol: Symbol,
    /// BUY or SELL on the wire.
    pub side: Side,
    /// MARKET or LIMIT on the wire; a LIMIT order needs `limitPrice`.
    pub kind: OrderKind,
    /// Quantity of the base asset; positive.
    pub quantity: Decimal,
    /// Price of a LIMIT order (required for it, positive); `None` for a MARKET order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<Decimal>,
    /// When the order was made, ms since the epoch (the candle's time in a replay).
    pub at: i64,
}

/// An executed (part of an) order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Fill {
    /// The decision (and order) this fill executes.
    pub decision_id: DecisionId,
    /// Name of the Strategy that trades.
    pub strategy: StrategyName,
    /// Exchange symbol, e.g. `BTCUSDT`.
    pub symbol: Symbol,
    /// BUY or SELL on the wire.
    pub side: Side,
    /// Quantity executed, in the base asset; positive.
    pub quantity: Decimal,
    /// Average execution price, in the quote asset; positive.
    pub price: Decimal,
    /// Fee charged for the fill: in the quote asset on paper, in Binance's commission asset live.
    pub fee: Decimal,
    /// When the order executed, ms since the epoch.
    pub at: i64,
}

/// What became of an order, as the executor reports it and the `orders` table spells it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// The venue filled it.
    Filled,
    /// The venue or the paper exchange refused it (the report's reason says why).
    Rejected,
    /// Never filled: a resting limit order past `spec.exchange.limitTtlCandles`, or a live order
    /// too stale to send.
    Expired,
}

impl OrderStatus {
    /// `FILLED`, `REJECTED` or `EXPIRED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Filled => "FILLED",
            Self::Rejected => "REJECTED",
            Self::Expired => "EXPIRED",
        }
    }
}

/// What the executor service did with one order (`….order`, on the decision stream, message id
/// `<subject>/<decision id>`): the order as planned after the risk limits, what became of it, and
/// its fill. The auditor stores it as the `orders` row and its audit entry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrderReport {
    /// The order, whether or not it was sent.
    pub order: Order,
    /// Filled, refused, or expired unsent.
    pub status: OrderStatus,
    /// Its fill; present exactly when FILLED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill: Option<Fill>,
    /// Why it was placed (`decision`, `stop-loss`, `take-profit`), or why it was refused or expired.
    pub reason: String,
}

/// A closed candle the coordinator traded on, with executor and auditor services: on `….decision`
/// ahead of the decision taken on it (message id `<subject>/candle_<symbol>_<openTime>`), so that
/// the executor reads candles and decisions in the order the engine saw them (one subject: a
/// consumer of nats-server 2.9 filters on one). The executor fills resting limit orders, checks
/// stops and targets and marks its book with it, as the engine's desk does.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MarketCandle {
    /// Name of the Strategy that trades.
    pub strategy: StrategyName,
    /// Exchange symbol, e.g. `BTCUSDT`.
    pub symbol: Symbol,
    /// Open time, ms since the epoch.
    pub open_time: i64,
    /// Close time, ms since the epoch: a live order is sent only while the candle is fresh.
    pub close_time: i64,
    /// Open price.
    pub open: f64,
    /// High price.
    pub high: f64,
    /// Low price.
    pub low: f64,
    /// Close price: the reference price of the orders decided on it.
    pub close: f64,
    /// Base-asset volume.
    pub volume: f64,
    /// Whether it came from the live feed (false: a replay or the warm-up).
    pub live: bool,
    /// Annualised realised volatility up to it, which sizes positions (`None` while warming up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volatility: Option<f64>,
}

/// The team's book as the coordinator last saw it: published on `….portfolio` (core NATS, at most
/// every second, the latest only) and written by the operator into the Strategy's
/// `status.portfolio`, which `kubectl ia-agents status` shows.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PortfolioSnapshot {
    /// Name of the Strategy whose book it is.
    pub strategy: StrategyName,
    /// Cash plus positions at market, in the quote asset.
    pub equity: f64,
    /// Profit (negative: a loss) since the team started with `spec.capital`.
    pub pnl: f64,
    /// Symbols in which the team holds a position.
    pub open_positions: u32,
    /// The candle time the book is marked at, ms since the epoch.
    pub at: i64,
}

/// The executor's book of a live Strategy (`….book`, core NATS, the latest only), published after
/// each message of the decision stream it acted on: its cash and positions as the exchange filled
/// and the account reconciled them. In services mode the coordinator's view of the book follows it
/// (docs/architecture.md, "The executor and auditor services"), so that the team sizes and limits
/// against what the account holds, not against its own paper simulation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorBook {
    /// Name of the Strategy whose book it is.
    pub strategy: StrategyName,
    /// The open time of the last candle the executor acted on, ms since the epoch.
    pub at: i64,
    /// The last decision it acted on: the coordinator takes a book only once it covers the last
    /// decision the coordinator made, never one that predates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionId>,
    /// Cash, in the quote asset.
    pub cash: Decimal,
    /// The open positions.
    pub positions: Vec<BookPosition>,
}

/// One open position of an [`ExecutorBook`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BookPosition {
    /// The symbol held.
    pub symbol: Symbol,
    /// The quantity held, in the base asset.
    pub quantity: Decimal,
    /// The average entry price, in the quote asset.
    pub entry_price: Decimal,
    /// When the position was opened, ms since the epoch (its minimum hold counts from here).
    #[serde(default)]
    pub opened_at: i64,
}

/// The anchor of a Strategy's audit chain, kept outside its database: published by the coordinator
/// once a batch of audit rows is stored (never before, so it never points past the database), and
/// checked by `trading-agent audit verify --nats`: a chain that no longer reaches it was truncated
/// or rewritten.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditHead {
    /// Name of the Strategy whose chain it is.
    pub strategy: StrategyName,
    /// The hash of the chain's last entry: 64 lowercase hex digits.
    pub head: String,
    /// Entries in the chain (the last entry's `seq`); at least 1.
    pub entries: u64,
    /// When the entries were stored, ms since the epoch.
    pub at: i64,
    /// Whether the chain is HMAC-keyed (`IA_AUDIT_KEY`); an unkeyed one can be re-hashed by anyone
    /// who can write the database.
    #[serde(default)]
    pub keyed: bool,
}

/// Why bytes from the bus were rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not JSON, or not a JSON object (the parser's message).
    #[error("message is not a JSON object: {0}")]
    NotJson(String),
    /// No numeric `v` field.
    #[error("message has no numeric \"v\" (protocol version)")]
    MissingVersion,
    /// A `v` other than [`PROTOCOL_VERSION`] (the version received).
    #[error("message has protocol version {0}; this build speaks version {PROTOCOL_VERSION}")]
    UnsupportedVersion(u64),
    /// No string `type` field.
    #[error("message has no string \"type\"")]
    MissingType,
    /// A `type` this build does not know (the type received).
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// The fields do not fit the type: missing or of the wrong JSON type.
    #[error("malformed {kind} message: {error}")]
    Malformed {
        /// The message type, e.g. `opinion`.
        kind: String,
        /// serde's message: the missing or mistyped field.
        error: String,
    },
    /// The fields parse but a value is out of range or inconsistent.
    #[error("invalid {kind} message: field {field} {reason}")]
    Invalid {
        /// The message type, e.g. `opinion`.
        kind: &'static str,
        /// The field at fault, camelCase as on the wire (`snapshot.close`).
        field: &'static str,
        /// What is wrong with it (`must be in [0, 1], got 1.5`).
        reason: String,
    },
}

impl DecodeError {
    /// A stable, low-cardinality label for the rejected-messages metric.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::NotJson(_) => "not_json",
            DecodeError::MissingVersion => "missing_version",
            DecodeError::UnsupportedVersion(_) => "unsupported_version",
            DecodeError::MissingType => "missing_type",
            DecodeError::UnknownType(_) => "unknown_type",
            DecodeError::Malformed { .. } => "malformed",
            DecodeError::Invalid { .. } => "invalid",
        }
    }
}

/// What goes on the wire: the version, then the message with its `type` tag.
#[derive(Serialize)]
struct Envelope<'a> {
    v: u64,
    #[serde(flatten)]
    message: &'a Message,
}

/// Encodes a message with the current protocol version, written straight to bytes in the canonical
/// layout `{"v":1,"type":"<kind>",<the message's fields>}` that [`decode`] reads fastest.
pub fn encode(message: &Message) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        v: PROTOCOL_VERSION,
        message,
    })
    .expect("protocol messages always serialise")
}

/// Decodes and checks a message. Never panics, whatever the bytes.
///
/// Messages in [`encode`]'s canonical layout are read straight into their type; any other layout
/// (fields in another order, from other producers) and every faulty message take the general path,
/// which also names what is wrong.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    let message = match decode_canonical(bytes) {
        Some(message) => message,
        None => decode_any_layout(bytes)?,
    };
    check(&message)?;
    Ok(message)
}

/// `{"v":<this version>,"type":"<kind>",<fields>}`: the fields are the variant's own, so they are
/// read as `{<fields>}` into its struct, with no intermediate JSON tree and no buffering for the tag.
/// `None` when the layout or version differs or anything fails (the general path then decides and
/// explains).
fn decode_canonical(bytes: &[u8]) -> Option<Message> {
    let rest = bytes.strip_prefix(b"{\"v\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let version: u64 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    if version != PROTOCOL_VERSION {
        return None;
    }
    let rest = rest[digits..].strip_prefix(b",\"type\":\"")?;
    let end = rest.iter().position(|&b| b == b'"')?;
    let (kind, rest) = (&rest[..end], &rest[end + 1..]);
    let fields = rest.strip_prefix(b",")?;
    // a second `v` or `type` key (which the general path would read, last one winning) takes the
    // general path, which refuses duplicate keys: both paths always agree on what a message is
    if contains(fields, b"\"type\"") || contains(fields, b"\"v\"") {
        return None;
    }
    let mut object = Vec::with_capacity(fields.len() + 1);
    object.push(b'{');
    object.extend_from_slice(fields);
    // validated as UTF-8 once, as a whole, so the parser need not check each string again
    let object = String::from_utf8(object).ok()?;
    fn read<T: serde::de::DeserializeOwned>(object: &str) -> Option<T> {
        serde_json::from_str(object).ok()
    }
    Some(match kind {
        b"roundRequest" => Message::RoundRequest(Box::new(read(&object)?)),
        b"opinion" => Message::Opinion(read(&object)?),
        b"decision" => Message::Decision(read(&object)?),
        b"escalation" => Message::Escalation(read(&object)?),
        b"escalationResolution" => Message::EscalationResolution(read(&object)?),
        b"heartbeat" => Message::Heartbeat(read(&object)?),
        b"order" => Message::Order(read(&object)?),
        b"fill" => Message::Fill(read(&object)?),
        b"auditHead" => Message::AuditHead(read(&object)?),
        b"portfolio" => Message::Portfolio(read(&object)?),
        b"orderReport" => Message::OrderReport(read(&object)?),
        b"candle" => Message::Candle(read(&object)?),
        b"book" => Message::Book(read(&object)?),
        _ => return None,
    })
}

/// Any field order: through a JSON tree, checking the version and the type before the fields.
fn decode_any_layout(bytes: &[u8]) -> Result<Message, DecodeError> {
    let UniqueKeys(map) =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::NotJson(e.to_string()))?;
    let mut value = Value::Object(map);
    let map = value.as_object_mut().expect("an object");
    match map.remove("v").as_ref().and_then(Value::as_u64) {
        None => return Err(DecodeError::MissingVersion),
        Some(PROTOCOL_VERSION) => {}
        Some(other) => return Err(DecodeError::UnsupportedVersion(other)),
    }
    let kind = map
        .get("type")
        .and_then(Value::as_str)
        .ok_or(DecodeError::MissingType)?
        .to_string();
    if !TYPES.contains(&kind.as_str()) {
        return Err(DecodeError::UnknownType(kind));
    }
    serde_json::from_value(value).map_err(|e| DecodeError::Malformed {
        kind,
        error: e.to_string(),
    })
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A message's top level: a JSON object whose keys are all different. A key given twice is
/// refused rather than resolved (plain JSON parsers disagree on which one wins, and a forged
/// message could say one thing to one reader and another to the next).
struct UniqueKeys(serde_json::Map<String, Value>);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object with no key given twice")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<UniqueKeys, A::Error> {
                let mut map = serde_json::Map::new();
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    if map.contains_key(&key) {
                        return Err(serde::de::Error::custom(format!("key {key:?} given twice")));
                    }
                    map.insert(key, value);
                }
                Ok(UniqueKeys(map))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

fn invalid(kind: &'static str, field: &'static str, reason: impl Into<String>) -> DecodeError {
    DecodeError::Invalid {
        kind,
        field,
        reason: reason.into(),
    }
}

fn unit_interval(kind: &'static str, field: &'static str, x: f64) -> Result<(), DecodeError> {
    if (0.0..=1.0).contains(&x) {
        Ok(())
    } else {
        Err(invalid(kind, field, format!("must be in [0, 1], got {x}")))
    }
}

fn non_empty(kind: &'static str, field: &'static str, s: &str) -> Result<(), DecodeError> {
    if s.is_empty() {
        Err(invalid(kind, field, "must not be empty"))
    } else {
        Ok(())
    }
}

fn positive(kind: &'static str, field: &'static str, d: Decimal) -> Result<(), DecodeError> {
    if d > Decimal::ZERO {
        Ok(())
    } else {
        Err(invalid(kind, field, format!("must be positive, got {d}")))
    }
}

/// Semantic checks serde cannot express.
fn check(message: &Message) -> Result<(), DecodeError> {
    match message {
        Message::RoundRequest(r) => {
            non_empty("roundRequest", "cycleId", &r.cycle_id)?;
            if r.round == 0 {
                return Err(invalid("roundRequest", "round", "starts at 1"));
            }
            non_empty("roundRequest", "snapshot.symbol", &r.snapshot.symbol)?;
            if !(r.snapshot.close.is_finite() && r.snapshot.close > 0.0) {
                return Err(invalid(
                    "roundRequest",
                    "snapshot.close",
                    "must be a positive price",
                ));
            }
            r.debate.iter().try_for_each(check_opinion)
        }
        Message::Opinion(o) => check_opinion(o),
        Message::Decision(d) => {
            non_empty("decision", "id", &d.id)?;
            unit_interval("decision", "confidence", d.confidence)?;
            if d.rounds.is_empty() {
                return Err(invalid(
                    "decision",
                    "rounds",
                    "must hold at least one round",
                ));
            }
            Ok(())
        }
        Message::Escalation(e) => non_empty("escalation", "id", &e.id),
        Message::EscalationResolution(r) => {
            non_empty("escalationResolution", "id", &r.id)?;
            check_resolver(&r.by)
        }
        Message::Heartbeat(h) => {
            non_empty("heartbeat", "instance", &h.instance)?;
            if !(h.weight.is_finite() && h.weight >= 0.0) {
                return Err(invalid(
                    "heartbeat",
                    "weight",
                    "must be a non-negative number",
                ));
            }
            Ok(())
        }
        Message::Order(o) => {
            non_empty("order", "decisionId", &o.decision_id)?;
            positive("order", "quantity", o.quantity)?;
            match (o.kind, o.limit_price) {
                (OrderKind::Limit, None) => Err(invalid(
                    "order",
                    "limitPrice",
                    "is required for a LIMIT order",
                )),
                (OrderKind::Limit, Some(p)) => positive("order", "limitPrice", p),
                (OrderKind::Market, _) => Ok(()),
            }
        }
        Message::Fill(f) => {
            non_empty("fill", "decisionId", &f.decision_id)?;
            positive("fill", "quantity", f.quantity)?;
            positive("fill", "price", f.price)
        }
        Message::AuditHead(a) => check_audit_head(a),
        Message::OrderReport(r) => check_order_report(r),
        Message::Candle(c) => check_candle(c),
        Message::Book(b) => check_book(b),
        Message::Portfolio(p) => {
            non_empty("portfolio", "strategy", &p.strategy)?;
            if !(p.equity.is_finite() && p.equity >= 0.0) {
                return Err(invalid(
                    "portfolio",
                    "equity",
                    format!("must be a finite amount, at least 0, got {}", p.equity),
                ));
            }
            if !p.pnl.is_finite() {
                return Err(invalid("portfolio", "pnl", "must be finite"));
            }
            Ok(())
        }
    }
}

fn check_order_report(r: &OrderReport) -> Result<(), DecodeError> {
    check(&Message::Order(r.order.clone())).map_err(|e| match e {
        DecodeError::Invalid { field, reason, .. } => invalid("orderReport", field, reason),
        other => other,
    })?;
    match (&r.fill, r.status) {
        (Some(fill), OrderStatus::Filled) => {
            positive("orderReport", "fill.quantity", fill.quantity)?;
            positive("orderReport", "fill.price", fill.price)
        }
        (None, OrderStatus::Filled) => Err(invalid(
            "orderReport",
            "fill",
            "is required when the status is FILLED",
        )),
        (Some(_), _) => Err(invalid(
            "orderReport",
            "fill",
            "is present only when the status is FILLED",
        )),
        (None, _) => Ok(()),
    }
}

fn check_book(b: &ExecutorBook) -> Result<(), DecodeError> {
    non_empty("book", "strategy", &b.strategy)?;
    if b.cash.is_sign_negative() {
        return Err(invalid(
            "book",
            "cash",
            format!("must not be negative, got {}", b.cash),
        ));
    }
    for p in &b.positions {
        non_empty("book", "positions.symbol", &p.symbol)?;
        if p.quantity <= Decimal::ZERO {
            return Err(invalid(
                "book",
                "positions.quantity",
                format!("must be positive, got {}", p.quantity),
            ));
        }
        if p.entry_price <= Decimal::ZERO {
            return Err(invalid(
                "book",
                "positions.entryPrice",
                format!("must be positive, got {}", p.entry_price),
            ));
        }
    }
    Ok(())
}

fn check_candle(c: &MarketCandle) -> Result<(), DecodeError> {
    non_empty("candle", "symbol", &c.symbol)?;
    for (field, price) in [
        ("open", c.open),
        ("high", c.high),
        ("low", c.low),
        ("close", c.close),
    ] {
        if !(price.is_finite() && price > 0.0) {
            return Err(invalid(
                "candle",
                field,
                format!("must be a positive price, got {price}"),
            ));
        }
    }
    if c.low > c.high {
        return Err(invalid("candle", "low", "must not be above high"));
    }
    if c.close_time <= c.open_time {
        return Err(invalid("candle", "closeTime", "must be after openTime"));
    }
    Ok(())
}

fn check_audit_head(a: &AuditHead) -> Result<(), DecodeError> {
    non_empty("auditHead", "strategy", &a.strategy)?;
    let hex = a.head.len() == 64
        && a.head
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex {
        return Err(invalid(
            "auditHead",
            "head",
            format!("must be 64 lowercase hex digits, got {:?}", a.head),
        ));
    }
    if a.entries == 0 {
        return Err(invalid(
            "auditHead",
            "entries",
            "must be at least 1 (an anchor follows stored entries)",
        ));
    }
    Ok(())
}

/// The most characters an escalation's `by` may have: it is stored, audited and printed.
pub const MAX_RESOLVER_CHARS: usize = 512;

/// Who answered an escalation is stored, committed to the audit chain and printed by
/// `kubectl ia-agents why`: bounded, and no control characters that could rewrite a terminal.
fn check_resolver(by: &str) -> Result<(), DecodeError> {
    if by.chars().count() > MAX_RESOLVER_CHARS {
        return Err(invalid(
            "escalationResolution",
            "by",
            format!("at most {MAX_RESOLVER_CHARS} characters"),
        ));
    }
    if by.chars().any(char::is_control) {
        return Err(invalid(
            "escalationResolution",
            "by",
            "must not hold control characters",
        ));
    }
    Ok(())
}

fn check_opinion(o: &Opinion) -> Result<(), DecodeError> {
    non_empty("opinion", "cycleId", &o.cycle_id)?;
    non_empty("opinion", "assistant", &o.assistant)?;
    unit_interval("opinion", "confidence", o.confidence)?;
    if o.veto && o.action != Action::Hold {
        return Err(invalid(
            "opinion",
            "veto",
            "a veto must come with action HOLD",
        ));
    }
    Ok(())
}

/// Generators for the property tests of this crate's decoders (messages, YAML, manifests): any
/// JSON value, and structure-aware mutations of a valid document (shared with the agent's, in
/// `test_support::arbitrary`).
#[cfg(test)]
pub(crate) mod arbitrary {
    pub(crate) use test_support::arbitrary::{json, mutate};
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opinion() -> Opinion {
        Opinion {
            cycle_id: "btc-eth-paper/BTCUSDT/1609459200000".into(),
            round: 1,
            assistant: "technical-analyst".into(),
            role: Role::TechnicalAnalyst,
            symbol: "BTCUSDT".into(),
            action: Action::Buy,
            confidence: 0.7,
            reasoning: "RSI recovering from oversold, MACD crossing up".into(),
            evidence: BTreeMap::from([("rsi_14".into(), 34.0)]),
            veto: false,
            llm: false,
        }
    }

    #[test]
    fn a_key_given_twice_is_refused_whichever_path_reads_it() {
        let encoded = String::from_utf8(encode(&Message::Opinion(opinion()))).unwrap();
        assert!(matches!(
            decode(encoded.as_bytes()),
            Ok(Message::Opinion(_))
        ));
        let body = encoded.strip_suffix('}').unwrap();
        for twice in [
            format!(r#"{body},"type":"fill"}}"#),
            format!(r#"{body},"v":2}}"#),
            format!(r#"{body},"round":2}}"#),
        ] {
            let error = decode(twice.as_bytes()).unwrap_err();
            assert!(
                error.to_string().contains("given twice"),
                "{twice}: {error}"
            );
        }
    }

    #[test]
    fn who_resolved_is_bounded_and_holds_no_control_characters() {
        let resolution = |by: String| {
            encode(&Message::EscalationResolution(EscalationResolution {
                id: "d1".into(),
                approved: true,
                by,
                at: 0,
            }))
        };
        assert!(decode(&resolution("annotation on Strategy trading/btc".into())).is_ok());
        for bad in [
            "ops\u{1b}[2Japproved by nobody".to_string(),
            "line\nbreak".to_string(),
            "x".repeat(MAX_RESOLVER_CHARS + 1),
        ] {
            let error = decode(&resolution(bad)).unwrap_err().to_string();
            assert!(error.contains("by"), "{error}");
        }
    }

    fn order(kind: OrderKind, limit_price: Option<Decimal>) -> Message {
        Message::Order(Order {
            decision_id: "d1".into(),
            strategy: "s".into(),
            symbol: "BTCUSDT".into(),
            side: Side::Buy,
            kind,
            quantity: Decimal::new(15, 3),
            limit_price,
            at: 0,
        })
    }

    #[test]
    fn round_trips_with_version_and_type() {
        let msg = Message::Opinion(opinion());
        let bytes = encode(&msg);
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["v"], 1);
        assert_eq!(json["type"], "opinion");
        assert_eq!(decode(&bytes).unwrap(), msg);
    }

    #[test]
    fn the_canonical_layout_and_any_other_decode_the_same() {
        let msg = Message::Opinion(opinion());
        let bytes = encode(&msg);
        assert!(bytes.starts_with(br#"{"v":1,"type":"opinion","#));
        assert_eq!(decode_canonical(&bytes), Some(msg.clone()));
        // the version last and the tag after the first field: the general path
        let text = String::from_utf8(bytes).unwrap();
        let body = text
            .strip_prefix(r#"{"v":1,"type":"opinion","#)
            .and_then(|fields| fields.strip_suffix('}'))
            .unwrap();
        let (first, rest) = body.split_once(',').unwrap();
        let reordered = format!(r#"{{{first},"type":"opinion",{rest},"v":1}}"#);
        assert_eq!(decode_canonical(reordered.as_bytes()), None);
        assert_eq!(decode(reordered.as_bytes()).unwrap(), msg);
    }

    #[test]
    fn money_travels_as_exact_decimal_strings() {
        let bytes = encode(&order(OrderKind::Market, None));
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["quantity"], "0.015");
        assert_eq!(decode(&bytes).unwrap(), order(OrderKind::Market, None));
    }

    #[test]
    fn rejects_with_a_label_per_cause() {
        let cases: [(&[u8], &str); 8] = [
            (b"not json", "not_json"),
            // the canonical layout with a string that is not UTF-8
            (
                b"{\"v\":1,\"type\":\"heartbeat\",\"assistant\":\"\xff\"}",
                "not_json",
            ),
            (b"[1,2]", "not_json"),
            (br#"{"type":"opinion"}"#, "missing_version"),
            (br#"{"v":2,"type":"opinion"}"#, "unsupported_version"),
            (br#"{"v":1}"#, "missing_type"),
            (br#"{"v":1,"type":"gossip"}"#, "unknown_type"),
            (br#"{"v":1,"type":"opinion","round":1}"#, "malformed"),
        ];
        for (bytes, kind) in cases {
            assert_eq!(
                decode(bytes).unwrap_err().kind(),
                kind,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn semantic_errors_name_the_field() {
        let mut o = opinion();
        o.confidence = 1.5;
        let err = decode(&encode(&Message::Opinion(o))).unwrap_err();
        assert_eq!(err.kind(), "invalid");
        assert!(err.to_string().contains("field confidence"), "{err}");

        let mut o = opinion();
        o.veto = true;
        assert!(decode(&encode(&Message::Opinion(o)))
            .unwrap_err()
            .to_string()
            .contains("field veto"));

        let err = decode(&encode(&order(OrderKind::Limit, None))).unwrap_err();
        assert!(err.to_string().contains("field limitPrice"), "{err}");
    }

    fn audit_head(head: &str, entries: u64) -> Message {
        Message::AuditHead(AuditHead {
            strategy: "btc-eth-paper".into(),
            head: head.into(),
            entries,
            at: 1_700_000_000_000,
            keyed: true,
        })
    }

    #[test]
    fn an_audit_head_is_a_hex_hash_of_stored_entries() {
        let good = audit_head(&"ab".repeat(32), 12);
        let bytes = encode(&good);
        assert!(bytes.starts_with(br#"{"v":1,"type":"auditHead","#));
        assert_eq!(decode(&bytes), Ok(good));
        for (bad, field) in [
            (audit_head(&"AB".repeat(32), 12), "field head"),
            (audit_head(&"ab".repeat(31), 12), "field head"),
            (audit_head("not-a-hash", 12), "field head"),
            (audit_head(&"ab".repeat(32), 0), "field entries"),
        ] {
            let err = decode(&encode(&bad)).unwrap_err();
            assert_eq!(err.kind(), "invalid");
            assert!(err.to_string().contains(field), "{err}");
        }
        // a key given twice is refused here too
        let text = String::from_utf8(encode(&audit_head(&"ab".repeat(32), 12))).unwrap();
        let twice = format!(r#"{},"entries":1}}"#, text.strip_suffix('}').unwrap());
        assert!(decode(twice.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("given twice"));
    }

    #[test]
    fn an_executor_book_round_trips_and_a_broken_one_names_its_field() {
        let book = ExecutorBook {
            strategy: "btc".into(),
            at: 1_700_000_000_000,
            decision: Some("btc_BTCUSDT_1700000000000_schedule".into()),
            cash: Decimal::new(250_000, 2),
            positions: vec![BookPosition {
                symbol: "BTCUSDT".into(),
                quantity: Decimal::new(15, 3),
                entry_price: Decimal::from(40_000),
                opened_at: 1_699_990_000_000,
            }],
        };
        let message = Message::Book(book.clone());
        assert_eq!(decode(&encode(&message)), Ok(message));
        let mut negative = book.clone();
        negative.cash = Decimal::from(-1);
        let mut empty = book;
        empty.positions[0].quantity = Decimal::ZERO;
        for (broken, field) in [(negative, "cash"), (empty, "positions.quantity")] {
            let said = decode(&encode(&Message::Book(broken)))
                .unwrap_err()
                .to_string();
            assert!(said.contains(field), "{said}");
        }
    }

    #[test]
    fn unknown_fields_are_tolerated_for_forward_compatibility() {
        let mut json: Value =
            serde_json::from_slice(&encode(&Message::Opinion(opinion()))).unwrap();
        json["addedInAFutureMinorRelease"] = Value::from(true);
        assert!(decode(&serde_json::to_vec(&json).unwrap()).is_ok());
    }

    fn arb_opinion() -> impl Strategy<Value = Opinion> {
        (
            "[a-z0-9/-]{1,20}",
            1u32..10,
            prop::sample::select(Role::ALL.to_vec()),
            prop::sample::select(Action::ALL.to_vec()),
            0.0f64..=1.0,
            ".{0,40}",
            prop::collection::btree_map("[a-z_0-9]{1,8}", -1e9f64..1e9, 0..4),
        )
            .prop_map(
                |(cycle_id, round, role, action, confidence, reasoning, evidence)| Opinion {
                    cycle_id: cycle_id.into(),
                    round,
                    assistant: role.as_str().to_lowercase(),
                    role,
                    symbol: "ETHUSDT".into(),
                    action,
                    confidence,
                    reasoning,
                    evidence: evidence.into_iter().map(|(k, v)| (k.into(), v)).collect(),
                    veto: false,
                    llm: false,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The decoder is total: arbitrary bytes give a message or an error, never a panic.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        /// Mutations of valid messages (truncation, a flipped byte) never panic either.
        #[test]
        fn decoding_mutated_messages_never_panics(o in arb_opinion(), cut in 0usize..400, flip in 0usize..400, byte in any::<u8>()) {
            let mut bytes = encode(&Message::Opinion(o));
            let len = bytes.len();
            bytes[flip % len] = byte;
            bytes.truncate(cut.min(len));
            let _ = decode(&bytes);
        }

        /// Whatever the fast path accepts, the general path accepts as the same message.
        #[test]
        fn the_fast_path_never_accepts_what_the_general_path_would_not(o in arb_opinion(), cut in 0usize..400, flip in 0usize..400, byte in any::<u8>()) {
            let mut bytes = encode(&Message::Opinion(o));
            let len = bytes.len();
            bytes[flip % len] = byte;
            bytes.truncate(cut.min(len).max(len / 2));
            if let Some(fast) = decode_canonical(&bytes) {
                prop_assert_eq!(decode_any_layout(&bytes).ok(), Some(fast));
            }
        }

        #[test]
        fn valid_opinions_round_trip(o in arb_opinion()) {
            let msg = Message::Opinion(o);
            prop_assert_eq!(decode(&encode(&msg)).unwrap(), msg);
        }
    }

    // Generators of every message type, valid as `check` wants them: the round trip holds for each.

    fn arb_id() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9/_.:-]{1,24}"
    }

    fn arb_price() -> impl Strategy<Value = f64> {
        1e-8f64..1e9
    }

    fn arb_positive_decimal() -> impl Strategy<Value = Decimal> {
        (1i64..=i64::MAX, 0u32..=28).prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale))
    }

    fn arb_scores() -> impl Strategy<Value = BTreeMap<Action, f64>> {
        prop::collection::btree_map(
            prop::sample::select(Action::ALL.to_vec()),
            0.0f64..10.0,
            0..4,
        )
    }

    fn arb_snapshot() -> impl Strategy<Value = MarketSnapshot> {
        let indicators = (
            prop::option::of(0.0f64..100.0),
            prop::option::of(-1e6f64..1e6),
            prop::option::of(0.0f64..5.0),
            -1e12f64..1e12,
        )
            .prop_map(|(rsi_14, macd, volatility, obv)| Indicators {
                rsi_14,
                macd,
                volatility,
                obv,
                ..Indicators::default()
            });
        let portfolio = (
            0.0f64..1e12,
            0.0f64..=1.0,
            prop::option::of(arb_price()),
            any::<u32>(),
            0.0f64..=1.0,
        )
            .prop_map(
                |(equity, position_fraction, entry_price, open_positions, drawdown)| {
                    PortfolioContext {
                        equity,
                        position_fraction,
                        entry_price,
                        open_positions,
                        drawdown,
                        daily_loss: drawdown / 2.0,
                    }
                },
            );
        (
            "[A-Z]{3,10}",
            any::<i64>(),
            prop::array::uniform4(arb_price()),
            0.0f64..1e12,
            indicators,
            portfolio,
        )
            .prop_map(
                |(symbol, open_time, [open, high, low, close], volume, indicators, portfolio)| {
                    MarketSnapshot {
                        symbol: symbol.into(),
                        open_time,
                        open,
                        high,
                        low,
                        close,
                        volume,
                        indicators,
                        portfolio,
                    }
                },
            )
    }

    fn arb_round_request() -> impl Strategy<Value = Message> {
        (
            arb_id(),
            1u32..10,
            arb_id(),
            arb_snapshot(),
            prop::collection::vec(arb_opinion(), 0..3),
            any::<i64>(),
            any::<u64>(),
        )
            .prop_map(
                |(cycle_id, round, strategy, snapshot, debate, deadline, round_timeout_ms)| {
                    Message::RoundRequest(Box::new(RoundRequest {
                        cycle_id: cycle_id.into(),
                        round,
                        strategy: strategy.into(),
                        snapshot,
                        debate,
                        deadline,
                        round_timeout_ms,
                    }))
                },
            )
    }

    fn arb_tally() -> impl Strategy<Value = RoundTally> {
        let vote = (
            arb_id(),
            prop::sample::select(Role::ALL.to_vec()),
            prop::sample::select(Action::ALL.to_vec()),
            0.0f64..=1.0,
            0.0f64..10.0,
            any::<bool>(),
        )
            .prop_map(|(assistant, role, action, confidence, weight, veto)| Vote {
                assistant,
                role,
                action,
                confidence,
                weight,
                veto,
            });
        (
            1u32..10,
            prop::collection::vec(vote, 0..4),
            arb_scores(),
            0.0f64..10.0,
            0.0f64..10.0,
        )
            .prop_map(
                |(round, votes, scores, answered_weight, total_weight)| RoundTally {
                    round,
                    votes,
                    scores,
                    answered_weight,
                    total_weight,
                },
            )
    }

    fn arb_decision() -> impl Strategy<Value = Message> {
        (
            (arb_id(), arb_id(), "[A-Z]{3,10}"),
            prop::sample::select(Action::ALL.to_vec()),
            0.0f64..=1.0,
            prop::array::uniform4(any::<bool>()),
            prop::collection::vec(arb_tally(), 1..3),
            prop::collection::vec(arb_opinion(), 0..3),
            arb_price(),
            any::<i64>(),
        )
            .prop_map(
                |(
                    (id, strategy, symbol),
                    action,
                    confidence,
                    flags,
                    rounds,
                    transcript,
                    price,
                    decided_at,
                )| {
                    let [consensus_reached, escalated, vetoed, rejected] = flags;
                    Message::Decision(Decision {
                        id: id.into(),
                        strategy: strategy.into(),
                        symbol: symbol.into(),
                        action,
                        confidence,
                        consensus_reached,
                        escalated,
                        vetoed,
                        rejected,
                        resolved_by: None,
                        rounds,
                        transcript,
                        price,
                        decided_at,
                    })
                },
            )
    }

    fn arb_escalations() -> impl Strategy<Value = Message> {
        let escalation = (
            (arb_id(), arb_id(), "[A-Z]{3,10}"),
            prop::sample::select(Action::ALL.to_vec()),
            arb_scores(),
            any::<u32>(),
            any::<i64>(),
        )
            .prop_map(
                |((id, strategy, symbol), proposed, scores, timeout_seconds, raised_at)| {
                    Message::Escalation(Escalation {
                        id: id.into(),
                        strategy: strategy.into(),
                        symbol: symbol.into(),
                        proposed,
                        scores,
                        timeout_seconds,
                        raised_at,
                    })
                },
            );
        let resolution = (arb_id(), any::<bool>(), "\\PC{0,20}", any::<i64>()).prop_map(
            |(id, approved, by, at)| {
                Message::EscalationResolution(EscalationResolution {
                    id: id.into(),
                    approved,
                    by,
                    at,
                })
            },
        );
        prop_oneof![escalation, resolution]
    }

    fn arb_heartbeat() -> impl Strategy<Value = Message> {
        (
            arb_id(),
            prop::sample::select(Role::ALL.to_vec()),
            arb_id(),
            arb_id(),
            0.0f64..10.0,
            any::<i64>(),
        )
            .prop_map(|(assistant, role, instance, strategy, weight, at)| {
                Message::Heartbeat(Heartbeat {
                    assistant,
                    role,
                    instance,
                    strategy: strategy.into(),
                    weight,
                    at,
                })
            })
    }

    fn arb_trades() -> impl Strategy<Value = Message> {
        let side = prop::sample::select(vec![Side::Buy, Side::Sell]);
        let order = (
            (arb_id(), arb_id(), "[A-Z]{3,10}"),
            side.clone(),
            arb_positive_decimal(),
            prop::option::of(arb_positive_decimal()),
            any::<i64>(),
        )
            .prop_map(
                |((decision_id, strategy, symbol), side, quantity, limit_price, at)| {
                    Message::Order(Order {
                        decision_id: decision_id.into(),
                        strategy: strategy.into(),
                        symbol: symbol.into(),
                        side,
                        kind: if limit_price.is_some() {
                            OrderKind::Limit
                        } else {
                            OrderKind::Market
                        },
                        quantity,
                        limit_price,
                        at,
                    })
                },
            );
        let fill = (
            (arb_id(), arb_id(), "[A-Z]{3,10}"),
            side,
            arb_positive_decimal(),
            arb_positive_decimal(),
            (any::<i64>(), 0u32..=28).prop_map(|(m, s)| Decimal::new(m, s)),
            any::<i64>(),
        )
            .prop_map(
                |((decision_id, strategy, symbol), side, quantity, price, fee, at)| {
                    Message::Fill(Fill {
                        decision_id: decision_id.into(),
                        strategy: strategy.into(),
                        symbol: symbol.into(),
                        side,
                        quantity,
                        price,
                        fee,
                        at,
                    })
                },
            );
        prop_oneof![order, fill]
    }

    fn arb_audit_head() -> impl Strategy<Value = Message> {
        (
            arb_id(),
            "[0-9a-f]{64}",
            1u64..=u64::MAX,
            any::<i64>(),
            any::<bool>(),
        )
            .prop_map(|(strategy, head, entries, at, keyed)| {
                Message::AuditHead(AuditHead {
                    strategy: strategy.into(),
                    head,
                    entries,
                    at,
                    keyed,
                })
            })
    }

    fn arb_portfolio() -> impl Strategy<Value = Message> {
        (
            arb_id(),
            0.0f64..1e12,
            -1e12f64..1e12,
            any::<u32>(),
            any::<i64>(),
        )
            .prop_map(|(strategy, equity, pnl, open_positions, at)| {
                Message::Portfolio(PortfolioSnapshot {
                    strategy: strategy.into(),
                    equity,
                    pnl,
                    open_positions,
                    at,
                })
            })
    }

    fn arb_book() -> impl Strategy<Value = Message> {
        let position = (arb_id(), arb_positive_decimal(), arb_positive_decimal()).prop_map(
            |(symbol, quantity, entry_price)| BookPosition {
                symbol: symbol.into(),
                quantity,
                entry_price,
                opened_at: 0,
            },
        );
        (
            arb_id(),
            any::<i64>(),
            (0i64..=i64::MAX, 0u32..=28).prop_map(|(m, s)| Decimal::new(m, s)),
            prop::collection::vec(position, 0..4),
        )
            .prop_map(|(strategy, at, cash, positions)| {
                Message::Book(ExecutorBook {
                    strategy: strategy.into(),
                    at,
                    decision: Some(format!("d{at}").into()),
                    cash,
                    positions,
                })
            })
    }

    /// A valid message of any of the types.
    fn arb_message() -> impl Strategy<Value = Message> {
        prop_oneof![
            arb_book(),
            arb_round_request(),
            arb_opinion().prop_map(Message::Opinion),
            arb_decision(),
            arb_escalations(),
            arb_heartbeat(),
            arb_trades(),
            arb_audit_head(),
            arb_portfolio(),
        ]
    }

    /// `{"v":1,"type":"<kind>",<fields>}`: the canonical layout around any fields object.
    fn canonical(kind: &str, fields: &Value) -> Vec<u8> {
        let fields = serde_json::to_string(fields).unwrap();
        let inner = fields.strip_prefix('{').unwrap_or(&fields);
        format!(r#"{{"v":1,"type":"{kind}",{inner}"#).into_bytes()
    }

    /// What `decode` must guarantee of any input: no panic, and whatever it accepts is a valid
    /// message that survives its own round trip and that both paths read the same.
    fn check_total(bytes: &[u8]) -> Result<(), TestCaseError> {
        if let Ok(message) = decode(bytes) {
            prop_assert_eq!(decode(&encode(&message)), Ok(message.clone()));
            if let Some(fast) = decode_canonical(bytes) {
                prop_assert_eq!(decode_any_layout(bytes).ok(), Some(fast));
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Every message type survives its own encoding.
        #[test]
        fn every_message_type_round_trips(msg in arb_message()) {
            prop_assert_eq!(decode(&encode(&msg)), Ok(msg));
        }

        /// Truncated or corrupted encodings of every type never panic; what still decodes is sound.
        #[test]
        fn byte_mutations_of_every_type_never_panic(msg in arb_message(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut bytes = encode(&msg);
            let len = bytes.len();
            bytes[flip.index(len)] = byte;
            bytes.truncate(cut.index(len + 1));
            check_total(&bytes)?;
        }

        /// A field of any type replaced by any JSON value (or removed), in the canonical layout (the
        /// fast path) and in another (the general path): an error or a sound message, never a panic.
        #[test]
        fn structural_mutations_of_every_type_never_panic(msg in arb_message(), node in any::<usize>(), by in prop::option::of(arbitrary::json())) {
            let mut fields = serde_json::to_value(&msg).unwrap();
            let kind = fields.as_object_mut().unwrap().remove("type").unwrap();
            arbitrary::mutate(&mut fields, node, by);
            check_total(&canonical(kind.as_str().unwrap(), &fields))?;
            if let Value::Object(map) = &mut fields {
                map.insert("type".into(), kind);
                map.insert("v".into(), Value::from(PROTOCOL_VERSION));
            }
            check_total(&serde_json::to_vec(&fields).unwrap())?;
        }

        /// Any JSON object under each type tag: each type's fields read from arbitrary values.
        #[test]
        fn any_fields_under_every_type_never_panic(kind in prop::sample::select(TYPES.to_vec()), fields in arbitrary::json()) {
            check_total(&canonical(kind, &fields))?;
            let mut general = serde_json::json!({"type": kind, "v": 1});
            if let Value::Object(map) = fields {
                general.as_object_mut().unwrap().extend(map);
            }
            check_total(&serde_json::to_vec(&general).unwrap())?;
        }
    }
}
