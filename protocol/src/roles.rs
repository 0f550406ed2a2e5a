//! Roles of the assistants and the actions they vote for.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One of the seven specialists of a trading team.
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// Watches prices and volumes; raises an ALERT that starts a cycle.
    MarketMonitor,
    /// Scores indicator signals (RSI, MACD, Bollinger, ...).
    TechnicalAnalyst,
    /// Reads news feeds and scores sentiment per symbol.
    FundamentalAnalyst,
    /// Sizes positions and vetoes actions that break a risk limit.
    RiskManager,
    /// Combines the market regime with the ML ensemble's forecast.
    Strategist,
    /// Turns decisions into orders on the (paper) exchange.
    Executor,
    /// Keeps the hash-chained audit log.
    Auditor,
}

impl Role {
    /// All roles, in the order of the seed's team.
    pub const ALL: [Role; 7] = [
        Role::MarketMonitor,
        Role::TechnicalAnalyst,
        Role::FundamentalAnalyst,
        Role::RiskManager,
        Role::Strategist,
        Role::Executor,
        Role::Auditor,
    ];

    /// The roles that vote in a cycle by default (the executor and auditor act, they do not vote).
    pub const DEFAULT_VOTERS: [Role; 5] = [
        Role::MarketMonitor,
        Role::TechnicalAnalyst,
        Role::FundamentalAnalyst,
        Role::RiskManager,
        Role::Strategist,
    ];

    /// The name used in manifests, subjects and labels (`technicalAnalyst`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::MarketMonitor => "marketMonitor",
            Role::TechnicalAnalyst => "technicalAnalyst",
            Role::FundamentalAnalyst => "fundamentalAnalyst",
            Role::RiskManager => "riskManager",
            Role::Strategist => "strategist",
            Role::Executor => "executor",
            Role::Auditor => "auditor",
        }
    }

    /// Whether this role forms opinions (and may therefore use an LLM).
    pub fn reasons(self) -> bool {
        !matches!(self, Role::Executor | Role::Auditor)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a role name that is not one of the seven.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown role {0:?}: expected one of marketMonitor, technicalAnalyst, fundamentalAnalyst, riskManager, strategist, executor, auditor")]
pub struct UnknownRole(pub String);

impl std::str::FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

/// What a team can decide to do with a symbol.
#[derive(
    Serialize,
    Deserialize,
    JsonSchema,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Action {
    /// Open a position in the symbol (or resize a held one to its risk target).
    Buy,
    /// Close the position held in the symbol (spot: no shorting, so nothing when flat).
    Sell,
    /// Open nothing and close nothing (a held position may still be resized to its risk target);
    /// the default.
    #[default]
    Hold,
}

impl Action {
    /// All actions, in their sort order (BUY, SELL, HOLD), as the keys of a tally's scores.
    pub const ALL: [Action; 3] = [Action::Buy, Action::Sell, Action::Hold];

    /// The name on the wire and in manifests (`BUY`, `SELL`, `HOLD`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Buy => "BUY",
            Action::Sell => "SELL",
            Action::Hold => "HOLD",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip_through_serde_and_from_str() {
        for role in Role::ALL {
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
    }

    #[test]
    fn unknown_role_error_names_the_input() {
        let err = "trader".parse::<Role>().unwrap_err();
        assert!(err.to_string().contains("\"trader\""), "{err}");
    }

    #[test]
    fn actions_are_upper_case_on_the_wire() {
        assert_eq!(serde_json::to_string(&Action::Buy).unwrap(), "\"BUY\"");
        assert_eq!(
            serde_json::from_str::<Action>("\"HOLD\"").unwrap(),
            Action::Hold
        );
    }

    #[test]
    fn only_executor_and_auditor_do_not_reason() {
        let silent: Vec<Role> = Role::ALL.into_iter().filter(|r| !r.reasons()).collect();
        assert_eq!(silent, vec![Role::Executor, Role::Auditor]);
    }
}
