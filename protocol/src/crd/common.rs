//! Types shared by the three custom resources.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A reference to another object in the same namespace, by name.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Default)]
pub struct LocalObjectRef {
    /// Name of the referenced object (in the same namespace).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
}

impl LocalObjectRef {
    /// A reference to the object named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

/// A key of a Kubernetes Secret in the same namespace.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Default)]
pub struct SecretKeyRef {
    /// Name of the Secret (in the same namespace).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Key inside the Secret whose value is used.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// Standard condition types and reasons, as constants so that the operator and tests agree on spelling.
pub mod conditions {
    /// Strategy and TradingAssistant: whether it does its job (a Strategy: not paused and its
    /// dependencies, coordinator and assistants ready; a TradingAssistant: its pods ready).
    pub const READY: &str = "Ready";
    /// TradingAssistant: its Deployment is rolling out a new revision.
    pub const PROGRESSING: &str = "Progressing";
    /// TradingAssistant: a replica failed or the rollout passed its progress deadline.
    pub const DEGRADED: &str = "Degraded";
    /// ConsensusPolicy: whether the spec passes the checks the schema cannot express.
    pub const VALID: &str = "Valid";
    /// Strategy: every operator-managed dependency (NATS, Postgres, Ollama) is up.
    pub const DEPENDENCIES_READY: &str = "DependenciesReady";
    /// Strategy: every TradingAssistant that references it is `Ready`.
    pub const ASSISTANTS_READY: &str = "AssistantsReady";
    /// Strategy, written by the decision consumer: whether the last decision reached consensus
    /// (`Consensus`, `NoConsensus`, `Vetoed`, `Rejected`).
    pub const CONSENSUS_REACHED: &str = "ConsensusReached";
    /// Strategy, written by the decision consumer: an escalation waits for a human.
    pub const ESCALATION_PENDING: &str = "EscalationPending";
    /// Strategy: `spec.paused` is set and the team is scaled to zero.
    pub const PAUSED: &str = "Paused";
}

/// Finds a condition by type.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Sets a condition the way Kubernetes expects: `lastTransitionTime` changes only when the status
/// changes; reason, message and observedGeneration are always refreshed. Returns whether anything changed.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition, now: Time) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            if existing.status != new.status {
                new.last_transition_time = now;
            } else {
                new.last_transition_time = existing.last_transition_time.clone();
            }
            let changed = *existing != new;
            *existing = new;
            changed
        }
        None => {
            new.last_transition_time = now;
            conditions.push(new);
            true
        }
    }
}

/// `true` when `status` of the condition `type_` is `"True"`.
pub fn condition_is_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn time(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    fn cond(status: &str, reason: &str) -> Condition {
        Condition {
            type_: conditions::READY.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: time(0),
        }
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let mut list = Vec::new();
        assert!(set_condition(&mut list, cond("False", "Pending"), time(10)));
        assert_eq!(list[0].last_transition_time, time(10));

        // Same status, new reason: updated, but the transition time stays.
        assert!(set_condition(
            &mut list,
            cond("False", "StrategyNotFound"),
            time(20)
        ));
        assert_eq!(list[0].reason, "StrategyNotFound");
        assert_eq!(list[0].last_transition_time, time(10));

        // Nothing new: reports no change.
        assert!(!set_condition(
            &mut list,
            cond("False", "StrategyNotFound"),
            time(30)
        ));

        // Status flips: the transition time moves.
        assert!(set_condition(
            &mut list,
            cond("True", "Available"),
            time(40)
        ));
        assert_eq!(list[0].last_transition_time, time(40));
        assert!(condition_is_true(&list, conditions::READY));
        assert_eq!(list.len(), 1);
    }
}
