//! Strategy → the coordinator (Deployment, Service, a ConfigMap holding the Strategy and its
//! ConsensusPolicy as the coordinator reads them), each dependency marked `managed: true` (NATS with
//! JetStream, Postgres with a generated-password Secret, Ollama with a model-pull Job), and
//! NetworkPolicies that let only the strategy's own pods reach its dependencies. External
//! dependencies are referenced, never created.

use super::{
    child_name, container_port, container_security, drop_all, empty_dir, env, http_probe, labels,
    match_labels, mount, owner, runtime_default, secret_env, selector, service_port, BuildError,
    AGENT_PORT,
};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, StatefulSet, StatefulSetSpec,
};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EnvVar, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, Secret, SecurityContext, Service, ServiceSpec, TCPSocketAction, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use protocol::crd::{ConsensusPolicy, Dependency, Strategy};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Images of the managed dependencies.
pub const NATS_IMAGE: &str = "nats:2.10-alpine";
pub const POSTGRES_IMAGE: &str = "postgres:16-alpine";
pub const OLLAMA_IMAGE: &str = "ollama/ollama:0.5.7";

/// One object a Strategy owns, typed.
// unboxed: a Strategy has a dozen children at most, built and matched once per reconcile
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Child {
    ConfigMap(ConfigMap),
    Deployment(Deployment),
    Service(Service),
    StatefulSet(StatefulSet),
    NetworkPolicy(NetworkPolicy),
    Job(Job),
}

impl Child {
    /// The object's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Child::ConfigMap(_) => "ConfigMap",
            Child::Deployment(_) => "Deployment",
            Child::Service(_) => "Service",
            Child::StatefulSet(_) => "StatefulSet",
            Child::NetworkPolicy(_) => "NetworkPolicy",
            Child::Job(_) => "Job",
        }
    }

    /// The object as it is rendered and applied ([`super::manifest`]).
    pub fn manifest(&self) -> Value {
        match self {
            Child::ConfigMap(o) => super::manifest(o),
            Child::Deployment(o) => super::manifest(o),
            Child::Service(o) => super::manifest(o),
            Child::StatefulSet(o) => super::manifest(o),
            Child::NetworkPolicy(o) => super::manifest(o),
            Child::Job(o) => super::manifest(o),
        }
    }
}

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

/// The metadata of the Strategy's child `object`: its team's labels, owned by the Strategy.
fn meta(s: &Strategy, object: &str, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(object.into()),
        namespace: s.metadata.namespace.clone(),
        labels: Some(labels(&name(s), component, &name(s))),
        owner_references: Some(owner(s).into_iter().collect()),
        ..Default::default()
    }
}

/// The pod template of one of the team's components.
fn template(s: &Strategy, component: &str, spec: PodSpec) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(&name(s), component, &name(s))),
            ..Default::default()
        }),
        spec: Some(spec),
    }
}

/// Restricted pod security; `fsGroup` makes the managed dependencies' volumes writable by the
/// non-root user their containers run as.
fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        fs_group: Some(65532),
        seccomp_profile: Some(runtime_default()),
        ..Default::default()
    }
}

/// Everything a Strategy owns, in apply order. `policy` is the ConsensusPolicy it references.
pub fn objects(s: &Strategy, policy: &ConsensusPolicy) -> Result<Vec<Child>, BuildError> {
    let strategy = name(s);
    let deps = &s.spec.dependencies;
    let mut out = vec![
        Child::ConfigMap(coordinator_config(s, policy)?),
        Child::Deployment(coordinator(s)),
        Child::Service(service(
            s,
            &child_name(&strategy, "coordinator"),
            "coordinator",
            "http",
            AGENT_PORT,
        )),
    ];
    if managed(&deps.nats) {
        out.extend(stateful(
            s,
            Managed {
                component: "nats",
                image: NATS_IMAGE,
                port: 4222,
                args: vec!["-js".into(), "-sd".into(), "/data".into()],
                env: vec![],
                mount: "/data",
                storage: deps.nats.storage.as_deref(),
            },
        ));
    }
    if managed(&deps.postgres) {
        out.extend(stateful(
            s,
            Managed {
                component: "postgres",
                image: POSTGRES_IMAGE,
                port: 5432,
                args: vec![],
                env: vec![
                    env("POSTGRES_USER", "ia"),
                    env("POSTGRES_DB", "ia"),
                    env("PGDATA", "/var/lib/postgresql/data/pgdata"),
                    secret_env("POSTGRES_PASSWORD", &postgres_secret_name(s), "password"),
                ],
                mount: "/var/lib/postgresql/data",
                storage: deps.postgres.storage.as_deref(),
            },
        ));
    }
    if let Some(o) = deps.ollama.as_ref().filter(|o| o.managed == Some(true)) {
        out.extend(stateful(
            s,
            Managed {
                component: "ollama",
                image: OLLAMA_IMAGE,
                port: 11434,
                args: vec![],
                env: vec![env("OLLAMA_MODELS", "/data/models"), env("HOME", "/data")],
                mount: "/data",
                storage: o.storage.as_deref(),
            },
        ));
        if !o.models.is_empty() {
            out.push(Child::Job(model_pull(s, &o.models)));
        }
    }
    Ok(out)
}

/// The coordinator's configuration: the very manifests of the Strategy and its policy, read as
/// `--strategy-file` / `--policy-file`.
fn coordinator_config(s: &Strategy, policy: &ConsensusPolicy) -> Result<ConfigMap, BuildError> {
    let object = child_name(&name(s), "coordinator");
    let strategy_doc = json!({"apiVersion": "trading.ia-agents.dev/v1alpha1", "kind": "Strategy",
        "metadata": {"name": name(s), "namespace": s.metadata.namespace}, "spec": s.spec});
    let policy_doc = json!({"apiVersion": "trading.ia-agents.dev/v1alpha1", "kind": "ConsensusPolicy",
        "metadata": {"name": policy.metadata.name, "namespace": policy.metadata.namespace}, "spec": policy.spec});
    let mut data = BTreeMap::new();
    for (key, doc) in [("strategy.yaml", strategy_doc), ("policy.yaml", policy_doc)] {
        let yaml = serde_yaml::to_string(&doc).map_err(|e| BuildError::Invalid {
            kind: "ConfigMap",
            name: object.clone(),
            reason: format!("data.{key}: {e}"),
        })?;
        data.insert(key.to_string(), yaml);
    }
    Ok(ConfigMap {
        metadata: meta(s, &object, "coordinator"),
        data: Some(data),
        ..Default::default()
    })
}

/// The coordinator's Deployment: one pod (none while paused), recreated rather than rolled so two
/// coordinators never run one team.
fn coordinator(s: &Strategy) -> Deployment {
    let strategy = name(s);
    let object = child_name(&strategy, "coordinator");
    let container = Container {
        name: "coordinator".into(),
        image: Some(super::agent_image()),
        args: Some(vec!["coordinator".into()]),
        env: Some(coordinator_env(s)),
        ports: Some(vec![container_port("http", AGENT_PORT)]),
        liveness_probe: Some(http_probe("/healthz", 10)),
        readiness_probe: Some(http_probe("/readyz", 5)),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&[("cpu", "100m"), ("memory", "128Mi")])),
            limits: Some(quantities(&[("memory", "512Mi")])),
            ..Default::default()
        }),
        security_context: Some(container_security()),
        volume_mounts: Some(vec![
            VolumeMount {
                read_only: Some(true),
                ..mount("config", "/etc/ia-agents")
            },
            mount("tmp", "/tmp"),
        ]),
        ..Default::default()
    };
    let pod = PodSpec {
        automount_service_account_token: Some(false),
        security_context: Some(pod_security()),
        containers: vec![container],
        volumes: Some(vec![
            Volume {
                name: "config".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: object.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            empty_dir("tmp"),
        ]),
        ..Default::default()
    };
    Deployment {
        metadata: meta(s, &object, "coordinator"),
        spec: DeploymentSpec {
            replicas: Some(if s.spec.paused { 0 } else { 1 }),
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..Default::default()
            }),
            selector: match_labels(selector(&strategy, "coordinator", &strategy)),
            template: template(s, "coordinator", pod),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The coordinator's environment: its team's NATS and database, its configuration files, and the
/// exchange credentials by reference to their Secret (never through the spec).
fn coordinator_env(s: &Strategy) -> Vec<EnvVar> {
    let strategy = name(s);
    let namespace = s.metadata.namespace.as_deref().unwrap_or("default");
    let mut vars = vec![
        env("IA_NATS_URL", nats_url(s)),
        env("IA_NAMESPACE", namespace),
        env("IA_STRATEGY_FILE", "/etc/ia-agents/strategy.yaml"),
        env("IA_POLICY_FILE", "/etc/ia-agents/policy.yaml"),
        env("IA_LISTEN", format!("0.0.0.0:{AGENT_PORT}")),
        env("IA_LOG_FORMAT", "json"),
        // a replaying coordinator stays up when its candles run out, rather than restarting
        env("IA_HOLD_AFTER_REPLAY", "true"),
    ];
    let pg = &s.spec.dependencies.postgres;
    if managed(pg) {
        vars.push(secret_env(
            "PGPASSWORD",
            &postgres_secret_name(s),
            "password",
        ));
        let host = child_name(&strategy, "postgres");
        vars.push(env("IA_DB", format!("postgres://ia@{host}:5432/ia")));
    } else if let Some(r) = &pg.secret_ref {
        vars.push(secret_env("IA_DB", &r.name, &r.key));
    } else if let Some(url) = &pg.url {
        vars.push(env("IA_DB", url));
    }
    if let Some(secret) = s
        .spec
        .exchange
        .as_ref()
        .and_then(|e| e.credentials_secret_ref.as_ref())
    {
        vars.push(secret_env("IA_EXCHANGE_API_KEY", &secret.name, "apiKey"));
        vars.push(secret_env(
            "IA_EXCHANGE_API_SECRET",
            &secret.name,
            "apiSecret",
        ));
    }
    vars
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
        .collect()
}

/// The Service of one component: port `port_name` forwarding to the pods' port of that name.
fn service(s: &Strategy, object: &str, component: &str, port_name: &str, port: i32) -> Service {
    let strategy = name(s);
    Service {
        metadata: meta(s, object, component),
        spec: Some(ServiceSpec {
            selector: Some(selector(&strategy, component, &strategy)),
            ports: Some(vec![service_port(port_name, port)]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A managed dependency: what runs, where it listens, keeps its data, and how much of it.
struct Managed<'a> {
    component: &'a str,
    image: &'a str,
    port: i32,
    args: Vec<String>,
    env: Vec<EnvVar>,
    /// Where the data volume is mounted.
    mount: &'a str,
    /// The data volume's size (default 1Gi).
    storage: Option<&'a str>,
}

/// A managed dependency: StatefulSet with a volume claim, a Service, and a NetworkPolicy letting
/// only the strategy's pods in.
fn stateful(s: &Strategy, m: Managed<'_>) -> [Child; 3] {
    let object = child_name(&name(s), m.component);
    let (component, port) = (m.component, m.port);
    [
        Child::StatefulSet(statefulset(s, &object, m)),
        Child::Service(service(s, &object, component, "service", port)),
        Child::NetworkPolicy(network_policy(s, &object, component, port)),
    ]
}

fn statefulset(s: &Strategy, object: &str, m: Managed<'_>) -> StatefulSet {
    let strategy = name(s);
    let mut mounts = vec![mount("data", m.mount)];
    let mut volumes = vec![];
    // Postgres also needs a writable socket directory (the root filesystem stays read-only)
    if m.component == "postgres" {
        mounts.push(mount("run", "/var/run/postgresql"));
        volumes.push(empty_dir("run"));
    }
    let container = Container {
        name: m.component.into(),
        image: Some(m.image.into()),
        args: Some(m.args),
        env: Some(m.env),
        ports: Some(vec![container_port("service", m.port)]),
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::String("service".into()),
                ..Default::default()
            }),
            period_seconds: Some(5),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(drop_all()),
            seccomp_profile: Some(runtime_default()),
            ..Default::default()
        }),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    // the images run as their own user (70), which owns the data volume through fsGroup
    let pod = PodSpec {
        automount_service_account_token: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(70),
            fs_group: Some(70),
            seccomp_profile: Some(runtime_default()),
            ..Default::default()
        }),
        containers: vec![container],
        volumes: Some(volumes),
        ..Default::default()
    };
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(quantities(&[("storage", m.storage.unwrap_or("1Gi"))])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    StatefulSet {
        metadata: meta(s, object, m.component),
        spec: StatefulSetSpec {
            service_name: Some(object.into()),
            replicas: Some(1),
            selector: match_labels(selector(&strategy, m.component, &strategy)),
            template: template(s, m.component, pod),
            volume_claim_templates: Some(vec![claim]),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Lets only [`peers`] reach a managed dependency's port.
fn network_policy(s: &Strategy, object: &str, component: &str, port: i32) -> NetworkPolicy {
    let strategy = name(s);
    NetworkPolicy {
        metadata: meta(s, object, component),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(match_labels(selector(&strategy, component, &strategy))),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(peers(&strategy, component)),
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(port)),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
            }]),
            ..Default::default()
        }),
    }
}

/// Who may reach a managed dependency: the strategy's own pods and, for NATS, the operator (in any
/// namespace), which consumes the decision stream and relays escalation answers.
fn peers(strategy: &str, component: &str) -> Vec<NetworkPolicyPeer> {
    let pods = |key: &str, value: &str| {
        Some(match_labels(BTreeMap::from([(
            key.to_string(),
            value.to_string(),
        )])))
    };
    let mut from = vec![NetworkPolicyPeer {
        pod_selector: pods("trading.ia-agents.dev/strategy", strategy),
        ..Default::default()
    }];
    if component == "nats" {
        from.push(NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector::default()),
            pod_selector: pods("app.kubernetes.io/name", "trading-operator"),
            ..Default::default()
        });
    }
    from
}

/// A Job pulling the Strategy's models into the managed Ollama (retried until Ollama is up).
fn model_pull(s: &Strategy, models: &[String]) -> Job {
    let strategy = name(s);
    let host = format!("{}:11434", child_name(&strategy, "ollama"));
    let pulls = models
        .iter()
        .map(|m| format!("ollama pull {m}"))
        .collect::<Vec<_>>()
        .join(" && ");
    let container = Container {
        name: "pull".into(),
        image: Some(OLLAMA_IMAGE.into()),
        command: Some(vec!["/bin/sh".into(), "-c".into(), pulls]),
        env: Some(vec![env("OLLAMA_HOST", host), env("HOME", "/tmp")]),
        security_context: Some(container_security()),
        volume_mounts: Some(vec![mount("tmp", "/tmp")]),
        ..Default::default()
    };
    let pod = PodSpec {
        restart_policy: Some("OnFailure".into()),
        automount_service_account_token: Some(false),
        security_context: Some(pod_security()),
        containers: vec![container],
        volumes: Some(vec![empty_dir("tmp")]),
        ..Default::default()
    };
    Job {
        metadata: meta(s, &child_name(&strategy, "ollama-pull"), "ollama"),
        spec: Some(JobSpec {
            backoff_limit: Some(10),
            template: template(s, "ollama-pull", pod),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The managed Postgres's password Secret; an existing password is kept (it must never change under
/// a running database), a new one comes from `generate`.
pub fn postgres_secret(
    s: &Strategy,
    existing: Option<String>,
    generate: impl FnOnce() -> String,
) -> Result<Secret, BuildError> {
    let password = existing.unwrap_or_else(generate);
    Ok(Secret {
        metadata: meta(s, &postgres_secret_name(s), "postgres"),
        type_: Some("Opaque".into()),
        string_data: Some(BTreeMap::from([("password".to_string(), password)])),
        ..Default::default()
    })
}
