//! What the store's reads return beside the rows it writes (`rows::DecisionRow` for one decision
//! with its debate, `rows::OrderRow` for orders): typed rows, one struct per shape read. The API
//! owns how they look in JSON (`api::schema`); nothing here is serialised as it stands.

/// A decision as the listings read it: outcome and figures, every round's scores, no debate.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DecisionSummary {
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
    /// Whether the cycle was dropped (no order follows).
    pub rejected: bool,
    /// Who answered the escalation, when someone did.
    pub resolved_by: Option<String>,
    /// Rounds held.
    pub rounds: i32,
    /// Every round's tally, as the protocol's `RoundTally` list in JSON (the `votes` column).
    #[sqlx(rename = "votes")]
    pub tally: String,
    /// The close the decision was taken on.
    pub price: f64,
    /// When it was decided, ms since the epoch.
    pub decided_at: i64,
}

/// An assistant's current vote weight.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredWeight {
    /// The assistant's name.
    pub assistant: String,
    /// Its weight (learned, or as declared).
    pub weight: f64,
    /// When it was written, ms since the epoch.
    pub updated_at: i64,
}

/// An open position.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredPosition {
    /// The symbol held.
    pub symbol: String,
    /// Quantity held in the base asset, a decimal string.
    pub quantity: String,
    /// Average entry price, a decimal string.
    pub entry_price: String,
    /// When the book was written, ms since the epoch.
    pub updated_at: i64,
}

/// A portfolio snapshot: a point of the equity curve.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Snapshot {
    /// When it was taken, ms since the epoch.
    pub at: i64,
    /// Equity in the quote asset, a decimal string.
    pub equity: String,
    /// Cash in the quote asset, a decimal string.
    pub cash: String,
}

/// The book: open positions and the latest snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPortfolio {
    /// Open positions, by symbol.
    pub positions: Vec<StoredPosition>,
    /// The latest snapshot, when there is one.
    pub latest: Option<Snapshot>,
}
