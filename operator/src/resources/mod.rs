//! The objects the operator creates, as pure functions of the custom resources (DESIGN.md §3):
//! easy to unit-test, and the same code behind `trading-operator render` and the controllers.
//!
//! - [`assistant`]: a TradingAssistant's Deployment and role ConfigMap;
//! - [`strategy`]: a Strategy's coordinator (Deployment, Service), its managed dependencies (NATS,
//!   Postgres with a generated password Secret, Ollama with a model-pull Job) and NetworkPolicies.

pub mod assistant;
pub mod strategy;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The agent image the operator runs unless a TradingAssistant overrides it.
pub const AGENT_IMAGE: &str = concat!(
    "ghcr.io/ia-agents/trading-agent:",
    env!("CARGO_PKG_VERSION")
);
/// The agent image for coordinators and assistants: `IA_AGENT_IMAGE` (set by the Helm chart's
/// `agentImage`) or [`AGENT_IMAGE`]. A TradingAssistant's `spec.image` still wins.
pub fn agent_image() -> String {
    static IMAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    IMAGE
        .get_or_init(|| {
            std::env::var("IA_AGENT_IMAGE")
                .ok()
                .filter(|i| !i.trim().is_empty())
                .unwrap_or_else(|| AGENT_IMAGE.to_string())
        })
        .clone()
}

/// The port of the agent's health, metrics and API server.
pub const AGENT_PORT: i32 = 8080;
/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "trading-operator";

/// Why an object could not be built, naming the resource.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{kind} {name}: {reason}")]
    Invalid {
        kind: &'static str,
        name: String,
        reason: String,
    },
}

/// `app.kubernetes.io/*` labels of everything belonging to a strategy's team.
pub fn labels(strategy: &str, component: &str, instance: &str) -> BTreeMap<String, String> {
    [
        ("app.kubernetes.io/name", "ia-agents"),
        ("app.kubernetes.io/instance", instance),
        ("app.kubernetes.io/component", component),
        ("app.kubernetes.io/part-of", strategy),
        ("app.kubernetes.io/managed-by", FIELD_MANAGER),
        ("trading.ia-agents.dev/strategy", strategy),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The labels that select one component's pods (stable across upgrades: no version in them).
pub fn selector(strategy: &str, component: &str, instance: &str) -> BTreeMap<String, String> {
    labels(strategy, component, instance)
        .into_iter()
        .filter(|(k, _)| k != "app.kubernetes.io/managed-by" && k != "app.kubernetes.io/part-of")
        .collect()
}

/// The controller owner reference of `owner` (deleting it garbage-collects the child).
pub fn owner<K: Resource<DynamicType = ()>>(owner: &K) -> Option<OwnerReference> {
    owner.controller_owner_ref(&())
}

/// The restricted pod security every container of ours runs with.
pub fn container_security() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": 65532,
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"}
    })
}

/// Converts a JSON object into a typed Kubernetes object (a mistake in a builder fails here, in tests).
pub fn typed<T: DeserializeOwned>(
    kind: &'static str,
    name: &str,
    value: Value,
) -> Result<T, BuildError> {
    serde_json::from_value(value).map_err(|e| BuildError::Invalid {
        kind,
        name: name.to_string(),
        reason: e.to_string(),
    })
}

/// A name derived from `base`, within Kubernetes' 63-character limit.
pub fn child_name(base: &str, suffix: &str) -> String {
    let mut name = format!("{base}-{suffix}");
    name.truncate(63);
    name.trim_end_matches('-').to_string()
}
