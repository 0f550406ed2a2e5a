//! Identifiers that cross modules and processes, as types of their own, so that a decision's id
//! cannot be passed where a symbol or a Strategy's name is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A string identifier as a type of its own: plain text on the wire (`serde(transparent)`), read
/// as `&str` anywhere (`Deref`, `AsRef`, `Borrow`, so maps keyed by it look up by `&str`), compared
/// with strings, and never confused with another identifier by the compiler.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Serialize, Deserialize, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Whether it is empty (a decoder refuses a message whose id or symbol is).
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        /// As the string it is (`"BTCUSDT"`), so messages and errors that print one with `{:?}`
        /// read as they did when it was a `String`.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

string_id!(
    /// The id of a cycle and of the decision it ends in, which is also its orders' and escalation's
    /// idempotency key: `<strategy>_<symbol>_<openTime>_<trigger>` (a stop or a target appends its
    /// reason). On the wire it is a plain string.
    DecisionId
);

string_id!(
    /// The name of a Strategy (the custom resource's `metadata.name`) as a message carries it: the
    /// team it belongs to, unique within its namespace. On the wire it is a plain string.
    StrategyName
);

string_id!(
    /// An exchange symbol, base and quote asset together as the exchange spells it (`BTCUSDT`). On
    /// the wire it is a plain string.
    Symbol
);

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

    #[test]
    fn a_symbol_reads_as_text_and_looks_up_by_str() {
        let symbol = Symbol::from("BTCUSDT");
        assert_eq!(serde_json::to_string(&symbol).unwrap(), "\"BTCUSDT\"");
        let held: std::collections::HashMap<Symbol, u32> = [(symbol.clone(), 1)].into();
        assert_eq!(held.get("BTCUSDT"), Some(&1));
        assert!(symbol.starts_with("BTC"));
        assert_eq!(format!("{symbol:?}"), "\"BTCUSDT\"");
        assert_eq!(String::from(symbol), "BTCUSDT");
    }
}
