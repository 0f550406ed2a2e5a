//! The objects the operator creates, as pure functions of the custom resources
//! (docs/architecture.md, "From a Strategy to running pods and back"): easy to unit-test, and the
//! same code behind `trading-operator render` and the controllers.
//!
//! - [`assistant`]: a TradingAssistant's Deployment, role ConfigMap and NetworkPolicy;
//! - [`strategy`]: a Strategy's coordinator (Deployment, Service), its managed dependencies (NATS,
//!   Postgres with a generated password Secret, Ollama with a model-pull Job) and NetworkPolicies;
//! - [`network`]: what those NetworkPolicies are made of, and who the operator is told may reach
//!   the teams (and where DNS and the internet are);
//! - [`nats`]: the team's NATS identities: a managed NATS's generated nkeys and configuration, and
//!   each pod's own seed, mounted from the generated or the referenced Secret;
//! - [`services`]: when a team runs its executor and auditor as services of their own, and what
//!   their pods (and the coordinator's) then get.

pub mod assistant;
pub mod nats;
pub mod network;
pub mod services;
pub mod strategy;

use k8s_openapi::api::core::v1::{
    Capabilities, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, Probe, SeccompProfile,
    SecretKeySelector, SecurityContext, ServicePort, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use serde::Serialize;
use serde_json::Value;
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
            std::env::var(protocol::env::AGENT_IMAGE)
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
    /// The spec cannot be turned into the object (e.g. it does not serialise as YAML).
    #[error("{kind} {name}: {reason}")]
    Invalid {
        /// Kind of the object being built (`ConfigMap`).
        kind: &'static str,
        /// Its name.
        name: String,
        /// What failed, with the field (`data.strategy.yaml: ...`).
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
pub fn container_security() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(65532),
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(drop_all()),
        seccomp_profile: Some(runtime_default()),
        ..Default::default()
    }
}

/// No Linux capability at all.
pub fn drop_all() -> Capabilities {
    Capabilities {
        drop: Some(vec!["ALL".into()]),
        ..Default::default()
    }
}

/// The container runtime's default seccomp profile.
pub fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        ..Default::default()
    }
}

/// An environment variable with a value.
pub fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

/// An environment variable from a key of a Secret (credentials never appear in a spec).
pub fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A named container port.
pub fn container_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        ..Default::default()
    }
}

/// A probe GETting `path` on the `http` port every `period` seconds.
pub fn http_probe(path: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        ..Default::default()
    }
}

/// A Service port forwarding to the pods' port of the same name.
pub fn service_port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::String(name.into())),
        ..Default::default()
    }
}

/// Mounts volume `name` at `path`.
pub fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..Default::default()
    }
}

/// A scratch volume (the root filesystem is read-only).
pub fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(Default::default()),
        ..Default::default()
    }
}

/// Labels as a selector (`matchLabels`).
pub fn match_labels(labels: BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels),
        ..Default::default()
    }
}

/// A built object as it is rendered and applied. k8s-openapi writes `apiVersion` and `kind` into
/// every embedded PersistentVolumeClaim (a StatefulSet's `volumeClaimTemplates`); the objects
/// have never carried them, so they are removed: neither the rendered manifests nor the fields
/// a server-side apply owns change with the typed builders.
pub fn manifest(object: &impl Serialize) -> Value {
    let mut value = serde_json::to_value(object).expect("Kubernetes objects serialise");
    if let Some(templates) = value
        .pointer_mut("/spec/volumeClaimTemplates")
        .and_then(Value::as_array_mut)
    {
        for template in templates.iter_mut().filter_map(Value::as_object_mut) {
            template.remove("apiVersion");
            template.remove("kind");
        }
    }
    value
}

/// A name derived from `base`, within Kubernetes' 63-character limit.
pub fn child_name(base: &str, suffix: &str) -> String {
    let mut name = format!("{base}-{suffix}");
    name.truncate(63);
    name.trim_end_matches('-').to_string()
}

/// The objects of a file of `config/samples`, for the resources' unit tests.
#[cfg(test)]
pub(crate) fn sample<T: serde::de::DeserializeOwned>(file: &str) -> Vec<T> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config/samples")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    crate::manifests::parse_documents(&text, &path)
        .unwrap()
        .into_iter()
        .map(|d| serde_json::from_value(d.value).unwrap())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn a_manifest_keeps_its_own_kind_but_not_its_claim_templates_kinds() {
        let sts = StatefulSet {
            metadata: ObjectMeta {
                name: Some("db".into()),
                ..Default::default()
            },
            spec: StatefulSetSpec {
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some("data".into()),
                        ..Default::default()
                    },
                    ..Default::default()
                }]),
                ..Default::default()
            },
            ..Default::default()
        };
        // k8s-openapi writes them into the embedded claim
        let typed = serde_json::to_value(&sts).unwrap();
        assert_eq!(
            typed["spec"]["volumeClaimTemplates"][0]["kind"],
            "PersistentVolumeClaim"
        );
        let m = manifest(&sts);
        assert_eq!(
            (m["apiVersion"].as_str(), m["kind"].as_str()),
            (Some("apps/v1"), Some("StatefulSet"))
        );
        assert_eq!(
            m["spec"]["volumeClaimTemplates"],
            serde_json::json!([{"metadata": {"name": "data"}}])
        );
    }

    #[test]
    fn child_names_stay_within_63_characters() {
        let long = "a".repeat(70);
        assert_eq!(child_name(&long, "nats").len(), 63);
        assert_eq!(child_name("team", "nats"), "team-nats");
        // never ends on the separator
        assert!(!child_name(&"b".repeat(62), "x").ends_with('-'));
    }
}
