//! The NetworkPolicies of a team (docs/architecture.md, "Kubernetes"): every pod the operator runs
//! gets one, with both policy types, so it accepts connections only on the ports it serves, from
//! the peers that need them, and connects only to DNS, its own dependencies and, for the components
//! that read markets or news, trade or notify, the internet on the ports they use.
//!
//! Who counts as the console, the scraper, DNS and the internet depends on the cluster: the
//! operator takes them as [`NetworkPolicySettings`] (`--api-from`, `--metrics-from`, `--dns-to`,
//! `--internet-to`, set by the Helm chart's `networkPolicy` values).

use super::strategy::{nats_url, ollama_url};
use super::{match_labels, selector};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use protocol::crd::Strategy;
use std::collections::{BTreeMap, BTreeSet};

/// Port of a managed or external NATS unless its URL says otherwise.
pub const NATS_PORT: i32 = 4222;
/// Port of a managed or external Postgres unless its URL says otherwise.
pub const POSTGRES_PORT: i32 = 5432;
/// Port of a managed or external Ollama unless its URL says otherwise.
pub const OLLAMA_PORT: i32 = 11434;
/// Port of DNS, reached over UDP and TCP.
pub const DNS_PORT: i32 = 53;
/// Port of HTTPS: Binance's REST API, the exchange, notification webhooks, news feeds, Ollama's
/// model registry.
pub const HTTPS_PORT: i32 = 443;
/// Port of Binance's market-data WebSocket (`wss://stream.binance.com:9443`, the agent's default).
pub const BINANCE_STREAM_PORT: i32 = 9443;

/// [`NetworkPolicySettings::dns_to`]'s default: the kube-system namespace, where the cluster's DNS
/// runs.
pub const DEFAULT_DNS_TO: &str =
    r#"[{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}]"#;
/// [`NetworkPolicySettings::internet_to`]'s default: every address but the private (RFC 1918, IPv6
/// unique-local), shared (RFC 6598) and link-local ones (cloud metadata servers included), so the
/// internet ports never open the cluster's own services.
pub const DEFAULT_INTERNET_TO: &str = concat!(
    r#"[{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "#,
    r#""192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"]}}, "#,
    r#"{"ipBlock": {"cidr": "::/0", "except": ["fc00::/7", "fe80::/10"]}}]"#
);

/// NetworkPolicy peers given as a YAML or JSON list (`[{"namespaceSelector": {...}}]`), as the
/// Helm chart passes its `networkPolicy` values.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Peers(pub Vec<NetworkPolicyPeer>);

/// Why a list of NetworkPolicy peers was refused.
#[derive(Debug, thiserror::Error)]
pub enum PeersError {
    /// The text is not a YAML or JSON list of peers.
    #[error("not a YAML or JSON list of NetworkPolicy peers: {0}")]
    Syntax(#[from] serde_yaml::Error),
    /// A peer with no selector and no address block (a misspelt field is ignored, leaving it so).
    #[error("peer {index} names no podSelector, namespaceSelector or ipBlock")]
    SelectsNothing {
        /// The peer's position in the list, from 0.
        index: usize,
    },
    /// A peer with both an address block and a selector, which the API server refuses.
    #[error("peer {index} combines ipBlock with a selector; give them as two peers")]
    IpBlockWithSelector {
        /// The peer's position in the list, from 0.
        index: usize,
    },
}

impl std::str::FromStr for Peers {
    type Err = PeersError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let peers: Vec<NetworkPolicyPeer> = serde_yaml::from_str(text)?;
        for (index, peer) in peers.iter().enumerate() {
            let selects = peer.pod_selector.is_some() || peer.namespace_selector.is_some();
            match (&peer.ip_block, selects) {
                (None, false) => return Err(PeersError::SelectsNothing { index }),
                (Some(_), true) => return Err(PeersError::IpBlockWithSelector { index }),
                _ => {}
            }
        }
        Ok(Self(peers))
    }
}

/// Where the teams' NetworkPolicies let traffic come from and go to, beyond the team itself. Each
/// is a YAML or JSON list of NetworkPolicy peers.
#[derive(Clone, Debug, PartialEq, clap::Args)]
pub struct NetworkPolicySettings {
    /// Who may reach a coordinator's API and console (its http port), as a YAML or JSON list of
    /// NetworkPolicy peers: an ingress controller, the namespace of a console. Nobody else may
    /// (`kubectl port-forward` still works).
    #[arg(
        long,
        env = "IA_NETWORK_API_FROM",
        value_name = "PEERS",
        default_value = "[]"
    )]
    pub api_from: Peers,
    /// Who may scrape /metrics of every coordinator and assistant (Prometheus).
    #[arg(
        long,
        env = "IA_NETWORK_METRICS_FROM",
        value_name = "PEERS",
        default_value = "[]"
    )]
    pub metrics_from: Peers,
    /// Where DNS answers (port 53, UDP and TCP).
    #[arg(long, env = "IA_NETWORK_DNS_TO", value_name = "PEERS", default_value = DEFAULT_DNS_TO)]
    pub dns_to: Peers,
    /// Where the internet is, for the pods that read markets or news, trade or notify (only on
    /// the ports they use). Narrow it to an egress gateway, or widen it for an in-cluster mirror.
    #[arg(
        long,
        env = "IA_NETWORK_INTERNET_TO",
        value_name = "PEERS",
        default_value = DEFAULT_INTERNET_TO
    )]
    pub internet_to: Peers,
}

impl Default for NetworkPolicySettings {
    /// Nobody may reach the API or scrape; DNS in kube-system; the internet: every public address.
    fn default() -> Self {
        let parse = |text: &str| text.parse().expect("the default peers parse");
        Self {
            api_from: Peers::default(),
            metrics_from: Peers::default(),
            dns_to: parse(DEFAULT_DNS_TO),
            internet_to: parse(DEFAULT_INTERNET_TO),
        }
    }
}

/// A port of `protocol` (`TCP`, `UDP`).
fn port(protocol: &str, number: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(number)),
        protocol: Some(protocol.into()),
        ..Default::default()
    }
}

/// Connections to TCP `port_number` from `peers`; none when there are no peers (a rule without
/// peers would let everyone in).
pub fn ingress_from(
    peers: &[NetworkPolicyPeer],
    port_number: i32,
) -> Option<NetworkPolicyIngressRule> {
    (!peers.is_empty()).then(|| NetworkPolicyIngressRule {
        from: Some(peers.to_vec()),
        ports: Some(vec![port("TCP", port_number)]),
    })
}

/// DNS lookups, over UDP and TCP, to [`NetworkPolicySettings::dns_to`].
pub fn dns(settings: &NetworkPolicySettings) -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: Some(settings.dns_to.0.clone()),
        ports: Some(vec![port("UDP", DNS_PORT), port("TCP", DNS_PORT)]),
    }
}

/// Connections to the internet ([`NetworkPolicySettings::internet_to`]) on TCP `ports`; none
/// without ports.
pub fn internet(
    settings: &NetworkPolicySettings,
    ports: &BTreeSet<i32>,
) -> Option<NetworkPolicyEgressRule> {
    (!ports.is_empty()).then(|| NetworkPolicyEgressRule {
        to: Some(settings.internet_to.0.clone()),
        ports: Some(ports.iter().map(|p| port("TCP", *p)).collect()),
    })
}

/// Connections to TCP `port_number` of the same namespace's pods that `pods` selects.
pub fn to_pods(pods: LabelSelector, port_number: i32) -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            pod_selector: Some(pods),
            ..Default::default()
        }]),
        ports: Some(vec![port("TCP", port_number)]),
    }
}

/// Connections to TCP `port_number` of any address: an external dependency, whose host is a name
/// a NetworkPolicy cannot hold.
pub fn to_port(port_number: i32) -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: None,
        ports: Some(vec![port("TCP", port_number)]),
    }
}

/// The strategy's pods of the given components (`app.kubernetes.io/component` in `components`).
pub fn team_pods(strategy: &str, components: &[&str]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            "trading.ia-agents.dev/strategy".to_string(),
            strategy.to_string(),
        )])),
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "app.kubernetes.io/component".into(),
            operator: "In".into(),
            values: Some(components.iter().map(|c| c.to_string()).collect()),
        }]),
    }
}

/// A policy of both types for the pods `pods` selects: only `ingress` in, only `egress` out (an
/// empty list of rules allows nothing).
pub fn policy(
    metadata: ObjectMeta,
    pods: BTreeMap<String, String>,
    ingress: Vec<NetworkPolicyIngressRule>,
    egress: Vec<NetworkPolicyEgressRule>,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(match_labels(pods)),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(ingress),
            egress: Some(egress),
        }),
    }
}

/// The port a URL connects to: its own, or its scheme's (`https`, `wss`: 443; `http`, `ws`: 80).
/// `None` for a URL that does not parse or whose scheme has no known port (`nats://host`).
pub fn url_port(url: &str) -> Option<i32> {
    reqwest::Url::parse(url)
        .ok()?
        .port_or_known_default()
        .map(i32::from)
}

/// How a team pod reaches a dependency: the managed pods of `component` on `default_port`, or an
/// external one on its URL's port (`http://ollama.example`: 80), `default_port` when neither the
/// URL nor its scheme gives one (`nats://`, `postgres://`).
fn dependency(
    strategy: &str,
    component: &str,
    managed: bool,
    url: Option<&str>,
    default_port: i32,
) -> NetworkPolicyEgressRule {
    if managed {
        to_pods(
            match_labels(selector(strategy, component, strategy)),
            default_port,
        )
    } else {
        to_port(url.and_then(url_port).unwrap_or(default_port))
    }
}

/// Connections to the team's NATS. Without its Strategy (not found yet) the team's NATS is the
/// managed one, as the assistant's environment assumes.
pub fn nats(strategy_name: &str, s: Option<&Strategy>) -> NetworkPolicyEgressRule {
    let managed = s.is_none_or(|s| s.spec.dependencies.nats.managed == Some(true));
    let url = s.map(nats_url);
    dependency(strategy_name, "nats", managed, url.as_deref(), NATS_PORT)
}

/// Connections to the Strategy's Postgres, when it has one (a URL in a Secret is assumed on
/// [`POSTGRES_PORT`]).
pub fn postgres(s: &Strategy) -> Option<NetworkPolicyEgressRule> {
    let pg = &s.spec.dependencies.postgres;
    let managed = pg.managed == Some(true);
    if !managed && pg.url.is_none() && pg.secret_ref.is_none() {
        return None;
    }
    let strategy = s.metadata.name.clone().unwrap_or_default();
    let url = pg.url.as_deref();
    Some(dependency(
        &strategy,
        "postgres",
        managed,
        url,
        POSTGRES_PORT,
    ))
}

/// Connections to the Strategy's Ollama, when it has one.
pub fn ollama(s: &Strategy) -> Option<NetworkPolicyEgressRule> {
    let o = s.spec.dependencies.ollama.as_ref()?;
    let strategy = s.metadata.name.clone().unwrap_or_default();
    let url = ollama_url(s);
    let managed = o.managed == Some(true);
    Some(dependency(
        &strategy,
        "ollama",
        managed,
        url.as_deref(),
        OLLAMA_PORT,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::networking::v1::IPBlock;

    #[test]
    fn peers_parse_from_yaml_or_json_and_refuse_what_selects_nothing() {
        let yaml: Peers = "- namespaceSelector: {matchLabels: {team: console}}"
            .parse()
            .unwrap();
        let json: Peers = r#"[{"namespaceSelector": {"matchLabels": {"team": "console"}}}]"#
            .parse()
            .unwrap();
        assert_eq!(yaml, json);
        assert_eq!(yaml.0.len(), 1);
        assert_eq!("".parse::<Peers>().unwrap(), Peers::default());
        assert_eq!("[]".parse::<Peers>().unwrap(), Peers::default());
        let misspelt = "[{namespaceSelecter: {}}]".parse::<Peers>().unwrap_err();
        assert_eq!(
            misspelt.to_string(),
            "peer 0 names no podSelector, namespaceSelector or ipBlock"
        );
        let mixed =
            r#"[{"podSelector": {}}, {"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]"#
                .parse::<Peers>()
                .unwrap_err();
        assert!(mixed.to_string().starts_with("peer 1 combines"), "{mixed}");
        assert!(matches!(
            "{not a list".parse::<Peers>(),
            Err(PeersError::Syntax(_))
        ));
    }

    #[test]
    fn the_defaults_are_kube_system_dns_and_public_addresses() {
        let settings = NetworkPolicySettings::default();
        assert!(settings.api_from.0.is_empty() && settings.metrics_from.0.is_empty());
        let dns = &settings.dns_to.0[0].namespace_selector.as_ref().unwrap();
        assert_eq!(
            dns.match_labels.as_ref().unwrap()["kubernetes.io/metadata.name"],
            "kube-system"
        );
        let v4 = settings.internet_to.0[0].ip_block.as_ref().unwrap();
        assert_eq!(v4.cidr, "0.0.0.0/0");
        let except = v4.except.as_ref().unwrap();
        for private in [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "169.254.0.0/16",
        ] {
            assert!(except.iter().any(|e| e == private), "{private}");
        }
        assert_eq!(
            settings.internet_to.0[1].ip_block.as_ref().unwrap().cidr,
            "::/0"
        );
    }

    #[test]
    fn nobody_allowed_means_no_rule_rather_than_an_open_one() {
        assert_eq!(ingress_from(&[], 8080), None);
        assert_eq!(
            internet(&NetworkPolicySettings::default(), &BTreeSet::new()),
            None
        );
        let peer = NetworkPolicyPeer {
            pod_selector: Some(LabelSelector::default()),
            ..Default::default()
        };
        let rule = ingress_from(std::slice::from_ref(&peer), 8080).unwrap();
        assert_eq!(rule.from, Some(vec![peer]));
    }

    #[test]
    fn a_url_gives_its_port_or_its_schemes() {
        assert_eq!(url_port("https://api.binance.com"), Some(443));
        assert_eq!(url_port("wss://stream.binance.com:9443"), Some(9443));
        assert_eq!(url_port("http://feeds.example/rss"), Some(80));
        assert_eq!(url_port("nats://nats.example:4333"), Some(4333));
        assert_eq!(url_port("nats://nats.example"), None);
        assert_eq!(url_port("not a url"), None);
    }

    #[test]
    fn an_ip_block_is_kept_whole() {
        let peers: Peers =
            r#"[{"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.8/29"]}}]"#
                .parse()
                .unwrap();
        assert_eq!(
            peers.0[0].ip_block,
            Some(IPBlock {
                cidr: "203.0.113.0/24".into(),
                except: Some(vec!["203.0.113.8/29".into()]),
            })
        );
    }
}
