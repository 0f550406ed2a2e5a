//! The API's JSON: one type per response body, built from the store's typed rows, with its
//! OpenAPI schema derived from the type (utoipa). Field names are camelCase on the wire.

use crate::store::{
    DecisionRow, DecisionSummary, OrderRow, Snapshot, StoredPortfolio, StoredPosition, StoredWeight,
};
use serde::Serialize;
use serde_json::Value;
pub use utoipa::ToSchema;

/// A page of a listing, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    /// The items of the page.
    pub items: Vec<T>,
    /// The page size asked for (default 100).
    pub limit: i64,
    /// How many newer items were skipped.
    pub offset: i64,
}

/// Items that are not paged.
#[derive(Debug, Serialize, ToSchema)]
pub struct Items<T: ToSchema> {
    /// Every item.
    pub items: Vec<T>,
}

/// A decision in a listing: its outcome and every round's scores, without the debate.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionItem {
    /// The decision (cycle) id: `<strategy>_<symbol>_<openTime>_<trigger>`.
    pub id: String,
    /// The symbol decided on.
    pub symbol: String,
    /// `BUY`, `SELL` or `HOLD`.
    pub action: String,
    /// Winning share of the final tally, in [0, 1].
    pub confidence: f64,
    /// Whether the winning share reached the policy's threshold.
    pub consensus_reached: bool,
    /// Whether a human was asked.
    pub escalated: bool,
    /// Whether a veto forced HOLD.
    pub vetoed: bool,
    /// Whether the cycle was dropped: no order follows.
    pub rejected: bool,
    /// Who answered the escalation (the operator's relayed annotation, or `http-api`); absent
    /// when nobody did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// Rounds held.
    pub rounds: i32,
    /// Every round's tally (the protocol's `RoundTally`: round, scores by action, votes,
    /// answered and total weight).
    #[schema(value_type = Vec<Object>)]
    pub tally: Value,
    /// The close the decision was taken on.
    pub price: f64,
    /// When it was decided, ms since the epoch.
    pub decided_at: i64,
}

/// One decision with its whole debate.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionView {
    /// The decision (cycle) id.
    pub id: String,
    /// The symbol decided on.
    pub symbol: String,
    /// `BUY`, `SELL` or `HOLD`.
    pub action: String,
    /// Winning share of the final tally, in [0, 1].
    pub confidence: f64,
    /// Whether the winning share reached the policy's threshold.
    pub consensus_reached: bool,
    /// Whether a human was asked.
    pub escalated: bool,
    /// Whether a veto forced HOLD.
    pub vetoed: bool,
    /// Whether the cycle was dropped: no order follows.
    pub rejected: bool,
    /// Who answered the escalation (the operator's relayed annotation, or `http-api`); absent
    /// when nobody did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// Every round's tally (the protocol's `RoundTally`).
    #[schema(value_type = Vec<Object>)]
    pub rounds: Value,
    /// Every opinion of every round (the protocol's `Opinion`: assistant, role, action,
    /// confidence, reasoning, evidence, veto).
    #[schema(value_type = Vec<Object>)]
    pub transcript: Value,
    /// The close the decision was taken on.
    pub price: f64,
    /// When it was decided, ms since the epoch.
    pub decided_at: i64,
}

/// An order, as planned, with what became of it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    /// The decision (or stop/target exit) the order carries out.
    pub decision_id: String,
    /// The symbol traded.
    pub symbol: String,
    /// `BUY` or `SELL`.
    pub side: String,
    /// `MARKET` or `LIMIT`.
    pub kind: String,
    /// Quantity in the base asset, a decimal string.
    pub quantity: String,
    /// `FILLED`, `REJECTED` or `EXPIRED`.
    pub status: String,
    /// Fill price (decimal string), when filled.
    pub price: Option<String>,
    /// Fee in the quote asset (decimal string), when filled.
    pub fee: Option<String>,
    /// Why it was placed, refused or expired.
    pub reason: String,
    /// When it was planned, ms since the epoch.
    pub at: i64,
}

/// An open position.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PositionItem {
    /// The symbol held.
    pub symbol: String,
    /// Quantity in the base asset, a decimal string.
    pub quantity: String,
    /// Average entry price, a decimal string.
    pub entry_price: String,
    /// When the book was written, ms since the epoch.
    pub updated_at: i64,
}

/// A portfolio snapshot: a point of the equity curve.
#[derive(Debug, Serialize, ToSchema)]
pub struct SnapshotItem {
    /// When it was taken, ms since the epoch.
    pub at: i64,
    /// Equity in the quote asset, a decimal string.
    pub equity: String,
    /// Cash in the quote asset, a decimal string.
    pub cash: String,
}

/// The book: open positions and the latest snapshot.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortfolioView {
    /// Open positions, by symbol.
    pub positions: Vec<PositionItem>,
    /// The latest snapshot (null before the first).
    pub latest: Option<SnapshotItem>,
}

/// An assistant's opinion in the latest decision's final round.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastOpinion {
    /// The decision it was given in.
    pub decision_id: String,
    /// The assistant's role.
    pub role: Value,
    /// `BUY`, `SELL` or `HOLD`.
    pub action: Value,
    /// Its confidence, in [0, 1] (0: it abstained).
    pub confidence: Value,
    /// Why, in words.
    pub reasoning: Value,
}

/// An assistant of the team, as the console shows it.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssistantItem {
    /// Its name (its TradingAssistant).
    pub assistant: String,
    /// Its stored vote weight (learned, or as declared), when written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// When the weight was written, ms since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    /// Its role, from its heartbeat or its last opinion.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub role: Option<Value>,
    /// The pod (or process) it last heartbeat from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Its last heartbeat, ms since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<i64>,
    /// Whether it heartbeat within the last 15 s.
    pub healthy: bool,
    /// Its opinion in the latest decision's final round.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_opinion: Option<LastOpinion>,
}

/// What the coordinator serves.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    /// The Strategy's name.
    pub strategy: String,
    /// The agent's version.
    pub version: String,
    /// Whether the listings need the token.
    pub read_auth: bool,
    /// Whether a token is set (mutating routes refuse everyone without one).
    pub token_set: bool,
}

/// An error: what is wrong and, for bad input, the field at fault.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What is wrong (never an internal error's details).
    pub error: String,
    /// The query parameter or path segment at fault.
    pub field: Option<String>,
}

/// A health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `not ready`.
    pub status: String,
}

/// JSON text of the store, read back (an empty list when it is not JSON, which never happens
/// with what the store wrote).
fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::Array(Vec::new()))
}

impl From<DecisionSummary> for DecisionItem {
    fn from(d: DecisionSummary) -> Self {
        Self {
            tally: json(&d.tally),
            id: d.id,
            symbol: d.symbol,
            action: d.action,
            confidence: d.confidence,
            consensus_reached: d.consensus_reached,
            escalated: d.escalated,
            vetoed: d.vetoed,
            rejected: d.rejected,
            resolved_by: d.resolved_by,
            rounds: d.rounds,
            price: d.price,
            decided_at: d.decided_at,
        }
    }
}

impl From<DecisionRow> for DecisionView {
    fn from(d: DecisionRow) -> Self {
        Self {
            rounds: json(&d.votes),
            transcript: json(&d.transcript),
            id: d.id,
            symbol: d.symbol,
            action: d.action,
            confidence: d.confidence,
            consensus_reached: d.consensus_reached,
            escalated: d.escalated,
            vetoed: d.vetoed,
            rejected: d.rejected,
            resolved_by: d.resolved_by,
            price: d.price,
            decided_at: d.decided_at,
        }
    }
}

impl From<OrderRow> for OrderItem {
    fn from(o: OrderRow) -> Self {
        Self {
            decision_id: o.decision_id,
            symbol: o.symbol,
            side: o.side,
            kind: o.kind,
            quantity: o.quantity,
            status: o.status,
            price: o.price,
            fee: o.fee,
            reason: o.reason,
            at: o.at,
        }
    }
}

impl From<StoredPosition> for PositionItem {
    fn from(p: StoredPosition) -> Self {
        Self {
            symbol: p.symbol,
            quantity: p.quantity,
            entry_price: p.entry_price,
            updated_at: p.updated_at,
        }
    }
}

impl From<Snapshot> for SnapshotItem {
    fn from(s: Snapshot) -> Self {
        Self {
            at: s.at,
            equity: s.equity,
            cash: s.cash,
        }
    }
}

impl From<StoredPortfolio> for PortfolioView {
    fn from(p: StoredPortfolio) -> Self {
        Self {
            positions: p.positions.into_iter().map(Into::into).collect(),
            latest: p.latest.map(Into::into),
        }
    }
}

impl From<StoredWeight> for AssistantItem {
    fn from(w: StoredWeight) -> Self {
        Self {
            assistant: w.assistant,
            weight: Some(w.weight),
            updated_at: Some(w.updated_at),
            ..Self::default()
        }
    }
}
