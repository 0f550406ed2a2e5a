//! `TradingAssistant` (`ta`): one specialist of the team, scaled as pods.

use super::LocalObjectRef;
use crate::{Action, Role};
use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One specialist of a trading team (market monitor, technical analyst, fundamental analyst, risk
/// manager, strategist, executor or auditor), run as a Deployment of the trading-agent image and
/// scalable with `kubectl scale`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "trading.ia-agents.dev",
    version = "v1alpha1",
    kind = "TradingAssistant",
    plural = "tradingassistants",
    namespaced,
    status = "TradingAssistantStatus",
    shortname = "ta",
    category = "ia-agents",
    doc = "One specialist of a trading team, run as pods of the trading-agent image.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Role", type_ = "string", json_path = ".spec.role"),
    printcolumn(
        name = "Strategy",
        type_ = "string",
        json_path = ".spec.strategyRef.name"
    ),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Weight", type_ = "number", json_path = ".status.weight"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("!has(self.model) || !(self.role in ['executor', 'auditor'])")
    .message("model is only used by reasoning roles; executor and auditor are deterministic")
    .field_path(".model")
    .reason(Reason::FieldValueForbidden))]
#[x_kube(validation = Rule::new("!(self.role in ['executor', 'auditor']) || self.replicas <= 1")
    .message("executor and auditor run as one pod: each keeps one book or one audit chain from the decision stream")
    .field_path(".replicas")
    .reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase")]
pub struct TradingAssistantSpec {
    /// The Strategy (same namespace) this assistant works for.
    pub strategy_ref: LocalObjectRef,

    /// The specialist this assistant is. Immutable: create a new TradingAssistant to change it.
    #[x_kube(validation = Rule::new("self == oldSelf").message("role is immutable; create a new TradingAssistant instead"))]
    pub role: Role,

    /// Pods serving this role; replicas share the role's requests through a NATS queue group. The
    /// executor and the auditor run as one pod at most (each keeps one book or one audit chain).
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 20))]
    pub replicas: i32,

    /// Initial vote weight; with a `learned` ConsensusPolicy the learning loop adjusts it (status.weight).
    #[serde(default = "default_weight")]
    #[schemars(extend("minimum" = 0.0, "exclusiveMinimum" = true, "maximum" = 10.0))]
    pub weight: f64,

    /// LLM the assistant reasons with through Ollama. Absent: deterministic reasoning only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,

    /// Role-specific parameters (e.g. `alertThreshold: "0.03"` for the market monitor, `feeds` for the
    /// fundamental analyst), passed to the pods through a ConfigMap.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,

    /// Agent image override (default: the operator's agent image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub image: Option<String>,

    /// Compute resources of each pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Node labels the pods must run on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Tolerations of the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
}

fn default_replicas() -> i32 {
    1
}
fn default_weight() -> f64 {
    1.0
}

/// The LLM an assistant asks to interpret its evidence.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ModelSpec {
    /// Ollama model name (e.g. llama3.2:3b).
    #[schemars(
        length(min = 1, max = 200),
        regex(pattern = r"^[a-zA-Z0-9][a-zA-Z0-9._:/-]*$")
    )]
    pub name: String,
    /// Sampling temperature.
    #[serde(default = "default_temperature")]
    #[schemars(range(min = 0.0, max = 2.0))]
    pub temperature: f64,
    /// Per-request timeout; on timeout the assistant falls back to its deterministic rule. Capped at
    /// nine tenths of the ConsensusPolicy's roundTimeoutSeconds, so the assistant always answers in time.
    #[serde(default = "default_model_timeout")]
    #[schemars(range(min = 1, max = 600))]
    pub timeout_seconds: u32,
}

fn default_temperature() -> f64 {
    0.2
}
fn default_model_timeout() -> u32 {
    30
}

/// Observed state of a TradingAssistant.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TradingAssistantStatus {
    /// The metadata.generation this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pods of the Deployment (read by the scale subresource).
    #[serde(default)]
    pub replicas: i32,
    /// Pods ready to answer.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Label selector of the pods, as a string (read by the scale subresource and HPA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Current vote weight (learned, or spec.weight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// The assistant's most recent opinion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_opinion: Option<OpinionSummary>,
    /// Ready, Progressing, Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// An opinion, as shown on the TradingAssistant.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OpinionSummary {
    /// Symbol of the decision the opinion was a vote in.
    pub symbol: String,
    /// What the assistant voted for in the decision's last round.
    pub action: Action,
    /// Its confidence in that vote, in [0, 1] (rounded to 3 decimals).
    pub confidence: f64,
    /// When it was given (RFC 3339).
    pub at: String,
}
