//! `ConsensusPolicy` (`cp`): how a team decides.

use crate::{Action, Role};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a team of assistants reaches a decision: how many debate rounds, which weighted share wins,
/// how much of the team must answer, who may veto, and what happens when the team cannot agree.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "trading.ia-agents.dev",
    version = "v1alpha1",
    kind = "ConsensusPolicy",
    plural = "consensuspolicies",
    namespaced,
    status = "ConsensusPolicyStatus",
    shortname = "cp",
    category = "ia-agents",
    doc = "How a team of trading assistants decides: debate rounds, threshold, quorum, vetoes and escalation.",
    printcolumn(name = "Rounds", type_ = "integer", json_path = ".spec.maxRounds"),
    printcolumn(name = "Threshold", type_ = "number", json_path = ".spec.threshold"),
    printcolumn(name = "Quorum", type_ = "number", json_path = ".spec.quorum"),
    printcolumn(
        name = "Escalation",
        type_ = "string",
        json_path = ".spec.escalation.action"
    ),
    printcolumn(
        name = "Valid",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Valid\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("self.vetoRoles.all(r, r in self.voters)")
    .message("every vetoRoles entry must also be one of voters")
    .field_path(".vetoRoles")
    .reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase")]
pub struct ConsensusPolicySpec {
    /// Rounds per cycle: 1 analysis round plus up to maxRounds-1 debate rounds in which every voter
    /// sees the others' opinions and may revise its own.
    #[serde(default = "default_max_rounds")]
    #[schemars(range(min = 1, max = 10))]
    pub max_rounds: u32,

    /// Weighted share (sum of weight x confidence) the winning action needs, in (0, 1].
    #[serde(default = "default_threshold")]
    #[schemars(extend("minimum" = 0.0, "exclusiveMinimum" = true, "maximum" = 1.0))]
    pub threshold: f64,

    /// Share of the voters' total weight that must answer in a round for its tally to count, in (0, 1].
    #[serde(default = "default_quorum")]
    #[schemars(extend("minimum" = 0.0, "exclusiveMinimum" = true, "maximum" = 1.0))]
    pub quorum: f64,

    /// How long the coordinator waits for opinions in one round; late answers are ignored for that round.
    #[serde(default = "default_round_timeout")]
    #[schemars(range(min = 1, max = 600))]
    pub round_timeout_seconds: u32,

    /// Roles whose opinions are counted. The executor and auditor act on decisions and do not vote.
    #[serde(default = "default_voters")]
    #[schemars(length(min = 1, max = 7))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub voters: Vec<Role>,

    /// Roles that may force HOLD whatever the tally (by default the risk manager). Each must be a voter.
    #[serde(default = "default_veto_roles")]
    #[schemars(length(max = 7))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub veto_roles: Vec<Role>,

    /// Where vote weights come from: `static` uses each TradingAssistant's spec.weight; `learned`
    /// starts from it and follows the learning loop's multiplicative-weights updates.
    #[serde(default)]
    pub weighting: Weighting,

    /// What happens when no consensus is reached after the last round.
    #[serde(default)]
    pub escalation: EscalationSpec,
}

fn default_max_rounds() -> u32 {
    3
}
fn default_threshold() -> f64 {
    0.5
}
fn default_quorum() -> f64 {
    0.6
}
fn default_round_timeout() -> u32 {
    10
}
fn default_voters() -> Vec<Role> {
    Role::DEFAULT_VOTERS.to_vec()
}
fn default_veto_roles() -> Vec<Role> {
    vec![Role::RiskManager]
}

impl Default for ConsensusPolicySpec {
    fn default() -> Self {
        Self {
            max_rounds: default_max_rounds(),
            threshold: default_threshold(),
            quorum: default_quorum(),
            round_timeout_seconds: default_round_timeout(),
            voters: default_voters(),
            veto_roles: default_veto_roles(),
            weighting: Weighting::default(),
            escalation: EscalationSpec::default(),
        }
    }
}

/// Source of the vote weights.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum Weighting {
    /// Weights stay as written in each TradingAssistant.
    #[default]
    Static,
    /// Weights are learned from realised outcomes.
    Learned,
}

/// The policy's answer to a team that cannot agree.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EscalationSpec {
    /// `Escalate` asks a human (annotation or HTTP API) and waits up to timeoutSeconds (a human's
    /// reject drops the cycle as `Reject` does); `Hold` decides HOLD at once (a held position stays,
    /// and may be resized to its risk target); `Reject` drops the cycle at once: recorded as
    /// rejected, no order at all.
    #[serde(default)]
    pub action: EscalationAction,
    /// How long an escalation waits for a human before defaultAction is taken.
    #[serde(default = "default_escalation_timeout")]
    #[schemars(range(min = 1, max = 86400))]
    pub timeout_seconds: u32,
    /// The action taken when an escalation times out.
    #[serde(default)]
    pub default_action: Action,
}

fn default_escalation_timeout() -> u32 {
    300
}

impl Default for EscalationSpec {
    fn default() -> Self {
        Self {
            action: EscalationAction::default(),
            timeout_seconds: default_escalation_timeout(),
            default_action: Action::Hold,
        }
    }
}

/// What to do when no consensus is reached.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EscalationAction {
    /// Ask a human, then fall back to defaultAction after the timeout.
    #[default]
    Escalate,
    /// Decide HOLD immediately: a held position stays (the executor may resize it to its target).
    Hold,
    /// Drop the cycle immediately: recorded as rejected, no order at all (not even a resize).
    Reject,
}

/// Observed state of a ConsensusPolicy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConsensusPolicyStatus {
    /// The metadata.generation this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Valid`: whether the policy can be used by a Strategy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}
