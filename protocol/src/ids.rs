//! Identifiers that cross modules and processes, as types of their own, so that a decision's id
//! cannot be passed where a symbol or a Strategy's name is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The id of a cycle and of the decision it ends in, which is also its orders' and escalation's
/// idempotency key: `<strategy>_<symbol>_<openTime>_<trigger>` (a stop or a target appends its
/// reason). On the wire it is a plain string.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(transparent)]
pub struct DecisionId(String);

impl DecisionId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it is empty (never, for a decision that was made; a decoder refuses one).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Deref for DecisionId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for DecisionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for DecisionId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DecisionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for DecisionId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for DecisionId {
    fn from(id: &str) -> Self {
        Self(id.to_string())
    }
}

impl From<DecisionId> for String {
    fn from(id: DecisionId) -> Self {
        id.0
    }
}

impl PartialEq<str> for DecisionId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for DecisionId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for DecisionId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<DecisionId> for String {
    fn eq(&self, other: &DecisionId) -> bool {
        *self == other.0
    }
}

impl PartialEq<DecisionId> for str {
    fn eq(&self, other: &DecisionId) -> bool {
        self == other.0
    }
}

impl PartialEq<DecisionId> for &str {
    fn eq(&self, other: &DecisionId) -> bool {
        *self == other.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_id_is_a_plain_string_on_the_wire() {
        let id = DecisionId::from("s_BTCUSDT_0_schedule");
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"s_BTCUSDT_0_schedule\""
        );
        let back: DecisionId = serde_json::from_str("\"s_BTCUSDT_0_schedule\"").unwrap();
        assert_eq!(back, id);
        assert_eq!(back, "s_BTCUSDT_0_schedule");
        assert_eq!(id.to_string(), "s_BTCUSDT_0_schedule");
    }
}
