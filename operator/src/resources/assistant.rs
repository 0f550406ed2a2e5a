//! TradingAssistant → a ConfigMap of its role parameters and a Deployment of `trading-agent
//! assistant`, scaled by `spec.replicas` (the scale subresource), owned by the TradingAssistant.

use super::{
    child_name, container_security, labels, owner, selector, typed, BuildError, AGENT_PORT,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use protocol::crd::{Strategy, TradingAssistant};
use serde_json::json;

/// The component label of assistants.
pub const COMPONENT: &str = "assistant";

/// The role parameters as a ConfigMap (mounted read-only, read as `--param` values).
pub fn config_map(ta: &TradingAssistant) -> Result<ConfigMap, BuildError> {
    let name = ta.metadata.name.clone().unwrap_or_default();
    let strategy = &ta.spec.strategy_ref.name;
    let params: serde_json::Map<String, serde_json::Value> = ta
        .spec
        .params
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    typed(
        "ConfigMap",
        &name,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": child_name(&name, "params"),
                "namespace": ta.metadata.namespace,
                "labels": labels(strategy, COMPONENT, &name),
                "ownerReferences": owner(ta).into_iter().collect::<Vec<_>>(),
            },
            "data": params,
        }),
    )
}

/// The assistant's Deployment. `strategy` (when found) gives the namespace's NATS and Ollama.
pub fn deployment(
    ta: &TradingAssistant,
    strategy: Option<&Strategy>,
) -> Result<Deployment, BuildError> {
    let name = ta.metadata.name.clone().unwrap_or_default();
    let namespace = ta
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let strategy_name = &ta.spec.strategy_ref.name;
    let nats_url = strategy.map_or_else(
        || format!("nats://{}:4222", child_name(strategy_name, "nats")),
        super::strategy::nats_url,
    );
    let params = ta
        .spec
        .params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut env = vec![
        json!({"name": "IA_NATS_URL", "value": nats_url}),
        json!({"name": "IA_NAMESPACE", "value": namespace}),
        json!({"name": "IA_STRATEGY", "value": strategy_name}),
        json!({"name": "IA_ROLE", "value": ta.spec.role.as_str()}),
        json!({"name": "IA_ASSISTANT", "value": name}),
        json!({"name": "IA_WEIGHT", "value": ta.spec.weight.to_string()}),
        json!({"name": "IA_INSTANCE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
        json!({"name": "IA_LOG_FORMAT", "value": "json"}),
        json!({"name": "IA_LISTEN", "value": format!("0.0.0.0:{AGENT_PORT}")}),
    ];
    if !params.is_empty() {
        env.push(json!({"name": "IA_PARAMS", "value": params}));
    }
    if let Some(model) = &ta.spec.model {
        env.push(json!({"name": "IA_MODEL", "value": model.name}));
        env.push(json!({"name": "IA_MODEL_TEMPERATURE", "value": model.temperature.to_string()}));
        env.push(json!({"name": "IA_MODEL_TIMEOUT", "value": model.timeout_seconds.to_string()}));
        if let Some(url) = strategy.and_then(super::strategy::ollama_url) {
            env.push(json!({"name": "IA_OLLAMA_URL", "value": url}));
        }
    }
    typed(
        "Deployment",
        &name,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": child_name(&name, "assistant"),
                "namespace": namespace,
                "labels": labels(strategy_name, COMPONENT, &name),
                "ownerReferences": owner(ta).into_iter().collect::<Vec<_>>(),
            },
            "spec": {
                // a paused Strategy scales its whole team to zero
                "replicas": if strategy.is_some_and(|s| s.spec.paused) { 0 } else { ta.spec.replicas },
                "selector": {"matchLabels": selector(strategy_name, COMPONENT, &name)},
                "template": {
                    "metadata": {"labels": labels(strategy_name, COMPONENT, &name)},
                    "spec": {
                        "automountServiceAccountToken": false,
                        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                        "nodeSelector": ta.spec.node_selector,
                        "tolerations": ta.spec.tolerations,
                        "containers": [{
                            "name": "assistant",
                            "image": ta.spec.image.clone().unwrap_or_else(super::agent_image),
                            "args": ["assistant"],
                            "env": env,
                            "ports": [{"name": "http", "containerPort": AGENT_PORT}],
                            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
                            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
                            "resources": ta.spec.resources,
                            "securityContext": container_security(),
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }],
                        "volumes": [{"name": "tmp", "emptyDir": {}}],
                    }
                }
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::parse_documents;

    fn team() -> Vec<TradingAssistant> {
        parse_documents(
            include_str!("../../../config/samples/team.yaml"),
            std::path::Path::new("team.yaml"),
        )
        .unwrap()
        .into_iter()
        .map(|d| serde_json::from_value(d.value).unwrap())
        .collect()
    }

    #[test]
    fn an_assistant_runs_its_role_non_root_with_its_params() {
        let ta = team()
            .into_iter()
            .find(|t| t.spec.role == protocol::Role::MarketMonitor)
            .unwrap();
        let d = deployment(&ta, None).unwrap();
        let spec = d.spec;
        assert_eq!(spec.replicas, Some(1));
        let pod = spec.template.spec.unwrap();
        let c = &pod.containers[0];
        let env: std::collections::BTreeMap<_, _> = c
            .env
            .clone()
            .unwrap()
            .into_iter()
            .filter_map(|e| e.value.map(|v| (e.name, v)))
            .collect();
        assert_eq!(env["IA_ROLE"], "marketMonitor");
        assert_eq!(env["IA_STRATEGY"], "btc-eth-paper");
        assert!(env["IA_PARAMS"].contains("alertThreshold=0.03"));
        let sc = c.security_context.clone().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.capabilities.unwrap().drop.unwrap(), vec!["ALL"]);
        let labels = d.metadata.labels.unwrap();
        assert_eq!(labels["app.kubernetes.io/component"], "assistant");
        assert_eq!(
            spec.selector.match_labels.unwrap()["app.kubernetes.io/instance"],
            "market-monitor"
        );
        let cm = config_map(&ta).unwrap();
        assert_eq!(cm.data.unwrap()["alertThreshold"], "0.03");
    }
}
