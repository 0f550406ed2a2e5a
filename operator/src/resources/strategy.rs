//! Strategy → the coordinator (Deployment, Service, a ConfigMap holding the Strategy and its
//! ConsensusPolicy as the coordinator reads them), each dependency marked `managed: true` (NATS with
//! JetStream, Postgres with a generated-password Secret, Ollama with a model-pull Job), and
//! NetworkPolicies that let only the strategy's own pods reach its dependencies. External
//! dependencies are referenced, never created.

use super::{
    child_name, container_security, labels, owner, selector, typed, BuildError, AGENT_PORT,
};
use protocol::crd::{ConsensusPolicy, Dependency, Strategy};
use serde_json::{json, Value};

/// Images of the managed dependencies.
pub const NATS_IMAGE: &str = "nats:2.10-alpine";
pub const POSTGRES_IMAGE: &str = "postgres:16-alpine";
pub const OLLAMA_IMAGE: &str = "ollama/ollama:0.5.7";

fn name(s: &Strategy) -> String {
    s.metadata.name.clone().unwrap_or_default()
}

fn managed(d: &Dependency) -> bool {
    d.managed == Some(true)
}

/// The NATS URL the team uses: the managed server's Service, or the external URL.
pub fn nats_url(s: &Strategy) -> String {
    let d = &s.spec.dependencies.nats;
    if managed(d) {
        format!("nats://{}:4222", child_name(&name(s), "nats"))
    } else {
        d.url.clone().unwrap_or_else(|| "nats://nats:4222".into())
    }
}

/// The Ollama URL, when the Strategy has an Ollama dependency.
pub fn ollama_url(s: &Strategy) -> Option<String> {
    let o = s.spec.dependencies.ollama.as_ref()?;
    if o.managed == Some(true) {
        Some(format!("http://{}:11434", child_name(&name(s), "ollama")))
    } else {
        o.url.clone()
    }
}

/// The Secret holding a managed Postgres's password (`password` key).
pub fn postgres_secret_name(s: &Strategy) -> String {
    child_name(&name(s), "postgres")
}

fn meta(s: &Strategy, object: &str, component: &str) -> Value {
    json!({
        "name": object,
        "namespace": s.metadata.namespace,
        "labels": labels(&name(s), component, &name(s)),
        "ownerReferences": owner(s).into_iter().collect::<Vec<_>>(),
    })
}

/// Restricted pod security; `fsGroup` makes the managed dependencies' volumes writable by the
/// non-root user their containers run as.
fn pod_security() -> Value {
    json!({"runAsNonRoot": true, "fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}})
}

/// Everything a Strategy owns, in apply order. `policy` is the ConsensusPolicy it references.
pub fn objects(s: &Strategy, policy: &ConsensusPolicy) -> Result<Vec<Value>, BuildError> {
    let strategy = name(s);
    let mut out = Vec::new();
    // the coordinator's configuration: the very manifests, as `--strategy-file` / `--policy-file`
    let manifest = |v: Value| serde_yaml::to_string(&v).unwrap_or_default();
    let strategy_doc = json!({"apiVersion": "trading.ia-agents.dev/v1alpha1", "kind": "Strategy",
        "metadata": {"name": strategy, "namespace": s.metadata.namespace}, "spec": s.spec});
    let policy_doc = json!({"apiVersion": "trading.ia-agents.dev/v1alpha1", "kind": "ConsensusPolicy",
        "metadata": {"name": policy.metadata.name, "namespace": policy.metadata.namespace}, "spec": policy.spec});
    let config = child_name(&strategy, "coordinator");
    out.push(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": meta(s, &config, "coordinator"),
        "data": {"strategy.yaml": manifest(strategy_doc), "policy.yaml": manifest(policy_doc)},
    }));
    let mut env = vec![
        json!({"name": "IA_NATS_URL", "value": nats_url(s)}),
        json!({"name": "IA_NAMESPACE", "value": s.metadata.namespace.clone().unwrap_or_else(|| "default".into())}),
        json!({"name": "IA_STRATEGY_FILE", "value": "/etc/ia-agents/strategy.yaml"}),
        json!({"name": "IA_POLICY_FILE", "value": "/etc/ia-agents/policy.yaml"}),
        json!({"name": "IA_LISTEN", "value": format!("0.0.0.0:{AGENT_PORT}")}),
        json!({"name": "IA_LOG_FORMAT", "value": "json"}),
        // a replaying coordinator stays up when its candles run out, rather than restarting
        json!({"name": "IA_HOLD_AFTER_REPLAY", "value": "true"}),
    ];
    let pg = &s.spec.dependencies.postgres;
    if managed(pg) {
        env.push(json!({"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": postgres_secret_name(s), "key": "password"}}}));
        env.push(json!({"name": "IA_DB", "value": format!("postgres://ia@{}:5432/ia", child_name(&strategy, "postgres"))}));
    } else if let Some(r) = &pg.secret_ref {
        env.push(
            json!({"name": "IA_DB", "valueFrom": {"secretKeyRef": {"name": r.name, "key": r.key}}}),
        );
    } else if let Some(url) = &pg.url {
        env.push(json!({"name": "IA_DB", "value": url}));
    }
    // exchange credentials reach the coordinator from their Secret, never through the spec
    if let Some(secret) = s
        .spec
        .exchange
        .as_ref()
        .and_then(|e| e.credentials_secret_ref.as_ref())
    {
        for (var, key) in [
            ("IA_EXCHANGE_API_KEY", "apiKey"),
            ("IA_EXCHANGE_API_SECRET", "apiSecret"),
        ] {
            env.push(json!({"name": var, "valueFrom": {"secretKeyRef": {"name": secret.name, "key": key}}}));
        }
    }
    let replicas = if s.spec.paused { 0 } else { 1 };
    out.push(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": meta(s, &config, "coordinator"),
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector(&strategy, "coordinator", &strategy)},
            "template": {
                "metadata": {"labels": labels(&strategy, "coordinator", &strategy)},
                "spec": {
                    "automountServiceAccountToken": false,
                    "securityContext": pod_security(),
                    "containers": [{
                        "name": "coordinator",
                        "image": super::agent_image(),
                        "args": ["coordinator"],
                        "env": env,
                        "ports": [{"name": "http", "containerPort": AGENT_PORT}],
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
                        "securityContext": container_security(),
                        "volumeMounts": [
                            {"name": "config", "mountPath": "/etc/ia-agents", "readOnly": true},
                            {"name": "tmp", "mountPath": "/tmp"}
                        ],
                    }],
                    "volumes": [
                        {"name": "config", "configMap": {"name": config}},
                        {"name": "tmp", "emptyDir": {}}
                    ],
                }
            }
        }
    }));
    out.push(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": meta(s, &config, "coordinator"),
        "spec": {"selector": selector(&strategy, "coordinator", &strategy), "ports": [{"name": "http", "port": AGENT_PORT, "targetPort": "http"}]},
    }));
    if managed(&s.spec.dependencies.nats) {
        out.extend(stateful(
            s,
            "nats",
            NATS_IMAGE,
            4222,
            json!(["-js", "-sd", "/data"]),
            json!([]),
            "/data",
            s.spec.dependencies.nats.storage.as_deref(),
        ));
    }
    if managed(pg) {
        out.extend(stateful(
            s,
            "postgres",
            POSTGRES_IMAGE,
            5432,
            json!([]),
            json!([
                {"name": "POSTGRES_USER", "value": "ia"},
                {"name": "POSTGRES_DB", "value": "ia"},
                {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
                {"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": postgres_secret_name(s), "key": "password"}}}
            ]),
            "/var/lib/postgresql/data",
            pg.storage.as_deref(),
        ));
    }
    if let Some(o) = s
        .spec
        .dependencies
        .ollama
        .as_ref()
        .filter(|o| o.managed == Some(true))
    {
        out.extend(stateful(s, "ollama", OLLAMA_IMAGE, 11434, json!([]), json!([{"name": "OLLAMA_MODELS", "value": "/data/models"}, {"name": "HOME", "value": "/data"}]), "/data", o.storage.as_deref()));
        if !o.models.is_empty() {
            let host = format!("{}:11434", child_name(&strategy, "ollama"));
            out.push(json!({
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": meta(s, &child_name(&strategy, "ollama-pull"), "ollama"),
                "spec": {
                    "backoffLimit": 10,
                    "template": {
                        "metadata": {"labels": labels(&strategy, "ollama-pull", &strategy)},
                        "spec": {
                            "restartPolicy": "OnFailure",
                            "automountServiceAccountToken": false,
                            "securityContext": pod_security(),
                            "containers": [{
                                "name": "pull",
                                "image": OLLAMA_IMAGE,
                                "command": ["/bin/sh", "-c", o.models.iter().map(|m| format!("ollama pull {m}")).collect::<Vec<_>>().join(" && ")],
                                "env": [{"name": "OLLAMA_HOST", "value": host}, {"name": "HOME", "value": "/tmp"}],
                                "securityContext": container_security(),
                                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                            }],
                            "volumes": [{"name": "tmp", "emptyDir": {}}],
                        }
                    }
                }
            }));
        }
    }
    // every object must be a valid Kubernetes object of its kind
    for v in &out {
        check(v)?;
    }
    Ok(out)
}

/// A managed dependency: StatefulSet with a volume claim, a Service, and a NetworkPolicy letting
/// only the strategy's pods in.
#[allow(clippy::too_many_arguments)]
fn stateful(
    s: &Strategy,
    component: &str,
    image: &str,
    port: i32,
    args: Value,
    env: Value,
    mount: &str,
    storage: Option<&str>,
) -> Vec<Value> {
    let strategy = name(s);
    let object = child_name(&strategy, component);
    // Postgres also needs a writable socket directory (the root filesystem stays read-only)
    let (mounts, volumes) = if component == "postgres" {
        (
            json!([{"name": "data", "mountPath": mount}, {"name": "run", "mountPath": "/var/run/postgresql"}]),
            json!([{"name": "run", "emptyDir": {}}]),
        )
    } else {
        (json!([{"name": "data", "mountPath": mount}]), json!([]))
    };
    vec![
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": meta(s, &object, component),
            "spec": {
                "serviceName": object,
                "replicas": 1,
                "selector": {"matchLabels": selector(&strategy, component, &strategy)},
                "template": {
                    "metadata": {"labels": labels(&strategy, component, &strategy)},
                    "spec": {
                        "automountServiceAccountToken": false,
                        "securityContext": {"runAsNonRoot": true, "runAsUser": 70, "fsGroup": 70, "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [{
                            "name": component,
                            "image": image,
                            "args": args,
                            "env": env,
                            "ports": [{"name": "service", "containerPort": port}],
                            "readinessProbe": {"tcpSocket": {"port": "service"}, "periodSeconds": 5},
                            "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
                            "volumeMounts": mounts,
                        }],
                        "volumes": volumes,
                    }
                },
                "volumeClaimTemplates": [{
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage.unwrap_or("1Gi")}}}
                }]
            }
        }),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": meta(s, &object, component),
            "spec": {"selector": selector(&strategy, component, &strategy), "ports": [{"name": "service", "port": port, "targetPort": "service"}]},
        }),
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": meta(s, &object, component),
            "spec": {
                "podSelector": {"matchLabels": selector(&strategy, component, &strategy)},
                "policyTypes": ["Ingress"],
                "ingress": [{
                    "from": peers(&strategy, component),
                    "ports": [{"port": port, "protocol": "TCP"}]
                }]
            }
        }),
    ]
}

/// Who may reach a managed dependency: the strategy's own pods and, for NATS, the operator (in any
/// namespace), which consumes the decision stream and relays escalation answers.
fn peers(strategy: &str, component: &str) -> Value {
    let mut from =
        vec![json!({"podSelector": {"matchLabels": {"trading.ia-agents.dev/strategy": strategy}}})];
    if component == "nats" {
        from.push(json!({
            "namespaceSelector": {},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "trading-operator"}}
        }));
    }
    json!(from)
}

/// The managed Postgres's password Secret; an existing password is kept (it must never change under
/// a running database), a new one comes from `generate`.
pub fn postgres_secret(
    s: &Strategy,
    existing: Option<String>,
    generate: impl FnOnce() -> String,
) -> Result<Value, BuildError> {
    let password = existing.unwrap_or_else(generate);
    let v = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": meta(s, &postgres_secret_name(s), "postgres"),
        "type": "Opaque",
        "stringData": {"password": password},
    });
    check(&v)?;
    Ok(v)
}

/// Decodes an object into its k8s-openapi type: a builder's mistake fails here.
fn check(v: &Value) -> Result<(), BuildError> {
    use k8s_openapi::api::{
        apps::v1 as apps, batch::v1 as batch, core::v1 as core, networking::v1 as net,
    };
    let kind = v["kind"].as_str().unwrap_or_default();
    let name = v["metadata"]["name"].as_str().unwrap_or_default();
    match kind {
        "Deployment" => typed::<apps::Deployment>("Deployment", name, v.clone()).map(|_| ()),
        "StatefulSet" => typed::<apps::StatefulSet>("StatefulSet", name, v.clone()).map(|_| ()),
        "Service" => typed::<core::Service>("Service", name, v.clone()).map(|_| ()),
        "ConfigMap" => typed::<core::ConfigMap>("ConfigMap", name, v.clone()).map(|_| ()),
        "Secret" => typed::<core::Secret>("Secret", name, v.clone()).map(|_| ()),
        "Job" => typed::<batch::Job>("Job", name, v.clone()).map(|_| ()),
        "NetworkPolicy" => {
            typed::<net::NetworkPolicy>("NetworkPolicy", name, v.clone()).map(|_| ())
        }
        _ => Ok(()),
    }
}
