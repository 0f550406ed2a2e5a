//! TradingAssistant → a ConfigMap of its role parameters, a Deployment of `trading-agent
//! assistant`, scaled by `spec.replicas` (the scale subresource), and the NetworkPolicy of its pods,
//! all owned by the TradingAssistant.

use super::network::{self, NetworkPolicySettings};
use super::services;
use super::{
    child_name, container_port, container_security, empty_dir, env, http_probe, labels,
    match_labels, mount, owner, runtime_default, selector, BuildError, AGENT_PORT,
};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EnvVar, EnvVarSource, KeyToPath,
    ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use protocol::crd::{Strategy, TradingAssistant};
use protocol::Role;
use std::collections::{BTreeMap, BTreeSet};

/// The component label of assistants.
pub const COMPONENT: &str = "assistant";

/// The metadata of a TradingAssistant's child `object`, owned by it.
fn meta(ta: &TradingAssistant, object: String, namespace: Option<String>) -> ObjectMeta {
    let name = ta.metadata.name.clone().unwrap_or_default();
    ObjectMeta {
        name: Some(object),
        namespace,
        labels: Some(labels(&ta.spec.strategy_ref.name, COMPONENT, &name)),
        owner_references: Some(owner(ta).into_iter().collect()),
        ..Default::default()
    }
}

/// The role parameters as a ConfigMap (mounted read-only, read as `--param` values).
pub fn config_map(ta: &TradingAssistant) -> Result<ConfigMap, BuildError> {
    let name = ta.metadata.name.clone().unwrap_or_default();
    Ok(ConfigMap {
        metadata: meta(
            ta,
            child_name(&name, "params"),
            ta.metadata.namespace.clone(),
        ),
        data: Some(ta.spec.params.clone()),
        ..Default::default()
    })
}

/// The assistant's Deployment. `strategy` (when found) gives the namespace's NATS and Ollama;
/// `team` (the TradingAssistants of its namespace) says whether its executor and auditor are
/// services of their own ([`services::runs_services`]), which concerns only their pods.
pub fn deployment(
    ta: &TradingAssistant,
    strategy: Option<&Strategy>,
    team: &[TradingAssistant],
) -> Result<Deployment, BuildError> {
    let name = ta.metadata.name.clone().unwrap_or_default();
    let namespace = ta
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let strategy_name = &ta.spec.strategy_ref.name;
    let container = Container {
        name: "assistant".into(),
        image: Some(ta.spec.image.clone().unwrap_or_else(super::agent_image)),
        args: Some(vec!["assistant".into()]),
        env: Some(environment(ta, strategy, serves(strategy, team))),
        ports: Some(vec![container_port("http", AGENT_PORT)]),
        liveness_probe: Some(http_probe("/healthz", 10)),
        readiness_probe: Some(http_probe("/readyz", 5)),
        resources: ta.spec.resources.clone(),
        security_context: Some(container_security()),
        volume_mounts: Some(vec![
            mount("tmp", "/tmp"),
            VolumeMount {
                read_only: Some(true),
                ..mount("strategy", "/etc/ia-agents")
            },
        ]),
        ..Default::default()
    };
    let mut pod = PodSpec {
        automount_service_account_token: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            // the group that may read the mounted NATS seed (mode 0440)
            fs_group: Some(65532),
            seccomp_profile: Some(runtime_default()),
            ..Default::default()
        }),
        node_selector: Some(ta.spec.node_selector.clone()),
        tolerations: Some(ta.spec.tolerations.clone()),
        containers: vec![container],
        volumes: Some(vec![empty_dir("tmp"), strategy_volume(strategy_name)]),
        ..Default::default()
    };
    // its NATS identity, its role's: its own seed only
    if let Some(secret) = super::nats::credentials_source(strategy, strategy_name) {
        let identity = protocol::nats_auth::identity_of(ta.spec.role);
        super::nats::mount_identity(&mut pod, &secret, identity);
        super::nats::peer_keys(&mut pod, strategy_name, ta.spec.role);
    }
    Ok(Deployment {
        metadata: meta(ta, child_name(&name, "assistant"), Some(namespace)),
        spec: DeploymentSpec {
            // a paused Strategy scales its whole team to zero
            replicas: Some(if strategy.is_some_and(|s| s.spec.paused) {
                0
            } else {
                ta.spec.replicas
            }),
            selector: match_labels(selector(strategy_name, COMPONENT, &name)),
            template: super::strategy::with_annotation(
                PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(pod_labels(ta, strategy_name, &name)),
                        ..Default::default()
                    }),
                    spec: Some(pod),
                },
                super::strategy::CONFIG_HASH,
                &strategy_hash(strategy),
            ),
            ..Default::default()
        },
        ..Default::default()
    })
}

/// The pods' labels: the component's, and the role (`protocol::env::ROLE_LABEL`), which the
/// managed Postgres's policy admits the roles that read the database by.
fn pod_labels(ta: &TradingAssistant, strategy: &str, name: &str) -> BTreeMap<String, String> {
    let mut labels = labels(strategy, COMPONENT, name);
    labels.insert(
        protocol::env::ROLE_LABEL.into(),
        ta.spec.role.as_str().into(),
    );
    labels
}

/// Whether the team of `strategy` runs its executor and auditor as services (false while the
/// Strategy is not found).
fn serves(strategy: Option<&Strategy>, team: &[TradingAssistant]) -> bool {
    strategy.is_some_and(|s| services::runs_services(s, team))
}

/// Whether the assistant reads the team's database ([`services::database_roles`]): the
/// strategist, for the ensemble the coordinator retrains into it (`models`), and the executor and
/// auditor when they are services (`services`).
fn reads_the_database(ta: &TradingAssistant, services: bool) -> bool {
    services::database_roles(services).contains(&ta.spec.role)
}

/// The policy of the assistant's pods: in, their http port (health, metrics) from the configured
/// metrics peers only; out, DNS, the team's NATS, its Ollama when the assistant reasons with a
/// model, its Postgres when it reads the database, and the internet on [`internet_ports`] (and, for
/// a live executor service, the exchange's port). `strategy` (when found) says where NATS,
/// Postgres and Ollama are; `team` as for [`deployment`].
pub fn network_policy(
    ta: &TradingAssistant,
    strategy: Option<&Strategy>,
    team: &[TradingAssistant],
    settings: &NetworkPolicySettings,
) -> NetworkPolicy {
    let name = ta.metadata.name.clone().unwrap_or_default();
    let strategy_name = &ta.spec.strategy_ref.name;
    let services = serves(strategy, team);
    let ollama = strategy
        .filter(|_| ta.spec.model.is_some())
        .and_then(network::ollama);
    let database = strategy
        .filter(|_| reads_the_database(ta, services))
        .and_then(network::postgres);
    let mut ports = internet_ports(ta);
    if let Some(s) = strategy.filter(|_| services) {
        ports.extend(services::service_internet_ports(ta.spec.role, s));
    }
    let egress = [
        Some(network::dns(settings)),
        Some(network::nats(strategy_name, strategy)),
        ollama,
        database,
        network::internet(settings, &ports),
    ];
    network::policy(
        meta(
            ta,
            child_name(&name, "assistant"),
            ta.metadata.namespace.clone(),
        ),
        selector(strategy_name, COMPONENT, &name),
        network::ingress_from(&settings.metrics_from.0, AGENT_PORT)
            .into_iter()
            .collect(),
        egress.into_iter().flatten().collect(),
    )
}

/// The internet ports an assistant connects to whatever its team. A fundamental analyst reads the
/// news feeds of its `feeds` param: each feed's port, and HTTPS, where a plain-http feed usually
/// redirects. No other role reaches out of its own: the market monitor judges the snapshot the
/// coordinator sends it over NATS, and the executor reaches the exchange only as a live service
/// ([`services::service_internet_ports`]; else the coordinator carries its duty).
pub fn internet_ports(ta: &TradingAssistant) -> BTreeSet<i32> {
    if ta.spec.role != Role::FundamentalAnalyst {
        return BTreeSet::new();
    }
    let feeds: Vec<&str> = ta
        .spec
        .params
        .get("feeds")
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut ports: BTreeSet<i32> = feeds.iter().filter_map(|f| network::url_port(f)).collect();
    if !feeds.is_empty() {
        ports.insert(network::HTTPS_PORT);
    }
    ports
}

/// The Strategy's manifest, from its coordinator's ConfigMap (`strategy.yaml` only): the risk
/// limits the risk manager enforces and the symbols the news is about.
fn strategy_volume(strategy: &str) -> Volume {
    Volume {
        name: "strategy".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: child_name(strategy, "coordinator"),
            items: Some(vec![KeyToPath {
                key: "strategy.yaml".into(),
                path: "strategy.yaml".into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The hash of the Strategy's spec the pods run on, so a change to it rolls them (empty while the
/// Strategy is not found).
fn strategy_hash(strategy: Option<&Strategy>) -> String {
    let spec = strategy.map(|s| serde_json::to_string(&s.spec).expect("a spec serialises"));
    let data = spec.map(|spec| BTreeMap::from([("strategy.yaml".to_string(), spec)]));
    super::strategy::config_hash(data.as_ref())
}

/// The assistant's environment: who it is, where its team's NATS (and Ollama) are, its params, and
/// the database and secrets of the roles that need them (the executor and auditor as services:
/// `services`).
fn environment(ta: &TradingAssistant, strategy: Option<&Strategy>, services: bool) -> Vec<EnvVar> {
    let name = ta.metadata.name.clone().unwrap_or_default();
    let namespace = ta.metadata.namespace.as_deref().unwrap_or("default");
    let strategy_name = &ta.spec.strategy_ref.name;
    // without its Strategy (not found yet) the team's NATS is the managed one's name
    let nats_url = strategy.map_or_else(
        || format!("nats://{}:4222", child_name(strategy_name, "nats")),
        super::strategy::nats_url,
    );
    // a JSON object: a value may hold any character, commas included (a list of feeds)
    let params = serde_json::to_string(&ta.spec.params).expect("a map of strings serialises");
    let mut vars = vec![
        env(protocol::env::NATS_URL, nats_url),
        env(protocol::env::NAMESPACE, namespace),
        env(protocol::env::STRATEGY, strategy_name),
        env(protocol::env::ROLE, ta.spec.role.as_str()),
        env(protocol::env::ASSISTANT, name),
        env(protocol::env::WEIGHT, ta.spec.weight.to_string()),
        EnvVar {
            name: protocol::env::INSTANCE.into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "metadata.name".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
        env(protocol::env::LOG_FORMAT, "json"),
        env(protocol::env::LISTEN, format!("0.0.0.0:{AGENT_PORT}")),
        env(protocol::env::STRATEGY_FILE, "/etc/ia-agents/strategy.yaml"),
    ];
    if !ta.spec.params.is_empty() {
        vars.push(env(protocol::env::PARAMS, params));
    }
    if let Some(s) = strategy.filter(|_| reads_the_database(ta, services)) {
        vars.extend(super::strategy::database_env(s));
    }
    if let Some(s) = strategy.filter(|_| services) {
        vars.extend(services::service_secrets(ta.spec.role, s));
    }
    if let Some(model) = &ta.spec.model {
        vars.push(env(protocol::env::MODEL, &model.name));
        vars.push(env(
            protocol::env::MODEL_TEMPERATURE,
            model.temperature.to_string(),
        ));
        vars.push(env(
            protocol::env::MODEL_TIMEOUT,
            model.timeout_seconds.to_string(),
        ));
        if let Some(url) = strategy.and_then(super::strategy::ollama_url) {
            vars.push(env(protocol::env::OLLAMA_URL, url));
        }
    }
    vars
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

    fn strategy() -> Strategy {
        let path = std::path::Path::new("strategy.yaml");
        let doc = parse_documents(include_str!("../../../config/samples/strategy.yaml"), path)
            .unwrap()
            .remove(0);
        serde_json::from_value(doc.value).unwrap()
    }

    /// The TCP ports of the rules that reach beyond the cluster (to the internet peers).
    fn internet_rules(policy: &NetworkPolicy, settings: &NetworkPolicySettings) -> Vec<i32> {
        let spec = policy.spec.clone().unwrap();
        spec.egress
            .into_iter()
            .flatten()
            .filter(|rule| rule.to.as_ref() == Some(&settings.internet_to.0))
            .flat_map(|rule| rule.ports.unwrap_or_default())
            .map(|p| match p.port {
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => n,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn every_assistant_is_guarded_and_only_the_news_reader_reaches_the_internet() {
        let s = strategy();
        let settings = NetworkPolicySettings::default();
        // the sample team runs its executor and auditor as services, which write the record
        let team = team();
        for ta in team.clone() {
            let role = ta.spec.role;
            let policy = network_policy(&ta, Some(&s), &team, &settings);
            let d = deployment(&ta, Some(&s), &team).unwrap();
            let spec = policy.spec.clone().unwrap();
            assert_eq!(
                spec.pod_selector.clone().unwrap(),
                d.spec.selector,
                "{role}: the Deployment's pods"
            );
            assert_eq!(
                spec.policy_types.unwrap(),
                ["Ingress".to_string(), "Egress".to_string()]
            );
            assert_eq!(spec.ingress, Some(vec![]), "{role}: no scraper configured");
            let egress = spec.egress.unwrap();
            assert_eq!(egress[0].to, Some(settings.dns_to.0.clone()), "{role}: DNS");
            let nats = egress[1].to.clone().unwrap()[0]
                .pod_selector
                .clone()
                .unwrap();
            assert_eq!(
                nats.match_labels.unwrap()["app.kubernetes.io/component"],
                "nats"
            );
            let internet = internet_rules(&policy, &settings);
            if role == Role::FundamentalAnalyst {
                assert_eq!(internet, [443], "the sample's https feeds");
            } else if matches!(role, Role::Strategist | Role::Executor | Role::Auditor) {
                assert!(
                    internet.is_empty(),
                    "{role} has no business outside (on paper)"
                );
                let postgres = egress[2].to.clone().unwrap()[0]
                    .pod_selector
                    .clone()
                    .unwrap();
                assert_eq!(
                    postgres.match_labels.unwrap()["app.kubernetes.io/component"],
                    "postgres",
                    "{role} reads or writes the team's database"
                );
                assert_eq!(egress.len(), 3, "{role}: DNS, NATS and Postgres only");
            } else {
                assert!(internet.is_empty(), "{role} has no business outside");
                assert_eq!(egress.len(), 2, "{role}: DNS and NATS only");
            }
        }
    }

    /// The environment variables of `ta`'s pods, by name (a value, or a Secret's name and key).
    fn env_of(ta: &TradingAssistant, s: &Strategy, team: &[TradingAssistant]) -> Vec<EnvVar> {
        let d = deployment(ta, Some(s), team).unwrap();
        d.spec.template.spec.unwrap().containers[0]
            .env
            .clone()
            .unwrap()
    }

    fn names(vars: &[EnvVar]) -> BTreeSet<&str> {
        vars.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn without_services_only_the_strategist_gets_the_database_and_each_is_labelled_by_its_role() {
        let s = strategy();
        // without the auditor the coordinator keeps the record: the executor is no service
        let team: Vec<TradingAssistant> = team()
            .into_iter()
            .filter(|ta| ta.spec.role != Role::Auditor)
            .collect();
        for ta in team.clone() {
            let role = ta.spec.role;
            let d = deployment(&ta, Some(&s), &team).unwrap();
            let template = d.spec.template;
            let labels = template.metadata.unwrap().labels.unwrap();
            assert_eq!(labels[protocol::env::ROLE_LABEL], role.as_str());
            let env = template.spec.unwrap().containers[0].env.clone().unwrap();
            let db = env.iter().find(|e| e.name == protocol::env::DB);
            let password = env.iter().find(|e| e.name == "PGPASSWORD");
            if role == Role::Strategist {
                assert_eq!(
                    db.and_then(|e| e.value.as_deref()),
                    Some("postgres://ia@btc-eth-paper-postgres:5432/ia")
                );
                let from = password.and_then(|e| e.value_from.clone()).unwrap();
                assert_eq!(
                    from.secret_key_ref.unwrap().name,
                    "btc-eth-paper-postgres",
                    "the password by reference only"
                );
            } else {
                assert!(db.is_none() && password.is_none(), "{role} has no database");
            }
            let secrets = [protocol::env::AUDIT_KEY, protocol::env::EXCHANGE_API_KEY];
            assert!(secrets.iter().all(|n| !names(&env).contains(n)), "{role}");
        }
    }

    #[test]
    fn the_executor_and_auditor_services_get_the_database_and_their_own_secrets_only() {
        let mut s = strategy();
        s.spec.exchange = serde_json::from_value(serde_json::json!({
            "baseUrl": "https://exchange.example:8443",
            "credentialsSecretRef": {"name": "binance-keys"}
        }))
        .unwrap();
        let team = team();
        let member = |role: Role| team.iter().find(|t| t.spec.role == role).unwrap();
        let (executor, auditor) = (member(Role::Executor), member(Role::Auditor));
        let database = ["PGPASSWORD", protocol::env::DB];
        let auditor_env = env_of(auditor, &s, &team);
        for name in [database[0], database[1], protocol::env::AUDIT_KEY] {
            assert!(names(&auditor_env).contains(name), "the auditor's {name}");
        }
        assert!(!names(&auditor_env).contains(protocol::env::EXCHANGE_API_KEY));
        let key = auditor_env
            .iter()
            .find(|e| e.name == protocol::env::AUDIT_KEY);
        let key = key.and_then(|e| e.value_from.clone()).unwrap();
        assert_eq!(key.secret_key_ref.unwrap().name, "btc-eth-paper-audit-key");
        // on paper the executor fills from the stream: the database, no keys, no internet
        let paper = env_of(executor, &s, &team);
        assert!(database.iter().all(|n| names(&paper).contains(n)));
        assert!(!names(&paper).contains(protocol::env::EXCHANGE_API_KEY));
        let settings = NetworkPolicySettings::default();
        let policy = network_policy(executor, Some(&s), &team, &settings);
        assert!(internet_rules(&policy, &settings).is_empty());
        // live: the exchange's keys by reference, and its port
        s.spec.mode = protocol::crd::TradingMode::Live;
        let live = env_of(executor, &s, &team);
        let secret = live
            .iter()
            .find(|e| e.name == protocol::env::EXCHANGE_API_SECRET);
        let secret = secret.and_then(|e| e.value_from.clone()).unwrap();
        let secret = secret.secret_key_ref.unwrap();
        assert_eq!(
            (secret.name.as_str(), secret.key.as_str()),
            ("binance-keys", "apiSecret")
        );
        let policy = network_policy(executor, Some(&s), &team, &settings);
        assert_eq!(internet_rules(&policy, &settings), [8443]);
        let policy = network_policy(auditor, Some(&s), &team, &settings);
        assert!(
            internet_rules(&policy, &settings).is_empty(),
            "the auditor stays inside"
        );
        // no database: no services, whatever the team
        s.spec.dependencies.postgres = Default::default();
        let without = env_of(executor, &s, &team);
        assert!(!names(&without).contains(protocol::env::EXCHANGE_API_KEY));
        let policy = network_policy(executor, Some(&s), &team, &settings);
        assert!(internet_rules(&policy, &settings).is_empty());
    }

    #[test]
    fn feeds_model_and_scraper_shape_an_assistants_policy() {
        let mut s = strategy();
        let mut ta = team()
            .into_iter()
            .find(|t| t.spec.role == Role::FundamentalAnalyst)
            .unwrap();
        ta.spec.params.insert(
            "feeds".into(),
            "http://news.example/rss, https://feeds.example:8443/atom".into(),
        );
        assert_eq!(internet_ports(&ta), BTreeSet::from([80, 443, 8443]));
        ta.spec.params.remove("feeds");
        assert!(internet_ports(&ta).is_empty(), "no feeds, no internet");

        // a model reaches the Strategy's Ollama (an external one at its URL's port)
        s.spec.dependencies.ollama = serde_json::from_value(serde_json::json!({
            "url": "http://ollama.models:11434"
        }))
        .unwrap();
        ta.spec.model = serde_json::from_value(serde_json::json!({"name": "llama3.2:3b"})).unwrap();
        let scraper: network::Peers = "[{namespaceSelector: {matchLabels: {team: monitoring}}}]"
            .parse()
            .unwrap();
        let settings = NetworkPolicySettings {
            metrics_from: scraper.clone(),
            ..Default::default()
        };
        let spec = network_policy(&ta, Some(&s), &[], &settings).spec.unwrap();
        let egress = spec.egress.unwrap();
        assert_eq!(egress.len(), 3, "DNS, NATS, Ollama: {egress:?}");
        assert_eq!(egress[2].to, None);
        let ollama_port = egress[2].ports.clone().unwrap()[0].port.clone();
        assert_eq!(
            ollama_port,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(11434))
        );
        let ingress = spec.ingress.unwrap();
        assert_eq!(ingress[0].from, Some(scraper.0));
        ta.spec.model = None;
        let without = network_policy(&ta, Some(&s), &[], &settings).spec.unwrap();
        assert_eq!(without.egress.unwrap().len(), 2, "no model, no Ollama");
    }

    /// Each assistant, executor and auditor included, connects as its role's identity: the seed of
    /// that identity only, from the generated Secret (managed NATS) or the referenced one.
    #[test]
    fn each_assistant_mounts_only_its_roles_seed() {
        let mut s = strategy();
        let seeds = |d: &Deployment| {
            let pod = d.spec.template.spec.clone().unwrap();
            let secrets: Vec<(String, Vec<String>)> = pod
                .volumes
                .iter()
                .flatten()
                .filter_map(|v| v.secret.clone())
                .map(|v| {
                    let keys = v.items.unwrap().into_iter().map(|i| i.key).collect();
                    (v.secret_name.unwrap(), keys)
                })
                .collect();
            let file = pod.containers[0]
                .env
                .iter()
                .flatten()
                .find(|e| e.name == protocol::env::NATS_NKEY_FILE)
                .and_then(|e| e.value.clone());
            (secrets, file)
        };
        let mut roles = Vec::new();
        for ta in team() {
            let role = ta.spec.role.as_str();
            let (secrets, file) = seeds(&deployment(&ta, Some(&s), &team()).unwrap());
            assert_eq!(
                secrets,
                [(
                    "btc-eth-paper-nats-credentials".to_string(),
                    vec![role.to_string()]
                )],
                "{role}"
            );
            assert_eq!(file, Some(format!("/etc/ia-agents-nats/{role}.nk")));
            roles.push(role);
        }
        assert!(roles.contains(&"executor") && roles.contains(&"auditor"));

        // an external NATS: the referenced Secret, or none at all
        let ta = team().remove(0);
        s.spec.dependencies.nats = serde_json::from_value(serde_json::json!({
            "url": "nats://nats.infra:4222", "credentialsSecretRef": {"name": "team-ids"}
        }))
        .unwrap();
        let (secrets, _) = seeds(&deployment(&ta, Some(&s), &[]).unwrap());
        assert_eq!(secrets[0].0, "team-ids");
        s.spec.dependencies.nats.credentials_secret_ref = None;
        assert_eq!(
            seeds(&deployment(&ta, Some(&s), &[]).unwrap()),
            (vec![], None)
        );
    }

    #[test]
    fn an_assistant_runs_its_role_non_root_with_its_params() {
        let ta = team()
            .into_iter()
            .find(|t| t.spec.role == protocol::Role::MarketMonitor)
            .unwrap();
        let d = deployment(&ta, None, &team()).unwrap();
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
        assert_eq!(env[protocol::env::ROLE], "marketMonitor");
        assert_eq!(env[protocol::env::STRATEGY], "btc-eth-paper");
        let params: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&env[protocol::env::PARAMS]).unwrap();
        assert_eq!(params["alertThreshold"], "0.03");
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
