//! Strategy → the coordinator (Deployment, Service, a ConfigMap holding the Strategy and its
//! ConsensusPolicy as the coordinator reads them), each dependency marked `managed: true` (NATS with
//! JetStream, checking each component's nkey identity against the configuration [`super::nats`]
//! renders; Postgres with a generated-password Secret; Ollama with a model-pull Job), and a
//! NetworkPolicy for each of those pods, ingress and egress ([`super::network`]): the coordinator's
//! API only from the configured peers, its dependencies only from the team's pods that use them,
//! and every pod out only to DNS, its dependencies and the internet ports it needs. External
//! dependencies are referenced, never created.

use super::nats::{self as nats_identity, PublicKeys};
use super::network::{self, NetworkPolicySettings};
use super::services::{database_roles, exchange_env, exchange_port, runs_services};
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
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use protocol::crd::{
    ConsensusPolicy, Dependency, MarketDataSource, NatsDependency, Strategy, TradingAssistant,
    TradingMode,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Image of a managed NATS (run from its rendered configuration: JetStream stored under `/data`,
/// every identity's public key and permissions).
pub const NATS_IMAGE: &str = "nats:2.10-alpine";
/// Image of a managed Postgres (user and database `ia`, password from a generated Secret).
pub const POSTGRES_IMAGE: &str = "postgres:16-alpine";
/// Image of a managed Ollama (models under `/data/models`, pulled by a Job).
pub const OLLAMA_IMAGE: &str = "ollama/ollama:0.5.7";

/// One object a Strategy owns, typed.
// unboxed: a Strategy has a dozen children at most, built and matched once per reconcile
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Child {
    /// The coordinator's configuration (`strategy.yaml`, `policy.yaml`, the team).
    ConfigMap(ConfigMap),
    /// The coordinator's Deployment.
    Deployment(Deployment),
    /// The coordinator's or a managed dependency's Service.
    Service(Service),
    /// A managed dependency (NATS, Postgres or Ollama).
    StatefulSet(StatefulSet),
    /// Who may connect to one of the Strategy's pods, and where it may connect.
    NetworkPolicy(NetworkPolicy),
    /// The Job that pulls a managed Ollama's models.
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

/// The Strategy's name.
pub(super) fn name(s: &Strategy) -> String {
    s.metadata.name.clone().unwrap_or_default()
}

fn managed(d: &Dependency) -> bool {
    d.managed == Some(true)
}

fn managed_nats(d: &NatsDependency) -> bool {
    d.is_managed()
}

/// The NATS URL the team uses: the managed server's Service, or the external URL.
pub fn nats_url(s: &Strategy) -> String {
    let d = &s.spec.dependencies.nats;
    if managed_nats(d) {
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

/// The Secret holding the coordinator API's bearer token (`token` key), generated by the operator.
pub fn api_token_secret_name(s: &Strategy) -> String {
    child_name(&name(s), "api-token")
}

/// The Secret holding the audit chain's HMAC key (`key` key), generated by the operator.
pub fn audit_key_secret_name(s: &Strategy) -> String {
    child_name(&name(s), "audit-key")
}

/// The audit key's Secret, with a key from `generate` (created once, never changed: a new key
/// would break the chain's verification).
pub fn audit_key_secret(s: &Strategy, generate: impl FnOnce() -> String) -> Secret {
    Secret {
        metadata: meta(s, &audit_key_secret_name(s), "coordinator"),
        type_: Some("Opaque".into()),
        string_data: Some(BTreeMap::from([("key".to_string(), generate())])),
        ..Default::default()
    }
}

/// The coordinator API's token Secret, with a token from `generate` (created once, never changed).
pub fn api_token_secret(s: &Strategy, generate: impl FnOnce() -> String) -> Secret {
    Secret {
        metadata: meta(s, &api_token_secret_name(s), "coordinator"),
        type_: Some("Opaque".into()),
        string_data: Some(BTreeMap::from([("token".to_string(), generate())])),
        ..Default::default()
    }
}

/// The metadata of the Strategy's child `object`: its team's labels, owned by the Strategy.
pub(super) fn meta(s: &Strategy, object: &str, component: &str) -> ObjectMeta {
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

/// The pod-template annotation holding the hash of the configuration a pod runs on: a change to the
/// Strategy, its policy or its team changes it, and so rolls the pods (a coordinator reads its
/// files once, at start).
pub const CONFIG_HASH: &str = "trading.ia-agents.dev/config-hash";

/// SHA-256 of a ConfigMap's data, in key order, as hex.
pub fn config_hash(data: Option<&BTreeMap<String, String>>) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (key, value) in data.into_iter().flatten() {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    format!("{:x}", hasher.finalize())
}

/// `template` with one more annotation.
pub fn with_annotation(mut template: PodTemplateSpec, key: &str, value: &str) -> PodTemplateSpec {
    template
        .metadata
        .get_or_insert_with(Default::default)
        .annotations
        .get_or_insert_with(Default::default)
        .insert(key.into(), value.into());
    template
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

/// Everything a Strategy owns, in apply order (but the generated Secrets, created once on their
/// own). `policy` is the ConsensusPolicy it references. `team` is the TradingAssistants that
/// reference it: the only voters its coordinator counts. `network` says who may reach the
/// coordinator's API and scrape it, and where DNS and the internet are. `nats_keys` are the public
/// keys of the team's NATS identities, which a managed NATS's configuration lists.
pub fn objects(
    s: &Strategy,
    policy: &ConsensusPolicy,
    team: &[TradingAssistant],
    network: &NetworkPolicySettings,
    nats_keys: &PublicKeys,
) -> Result<Vec<Child>, BuildError> {
    let strategy = name(s);
    let deps = &s.spec.dependencies;
    let config = coordinator_config(s, policy, team)?;
    let hash = config_hash(config.data.as_ref());
    let services = runs_services(s, team);
    let mut out = vec![
        Child::ConfigMap(config),
        Child::NetworkPolicy(coordinator_network_policy(s, network, services)),
        Child::Deployment(coordinator(s, &hash, services)),
        Child::Service(service(
            s,
            &child_name(&strategy, "coordinator"),
            "coordinator",
            "http",
            AGENT_PORT,
        )),
    ];
    if managed_nats(&deps.nats) {
        // the server checks every identity: its configuration lists their public keys
        let config = nats_identity::server_config(s, nats_keys)?;
        let config_file = format!(
            "{}/{}",
            nats_identity::CONFIG_DIR,
            nats_identity::CONFIG_FILE
        );
        let nats = Managed {
            component: "nats",
            image: NATS_IMAGE,
            port: nats_identity::PORT,
            args: vec!["-c".into(), config_file],
            env: vec![],
            mount: nats_identity::STORE_DIR,
            storage: deps.nats.storage.as_deref(),
            config: Some(ConfigVolume {
                volume: nats_identity::config_volume(&strategy),
                mount: nats_identity::CONFIG_DIR,
                hash: nats_identity::server_config_hash(&config),
            }),
        };
        out.push(Child::ConfigMap(config));
        out.extend(stateful(s, network, nats, services));
    }
    if managed(&deps.postgres) {
        out.extend(stateful(
            s,
            network,
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
                config: None,
            },
            services,
        ));
    }
    if let Some(o) = deps.ollama.as_ref().filter(|o| o.managed == Some(true)) {
        out.extend(stateful(
            s,
            network,
            Managed {
                component: "ollama",
                image: OLLAMA_IMAGE,
                port: 11434,
                args: vec![],
                env: vec![env("OLLAMA_MODELS", "/data/models"), env("HOME", "/data")],
                mount: "/data",
                storage: o.storage.as_deref(),
                config: None,
            },
            services,
        ));
        if !o.models.is_empty() {
            out.push(Child::NetworkPolicy(model_pull_network_policy(s, network)));
            out.push(Child::Job(model_pull(s, &o.models)));
        }
    }
    Ok(out)
}

/// The coordinator's configuration: the very manifests of the Strategy, its policy and its team,
/// read as `--strategy-file`, `--policy-file` and `--team-file` (assistant pods mount
/// `strategy.yaml` too, for the risk limits and symbols).
fn coordinator_config(
    s: &Strategy,
    policy: &ConsensusPolicy,
    team: &[TradingAssistant],
) -> Result<ConfigMap, BuildError> {
    let object = child_name(&name(s), "coordinator");
    let manifest = |kind: &str, meta: &ObjectMeta, spec: Value| {
        json!({"apiVersion": "trading.ia-agents.dev/v1alpha1", "kind": kind,
            "metadata": {"name": meta.name, "namespace": meta.namespace}, "spec": spec})
    };
    let yaml = |key: &str, docs: Vec<Value>| -> Result<String, BuildError> {
        let texts = docs
            .iter()
            .map(serde_yaml::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BuildError::Invalid {
                kind: "ConfigMap",
                name: object.clone(),
                reason: format!("data.{key}: {e}"),
            })?;
        Ok(texts.join("---\n"))
    };
    let mut data = BTreeMap::new();
    data.insert(
        "strategy.yaml".to_string(),
        yaml(
            "strategy.yaml",
            vec![manifest("Strategy", &s.metadata, json!(s.spec))],
        )?,
    );
    data.insert(
        "policy.yaml".to_string(),
        yaml(
            "policy.yaml",
            vec![manifest(
                "ConsensusPolicy",
                &policy.metadata,
                json!(policy.spec),
            )],
        )?,
    );
    let members = team
        .iter()
        .map(|ta| manifest("TradingAssistant", &ta.metadata, json!(ta.spec)))
        .collect();
    data.insert("team.yaml".to_string(), yaml("team.yaml", members)?);
    Ok(ConfigMap {
        metadata: meta(s, &object, "coordinator"),
        data: Some(data),
        ..Default::default()
    })
}

/// The coordinator's Deployment: one pod (none while paused), recreated rather than rolled so two
/// coordinators never run one team. With `services` the executor and auditor are services of their
/// own ([`runs_services`]).
fn coordinator(s: &Strategy, config_hash: &str, services: bool) -> Deployment {
    let strategy = name(s);
    let object = child_name(&strategy, "coordinator");
    let container = Container {
        name: "coordinator".into(),
        image: Some(super::agent_image()),
        args: Some(vec!["coordinator".into()]),
        env: Some(coordinator_env(s, services)),
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
    let mut pod = PodSpec {
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
    // its NATS identity: its own seed only
    if let Some(secret) = nats_identity::credentials_source(Some(s), &strategy) {
        nats_identity::mount_identity(&mut pod, &secret, protocol::nats_auth::COORDINATOR);
    }
    Deployment {
        metadata: meta(s, &object, "coordinator"),
        spec: DeploymentSpec {
            replicas: Some(if s.spec.paused { 0 } else { 1 }),
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..Default::default()
            }),
            selector: match_labels(selector(&strategy, "coordinator", &strategy)),
            template: with_annotation(template(s, "coordinator", pod), CONFIG_HASH, config_hash),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The team's database as a pod reads it (`IA_DB`, and for a managed Postgres its generated
/// password as `PGPASSWORD`): the coordinator's, the strategist's for its model, and the executor
/// and auditor services' ([`database_roles`]). Empty without one.
pub fn database_env(s: &Strategy) -> Vec<EnvVar> {
    let pg = &s.spec.dependencies.postgres;
    if managed(pg) {
        let host = child_name(&name(s), "postgres");
        vec![
            secret_env("PGPASSWORD", &postgres_secret_name(s), "password"),
            env(protocol::env::DB, format!("postgres://ia@{host}:5432/ia")),
        ]
    } else if let Some(r) = &pg.secret_ref {
        vec![secret_env(protocol::env::DB, &r.name, &r.key)]
    } else if let Some(url) = &pg.url {
        vec![env(protocol::env::DB, url)]
    } else {
        vec![]
    }
}

/// The coordinator's environment: its team's NATS and database, its configuration files, and the
/// exchange credentials by reference to their Secret (never through the spec), unless the executor
/// is a service of its own (`services`: then `IA_SERVICES=true`, and the keys are the executor's).
fn coordinator_env(s: &Strategy, services: bool) -> Vec<EnvVar> {
    let namespace = s.metadata.namespace.as_deref().unwrap_or("default");
    let mut vars = vec![
        env(protocol::env::NATS_URL, nats_url(s)),
        env(protocol::env::NAMESPACE, namespace),
        env(protocol::env::STRATEGY_FILE, "/etc/ia-agents/strategy.yaml"),
        env(protocol::env::POLICY_FILE, "/etc/ia-agents/policy.yaml"),
        env(protocol::env::TEAM_FILE, "/etc/ia-agents/team.yaml"),
        env(protocol::env::LISTEN, format!("0.0.0.0:{AGENT_PORT}")),
        env(protocol::env::LOG_FORMAT, "json"),
        // a replaying coordinator stays up when its candles run out, rather than restarting
        env(protocol::env::HOLD_AFTER_REPLAY, "true"),
        // approve/reject, the stream and the record all take the generated token
        secret_env(protocol::env::API_TOKEN, &api_token_secret_name(s), "token"),
        env(protocol::env::API_READ_AUTH, "true"),
        // the audit chain is keyed with a generated key
        secret_env(protocol::env::AUDIT_KEY, &audit_key_secret_name(s), "key"),
    ];
    let database = database_env(s);
    if !database.is_empty() {
        // with a database the strategist's ensemble is retrained on the learning schedule
        vars.push(env(protocol::env::RETRAIN, "true"));
    }
    vars.extend(database);
    if services {
        // candles and decisions on the stream; the executor trades, the auditor keeps the record
        vars.push(env(protocol::env::SERVICES, "true"));
    } else {
        vars.extend(exchange_env(s));
    }
    // each notification target's address, by reference to its Secret
    for target in s.spec.notifications.iter().flat_map(|n| &n.targets) {
        let reference = &target.secret_ref;
        vars.push(secret_env(
            &target.env_name(),
            &reference.name,
            &reference.key,
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
    /// A configuration the server reads at start (NATS).
    config: Option<ConfigVolume<'a>>,
}

/// A managed dependency's configuration: its volume, where it is mounted (read-only), and its
/// hash on the pod template, so that a change rolls the server.
struct ConfigVolume<'a> {
    volume: Volume,
    mount: &'a str,
    hash: String,
}

/// A managed dependency: StatefulSet with a volume claim, a Service, and a NetworkPolicy letting
/// only the team's pods that use it in (`services`: the executor and auditor are among them).
fn stateful(
    s: &Strategy,
    network: &NetworkPolicySettings,
    m: Managed<'_>,
    services: bool,
) -> [Child; 3] {
    let object = child_name(&name(s), m.component);
    let (component, port) = (m.component, m.port);
    let peers = dependency_peers(&name(s), component, services);
    [
        Child::StatefulSet(statefulset(s, &object, m)),
        Child::Service(service(s, &object, component, "service", port)),
        Child::NetworkPolicy(dependency_network_policy(
            s, network, &object, component, port, &peers,
        )),
    ]
}

fn statefulset(s: &Strategy, object: &str, m: Managed<'_>) -> StatefulSet {
    let strategy = name(s);
    // the root filesystem is read-only: the data volume, a scratch /tmp and (Postgres) the socket
    // directory are the only places written
    let mut mounts = vec![mount("data", m.mount), mount("tmp", "/tmp")];
    let mut volumes = vec![empty_dir("tmp")];
    if m.component == "postgres" {
        mounts.push(mount("run", "/var/run/postgresql"));
        volumes.push(empty_dir("run"));
    }
    let config_hash = m.config.as_ref().map(|c| c.hash.clone());
    if let Some(config) = m.config {
        mounts.push(VolumeMount {
            read_only: Some(true),
            ..mount(&config.volume.name, config.mount)
        });
        volumes.push(config.volume);
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
            read_only_root_filesystem: Some(true),
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
            template: match config_hash {
                Some(hash) => with_annotation(template(s, m.component, pod), CONFIG_HASH, &hash),
                None => template(s, m.component, pod),
            },
            volume_claim_templates: Some(vec![claim]),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A managed dependency's policy: only `peers` ([`dependency_peers`]) in, on its port; out, nothing
/// but (for Ollama, which downloads the models it is asked for) DNS and HTTPS to the internet.
fn dependency_network_policy(
    s: &Strategy,
    settings: &NetworkPolicySettings,
    object: &str,
    component: &str,
    port: i32,
    peers: &[NetworkPolicyPeer],
) -> NetworkPolicy {
    let strategy = name(s);
    let ingress = network::ingress_from(peers, port);
    let egress = if component == "ollama" {
        let registry = BTreeSet::from([network::HTTPS_PORT]);
        vec![network::dns(settings)]
            .into_iter()
            .chain(network::internet(settings, &registry))
            .collect()
    } else {
        vec![]
    };
    network::policy(
        meta(s, object, component),
        selector(&strategy, component, &strategy),
        ingress.into_iter().collect(),
        egress,
    )
}

/// Who may reach a managed dependency: of the strategy's pods, those that use it (NATS: the
/// coordinator and the assistants; Postgres: the coordinator and the [`database_roles`], by their
/// role label: the strategist, and with `services` the executor and the auditor; Ollama: the
/// assistants and the model pull) and, for NATS, the operator (in any namespace), which consumes
/// the decision stream and relays escalation answers.
fn dependency_peers(strategy: &str, component: &str, services: bool) -> Vec<NetworkPolicyPeer> {
    let users: &[&str] = match component {
        "nats" => &["coordinator", super::assistant::COMPONENT],
        "postgres" => &["coordinator"],
        _ => &[super::assistant::COMPONENT, "ollama-pull"],
    };
    let mut from = vec![NetworkPolicyPeer {
        pod_selector: Some(network::team_pods(strategy, users)),
        ..Default::default()
    }];
    if component == "postgres" {
        // the strategist reads the ensemble the coordinator retrains into the database; the
        // services write the record
        from.extend(
            database_roles(services)
                .iter()
                .map(|&role| role_peer(strategy, role)),
        );
    }
    if component == "nats" {
        from.push(NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector::default()),
            pod_selector: Some(match_labels(BTreeMap::from([(
                "app.kubernetes.io/name".to_string(),
                "trading-operator".to_string(),
            )]))),
            ..Default::default()
        });
    }
    from
}

/// The pods of the team's assistants of one `role` (by their role label).
fn role_peer(strategy: &str, role: protocol::Role) -> NetworkPolicyPeer {
    let mut pods = network::team_pods(strategy, &[super::assistant::COMPONENT]);
    pods.match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(protocol::env::ROLE_LABEL.into(), role.as_str().into());
    NetworkPolicyPeer {
        pod_selector: Some(pods),
        ..Default::default()
    }
}

/// The coordinator's policy: in, its API port from the configured API and metrics peers only;
/// out, DNS, the team's NATS and Postgres, and the internet on [`coordinator_internet_ports`].
fn coordinator_network_policy(
    s: &Strategy,
    settings: &NetworkPolicySettings,
    services: bool,
) -> NetworkPolicy {
    let strategy = name(s);
    let callers: Vec<NetworkPolicyPeer> = settings
        .api_from
        .0
        .iter()
        .chain(&settings.metrics_from.0)
        .cloned()
        .collect();
    let egress = [
        Some(network::dns(settings)),
        Some(network::nats(&strategy, Some(s))),
        network::postgres(s),
        network::internet(settings, &coordinator_internet_ports(s, services)),
    ];
    network::policy(
        meta(s, &child_name(&strategy, "coordinator"), "coordinator"),
        selector(&strategy, "coordinator", &strategy),
        network::ingress_from(&callers, AGENT_PORT)
            .into_iter()
            .collect(),
        egress.into_iter().flatten().collect(),
    )
}

/// The internet ports the coordinator connects to: Binance's REST API (443) and candle stream
/// (9443), where it reads the markets, unless it replays a file; the exchange's trading API (its
/// URL's port) in live mode, when it carries the executor's duty (not with `services`: then the
/// executor service trades); HTTPS for notification webhooks.
pub fn coordinator_internet_ports(s: &Strategy, services: bool) -> BTreeSet<i32> {
    let mut ports = BTreeSet::new();
    if s.spec.market_data.source == MarketDataSource::Binance {
        ports.extend([network::HTTPS_PORT, network::BINANCE_STREAM_PORT]);
    }
    if s.spec.mode == TradingMode::Live && !services {
        ports.insert(exchange_port(s));
    }
    if s.spec
        .notifications
        .as_ref()
        .is_some_and(|n| !n.targets.is_empty())
    {
        ports.insert(network::HTTPS_PORT);
    }
    ports
}

/// The model pull's policy: nothing in; out, DNS and the managed Ollama it drives.
fn model_pull_network_policy(s: &Strategy, settings: &NetworkPolicySettings) -> NetworkPolicy {
    let strategy = name(s);
    let ollama = match_labels(selector(&strategy, "ollama", &strategy));
    network::policy(
        meta(s, &child_name(&strategy, "ollama-pull"), "ollama"),
        selector(&strategy, "ollama-pull", &strategy),
        vec![],
        vec![
            network::dns(settings),
            network::to_pods(ollama, network::OLLAMA_PORT),
        ],
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::sample;
    use k8s_openapi::api::networking::v1::{NetworkPolicyEgressRule, NetworkPolicySpec};

    fn strategy() -> Strategy {
        let mut s: Strategy = sample("strategy.yaml").remove(0);
        s.metadata.namespace = Some("trading".into());
        s
    }

    #[test]
    fn with_a_database_the_coordinator_retrains_and_the_strategist_may_read_it() {
        let s = strategy();
        let vars = coordinator_env(&s, false);
        let retrain = vars.iter().find(|e| e.name == protocol::env::RETRAIN);
        assert_eq!(retrain.and_then(|e| e.value.as_deref()), Some("true"));
        let peers = dependency_peers("btc-eth-paper", "postgres", false);
        assert_eq!(
            peers.len(),
            2,
            "the coordinator and the strategist: {peers:?}"
        );
        let strategist = peers[1].pod_selector.clone().unwrap();
        let labels = strategist.match_labels.unwrap();
        assert_eq!(labels[protocol::env::ROLE_LABEL], "strategist");
        assert_eq!(labels["trading.ia-agents.dev/strategy"], "btc-eth-paper");
        let mut no_db = strategy();
        no_db.spec.dependencies.postgres = Default::default();
        let vars = coordinator_env(&no_db, false);
        assert!(vars
            .iter()
            .all(|e| e.name != protocol::env::RETRAIN && e.name != protocol::env::DB));
    }

    /// The coordinator's environment by name, its internet ports, and the ingress peers of the
    /// managed Postgres, as `objects` builds them for `team`.
    fn coordinator_and_database(
        s: &Strategy,
        team: &[TradingAssistant],
    ) -> (
        BTreeMap<String, EnvVar>,
        BTreeSet<i32>,
        Vec<NetworkPolicyPeer>,
    ) {
        let policy = sample::<ConsensusPolicy>("consensuspolicy.yaml").remove(0);
        let network = NetworkPolicySettings::default();
        let children = objects(s, &policy, team, &network, &PublicKeys::placeholders(s)).unwrap();
        let mut env = BTreeMap::new();
        let (mut internet, mut database) = (BTreeSet::new(), vec![]);
        for child in children {
            match child {
                Child::Deployment(d) => {
                    let pod = d.spec.template.spec.unwrap();
                    let vars = pod.containers[0].env.clone().unwrap_or_default();
                    env.extend(vars.into_iter().map(|e| (e.name.clone(), e)));
                }
                Child::NetworkPolicy(p) => {
                    let name = p.metadata.name.unwrap();
                    let spec = p.spec.unwrap();
                    if name == "btc-eth-paper-coordinator" {
                        let egress = spec.egress.unwrap_or_default();
                        let out = egress
                            .into_iter()
                            .filter(|r| r.to == Some(network.internet_to.0.clone()));
                        internet.extend(out.flat_map(|r| ports(&r)).map(|(port, _)| port));
                    } else if name == "btc-eth-paper-postgres" {
                        database = spec.ingress.unwrap()[0].from.clone().unwrap();
                    }
                }
                _ => {}
            }
        }
        (env, internet, database)
    }

    #[test]
    fn with_both_services_the_coordinator_publishes_and_holds_no_exchange_keys() {
        let mut s = strategy();
        s.spec.mode = TradingMode::Live;
        s.spec.exchange = serde_json::from_value(json!({
            "baseUrl": "https://exchange.example:8443",
            "credentialsSecretRef": {"name": "binance-keys"}
        }))
        .unwrap();
        let team: Vec<TradingAssistant> = sample("team.yaml");
        let (env, internet, database) = coordinator_and_database(&s, &team);
        assert_eq!(env[protocol::env::SERVICES].value.as_deref(), Some("true"));
        for kept in [
            protocol::env::DB,
            protocol::env::RETRAIN,
            protocol::env::AUDIT_KEY,
        ] {
            assert!(env.contains_key(kept), "the coordinator keeps {kept}");
        }
        for gone in [
            protocol::env::EXCHANGE_API_KEY,
            protocol::env::EXCHANGE_API_SECRET,
        ] {
            assert!(!env.contains_key(gone), "the executor's alone: {gone}");
        }
        assert_eq!(
            internet,
            BTreeSet::from([443, 9443]),
            "the markets, not the exchange"
        );
        let roles: Vec<String> = database
            .iter()
            .filter_map(|p| {
                p.pod_selector
                    .clone()?
                    .match_labels?
                    .remove(protocol::env::ROLE_LABEL)
            })
            .collect();
        assert_eq!(
            roles,
            ["strategist", "executor", "auditor"],
            "besides the coordinator"
        );
        assert_eq!(database.len(), 4);

        // without an auditor the coordinator carries both duties, as before
        let no_auditor: Vec<TradingAssistant> = team
            .into_iter()
            .filter(|ta| ta.spec.role != protocol::Role::Auditor)
            .collect();
        let (env, internet, database) = coordinator_and_database(&s, &no_auditor);
        assert!(!env.contains_key(protocol::env::SERVICES));
        let key = env[protocol::env::EXCHANGE_API_KEY]
            .value_from
            .clone()
            .unwrap();
        assert_eq!(key.secret_key_ref.unwrap().name, "binance-keys");
        assert_eq!(internet, BTreeSet::from([443, 8443, 9443]));
        assert_eq!(database.len(), 2, "the coordinator and the strategist");
    }

    fn policies(s: &Strategy, network: &NetworkPolicySettings) -> Vec<NetworkPolicy> {
        let policy = sample::<ConsensusPolicy>("consensuspolicy.yaml").remove(0);
        objects(s, &policy, &[], network, &PublicKeys::placeholders(s))
            .unwrap()
            .into_iter()
            .filter_map(|c| match c {
                Child::NetworkPolicy(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    fn spec_of(s: &Strategy, network: &NetworkPolicySettings, name: &str) -> NetworkPolicySpec {
        policies(s, network)
            .into_iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("NetworkPolicy {name}"))
            .spec
            .unwrap()
    }

    fn ports(rule: &NetworkPolicyEgressRule) -> Vec<(i32, String)> {
        rule.ports
            .iter()
            .flatten()
            .map(|p| match (&p.port, &p.protocol) {
                (Some(IntOrString::Int(n)), Some(protocol)) => (*n, protocol.clone()),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn egress_ports(spec: &NetworkPolicySpec) -> Vec<Vec<(i32, String)>> {
        spec.egress.iter().flatten().map(ports).collect()
    }

    fn tcp(ports: &[i32]) -> Vec<(i32, String)> {
        ports.iter().map(|p| (*p, "TCP".to_string())).collect()
    }

    #[test]
    fn the_coordinator_is_reached_on_its_api_only_from_the_configured_peers() {
        let s = strategy();
        let closed = spec_of(
            &s,
            &NetworkPolicySettings::default(),
            "btc-eth-paper-coordinator",
        );
        assert_eq!(
            closed.pod_selector.unwrap().match_labels.unwrap(),
            selector("btc-eth-paper", "coordinator", "btc-eth-paper"),
            "the Deployment's selector"
        );
        assert_eq!(
            closed.policy_types.unwrap(),
            ["Ingress".to_string(), "Egress".to_string()]
        );
        assert_eq!(closed.ingress, Some(vec![]), "nobody, unless configured");

        let settings = NetworkPolicySettings {
            api_from: "[{namespaceSelector: {matchLabels: {team: ingress}}}]"
                .parse()
                .unwrap(),
            metrics_from: "[{namespaceSelector: {matchLabels: {team: monitoring}}}]"
                .parse()
                .unwrap(),
            ..Default::default()
        };
        let open = spec_of(&s, &settings, "btc-eth-paper-coordinator");
        let rules = open.ingress.unwrap();
        assert_eq!(rules.len(), 1);
        let from = rules[0].from.clone().unwrap();
        assert_eq!(
            from,
            [settings.api_from.0, settings.metrics_from.0].concat()
        );
        assert_eq!(
            rules[0].ports.clone().unwrap()[0].port,
            Some(IntOrString::Int(AGENT_PORT))
        );
    }

    #[test]
    fn the_coordinator_goes_out_to_dns_its_dependencies_and_the_market() {
        let mut s = strategy();
        let network = NetworkPolicySettings::default();
        let spec = spec_of(&s, &network, "btc-eth-paper-coordinator");
        let dns = vec![(53, "UDP".to_string()), (53, "TCP".to_string())];
        assert_eq!(
            egress_ports(&spec),
            [dns.clone(), tcp(&[4222]), tcp(&[5432]), tcp(&[443, 9443])]
        );
        let egress = spec.egress.unwrap();
        assert_eq!(egress[0].to, Some(network.dns_to.0.clone()));
        assert_eq!(egress[3].to, Some(network.internet_to.0.clone()));
        let nats = egress[1].to.clone().unwrap()[0]
            .pod_selector
            .clone()
            .unwrap();
        assert_eq!(
            nats.match_labels.unwrap(),
            selector("btc-eth-paper", "nats", "btc-eth-paper")
        );

        // replaying a file on paper: nothing on the internet
        s.spec.market_data.source = MarketDataSource::Replay;
        let spec = spec_of(&s, &network, "btc-eth-paper-coordinator");
        assert_eq!(
            egress_ports(&spec),
            [dns.clone(), tcp(&[4222]), tcp(&[5432])]
        );

        // live on an exchange at its own port, an external NATS and Postgres at theirs
        s.spec.mode = TradingMode::Live;
        s.spec
            .exchange
            .get_or_insert_with(Default::default)
            .base_url = Some("https://exchange.example:8443".into());
        s.spec.dependencies.nats = NatsDependency {
            managed: Some(false),
            url: Some("nats://nats.messaging:4333".into()),
            ..Default::default()
        };
        s.spec.dependencies.postgres = Dependency {
            managed: Some(false),
            url: Some("postgres://ia@db.example/ia".into()),
            ..Default::default()
        };
        let spec = spec_of(&s, &network, "btc-eth-paper-coordinator");
        assert_eq!(
            egress_ports(&spec),
            [dns, tcp(&[4333]), tcp(&[5432]), tcp(&[8443])]
        );
        let egress = spec.egress.unwrap();
        assert_eq!(
            egress[1].to, None,
            "an external host has no address to name"
        );
    }

    #[test]
    fn managed_dependencies_take_only_their_users_and_go_nowhere_but_ollamas_registry() {
        let mut s = strategy();
        s.spec.dependencies.ollama = serde_json::from_value(json!({
            "managed": true, "models": ["llama3.2:3b"]
        }))
        .unwrap();
        let network = NetworkPolicySettings::default();
        for (name, port) in [
            ("btc-eth-paper-nats", 4222),
            ("btc-eth-paper-postgres", 5432),
            ("btc-eth-paper-ollama", 11434),
        ] {
            let spec = spec_of(&s, &network, name);
            assert_eq!(spec.policy_types.unwrap().len(), 2, "{name}");
            let ingress = spec.ingress.unwrap();
            assert_eq!(
                ingress[0].ports.clone().unwrap()[0].port,
                Some(IntOrString::Int(port))
            );
            let egress = spec.egress.unwrap();
            if name.ends_with("ollama") {
                assert_eq!(egress.len(), 2, "DNS and the model registry");
                assert_eq!(ports(&egress[1]), tcp(&[443]));
            } else {
                assert!(egress.is_empty(), "{name} connects nowhere");
            }
        }
        let pull = spec_of(&s, &network, "btc-eth-paper-ollama-pull");
        assert_eq!(pull.ingress, Some(vec![]));
        assert_eq!(
            pull.pod_selector.clone().unwrap().match_labels.unwrap(),
            selector("btc-eth-paper", "ollama-pull", "btc-eth-paper")
        );
        assert_eq!(egress_ports(&pull)[1], tcp(&[11434]));
    }

    fn children(s: &Strategy, keys: &PublicKeys) -> Vec<Child> {
        let policy = sample::<ConsensusPolicy>("consensuspolicy.yaml").remove(0);
        objects(s, &policy, &[], &NetworkPolicySettings::default(), keys).unwrap()
    }

    /// A managed NATS starts from the configuration the operator renders (every identity's public
    /// key and permissions), mounted read-only, and rolls when it changes; the coordinator mounts
    /// its own seed only.
    #[test]
    fn managed_nats_runs_its_rendered_configuration_and_the_coordinator_its_own_seed() {
        let s = strategy();
        let seeds = nats_identity::generate_seeds(&s).unwrap();
        let keys = PublicKeys::from_seeds(&s, "btc-eth-paper-nats-credentials", &seeds).unwrap();
        let objects = children(&s, &keys);
        let config = objects
            .iter()
            .find_map(|c| match c {
                Child::ConfigMap(c) if c.metadata.name.as_deref() == Some("btc-eth-paper-nats") => {
                    Some(c.clone())
                }
                _ => None,
            })
            .expect("the NATS configuration");
        let sts = objects
            .iter()
            .find_map(|c| match c {
                Child::StatefulSet(s)
                    if s.metadata.name.as_deref() == Some("btc-eth-paper-nats") =>
                {
                    Some(s.clone())
                }
                _ => None,
            })
            .unwrap();
        let template = sts.spec.template;
        assert_eq!(
            template.metadata.unwrap().annotations.unwrap()[CONFIG_HASH],
            nats_identity::server_config_hash(&config)
        );
        let pod = template.spec.unwrap();
        let container = &pod.containers[0];
        assert_eq!(
            container.args.clone().unwrap(),
            ["-c", "/etc/nats/nats.conf"]
        );
        let sc = container.security_context.clone().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        let mounts = container.volume_mounts.clone().unwrap();
        let config_mount = mounts.iter().find(|m| m.mount_path == "/etc/nats").unwrap();
        assert_eq!(config_mount.read_only, Some(true));
        let volume = pod
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == config_mount.name)
            .unwrap();
        assert_eq!(volume.config_map.unwrap().name, "btc-eth-paper-nats");
        assert!(mounts.iter().any(|m| m.mount_path == "/data"));

        let text = serde_json::to_string(&objects.iter().map(Child::manifest).collect::<Vec<_>>())
            .unwrap();
        for seed in seeds.values() {
            assert!(!text.contains(seed.as_str()), "a seed in the manifests");
        }
        let coordinator = objects
            .iter()
            .find_map(|c| match c {
                Child::Deployment(d) => Some(d.clone()),
                _ => None,
            })
            .unwrap();
        let pod = coordinator.spec.template.spec.unwrap();
        let secrets: Vec<_> = pod
            .volumes
            .unwrap()
            .into_iter()
            .filter_map(|v| v.secret)
            .collect();
        assert_eq!(secrets.len(), 1);
        assert_eq!(
            secrets[0].secret_name.as_deref(),
            Some("btc-eth-paper-nats-credentials")
        );
        let items = secrets[0].items.clone().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].key, "coordinator");
        let env = pod.containers[0].env.clone().unwrap();
        let file = env
            .iter()
            .find(|e| e.name == protocol::env::NATS_NKEY_FILE)
            .unwrap();
        assert_eq!(
            file.value.as_deref(),
            Some("/etc/ia-agents-nats/coordinator.nk")
        );
        assert_eq!(pod.security_context.unwrap().fs_group, Some(65532));
    }

    /// An external NATS: no server, no configuration; the coordinator's seed from the referenced
    /// Secret, or none.
    #[test]
    fn external_nats_takes_its_credentials_from_the_referenced_secret() {
        let mut s = strategy();
        s.spec.dependencies.nats = serde_json::from_value(json!({
            "url": "nats://nats.infra:4222", "credentialsSecretRef": {"name": "team-ids"}
        }))
        .unwrap();
        let objects = children(&s, &PublicKeys::default());
        assert!(!objects
            .iter()
            .any(|c| c.manifest()["metadata"]["name"] == "btc-eth-paper-nats"));
        let coordinator = |objects: &[Child]| {
            objects
                .iter()
                .find_map(|c| match c {
                    Child::Deployment(d) => d.spec.template.spec.clone(),
                    _ => None,
                })
                .unwrap()
        };
        let pod = coordinator(&objects);
        let secret = pod
            .volumes
            .unwrap()
            .into_iter()
            .find_map(|v| v.secret)
            .unwrap();
        assert_eq!(secret.secret_name.as_deref(), Some("team-ids"));
        s.spec.dependencies.nats.credentials_secret_ref = None;
        let pod = coordinator(&children(&s, &PublicKeys::default()));
        assert!(pod.volumes.unwrap().iter().all(|v| v.secret.is_none()));
        assert!(pod.containers[0]
            .env
            .iter()
            .flatten()
            .all(|e| e.name != protocol::env::NATS_NKEY_FILE));
    }

    #[test]
    fn notifications_open_https_even_when_replaying() {
        let mut s = strategy();
        s.spec.market_data.source = MarketDataSource::Replay;
        assert!(coordinator_internet_ports(&s, false).is_empty());
        s.spec.notifications = serde_json::from_value(json!({"targets": [{
            "name": "ops", "kind": "slack", "secretRef": {"name": "hooks", "key": "slack"}
        }]}))
        .unwrap();
        assert_eq!(coordinator_internet_ports(&s, false), BTreeSet::from([443]));
    }
}
