//! The executor and auditor as services of their own (issue 16). A team whose TradingAssistants
//! include an executor and an auditor, and whose Strategy has a database (managed or external),
//! runs them so: its coordinator publishes candles and decisions (`IA_SERVICES=true`) and neither
//! trades nor writes the record, and holds no exchange keys; the executor places the orders (it
//! alone gets the exchange's keys and, in live mode, the exchange's port) and the auditor writes
//! decisions, orders and the audit chain (the database and the audit key). Without both roles, or
//! without a database, nothing changes: the coordinator carries their duties and their pods only
//! announce their presence.

use super::strategy::{audit_key_secret_name, database_env};
use super::{network, secret_env};
use k8s_openapi::api::core::v1::EnvVar;
use protocol::crd::{Strategy, TradingAssistant, TradingMode};
use protocol::Role;
use std::collections::BTreeSet;

/// Whether the Strategy `s` runs its executor and auditor as services: its `team` (the
/// TradingAssistants of its namespace; those that reference it count) has both roles, and it has a
/// database for the auditor's record.
pub fn runs_services(s: &Strategy, team: &[TradingAssistant]) -> bool {
    let name = s.metadata.name.as_deref().unwrap_or_default();
    let has = |role: Role| {
        team.iter()
            .any(|ta| ta.spec.role == role && ta.spec.strategy_ref.name == name)
    };
    has(Role::Executor) && has(Role::Auditor) && !database_env(s).is_empty()
}

/// The roles whose pods read the team's database besides the coordinator: the strategist (the
/// model the coordinator retrains into it) and, when the team runs them as services, the executor
/// and the auditor. The managed Postgres admits these by their role label.
pub fn database_roles(services: bool) -> &'static [Role] {
    if services {
        &[Role::Strategist, Role::Executor, Role::Auditor]
    } else {
        &[Role::Strategist]
    }
}

/// The exchange's API key and secret, by reference to `spec.exchange.credentialsSecretRef`
/// (keys `apiKey`, `apiSecret`); none without one. The coordinator's, or the executor service's.
pub fn exchange_env(s: &Strategy) -> Vec<EnvVar> {
    let Some(secret) = s
        .spec
        .exchange
        .as_ref()
        .and_then(|e| e.credentials_secret_ref.as_ref())
    else {
        return vec![];
    };
    vec![
        secret_env(protocol::env::EXCHANGE_API_KEY, &secret.name, "apiKey"),
        secret_env(
            protocol::env::EXCHANGE_API_SECRET,
            &secret.name,
            "apiSecret",
        ),
    ]
}

/// The exchange's trading port: its `spec.exchange.baseUrl`'s, else HTTPS.
pub fn exchange_port(s: &Strategy) -> i32 {
    let url = s.spec.exchange.as_ref().and_then(|e| e.base_url.as_deref());
    url.and_then(network::url_port)
        .unwrap_or(network::HTTPS_PORT)
}

/// The secrets a service's pod gets beyond the database ([`database_roles`]): the executor the
/// exchange's keys when the Strategy trades live; the auditor the audit chain's key. Nothing for
/// another role.
pub fn service_secrets(role: Role, s: &Strategy) -> Vec<EnvVar> {
    match role {
        Role::Executor if s.spec.mode == TradingMode::Live => exchange_env(s),
        Role::Auditor => vec![secret_env(
            protocol::env::AUDIT_KEY,
            &audit_key_secret_name(s),
            "key",
        )],
        _ => vec![],
    }
}

/// The internet ports a service's pod connects to: the executor the exchange's when the Strategy
/// trades live; nothing else (the candles it fills paper orders at come on the decision stream).
pub fn service_internet_ports(role: Role, s: &Strategy) -> BTreeSet<i32> {
    match role {
        Role::Executor if s.spec.mode == TradingMode::Live => BTreeSet::from([exchange_port(s)]),
        _ => BTreeSet::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::sample;

    fn names(vars: &[EnvVar]) -> Vec<&str> {
        vars.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn services_need_both_roles_and_a_database() {
        let s: Strategy = sample("strategy.yaml").remove(0);
        let team: Vec<TradingAssistant> = sample("team.yaml");
        assert!(
            runs_services(&s, &team),
            "the sample team, with a managed Postgres"
        );
        let without = |role: Role| -> Vec<TradingAssistant> {
            team.iter()
                .filter(|ta| ta.spec.role != role)
                .cloned()
                .collect()
        };
        assert!(!runs_services(&s, &without(Role::Executor)));
        assert!(!runs_services(&s, &without(Role::Auditor)));
        // another Strategy's executor does not count
        let mut elsewhere = team.clone();
        for ta in elsewhere
            .iter_mut()
            .filter(|ta| ta.spec.role == Role::Auditor)
        {
            ta.spec.strategy_ref.name = "other".into();
        }
        assert!(!runs_services(&s, &elsewhere));
        // an external database counts; none does not
        let mut external = s.clone();
        external.spec.dependencies.postgres = serde_json::from_value(serde_json::json!({
            "url": "postgres://ia@db.example/ia"
        }))
        .unwrap();
        assert!(runs_services(&external, &team));
        let mut none = s;
        none.spec.dependencies.postgres = Default::default();
        assert!(!runs_services(&none, &team));
        assert_eq!(database_roles(false), [Role::Strategist]);
    }

    #[test]
    fn only_a_live_executor_holds_the_exchange_and_the_auditor_the_audit_key() {
        let mut s: Strategy = sample("strategy.yaml").remove(0);
        s.spec.exchange = serde_json::from_value(serde_json::json!({
            "baseUrl": "https://exchange.example:8443",
            "credentialsSecretRef": {"name": "binance-keys"}
        }))
        .unwrap();
        // on paper the executor fills from the stream's candles: no keys, no internet
        assert!(service_secrets(Role::Executor, &s).is_empty());
        assert!(service_internet_ports(Role::Executor, &s).is_empty());
        s.spec.mode = TradingMode::Live;
        let executor = service_secrets(Role::Executor, &s);
        assert_eq!(
            names(&executor),
            [
                protocol::env::EXCHANGE_API_KEY,
                protocol::env::EXCHANGE_API_SECRET
            ]
        );
        let reference = executor[0]
            .value_from
            .clone()
            .unwrap()
            .secret_key_ref
            .unwrap();
        assert_eq!(
            (reference.name.as_str(), reference.key.as_str()),
            ("binance-keys", "apiKey")
        );
        assert_eq!(
            service_internet_ports(Role::Executor, &s),
            BTreeSet::from([8443])
        );
        let auditor = service_secrets(Role::Auditor, &s);
        assert_eq!(names(&auditor), [protocol::env::AUDIT_KEY]);
        let reference = auditor[0]
            .value_from
            .clone()
            .unwrap()
            .secret_key_ref
            .unwrap();
        assert_eq!(reference.name, "btc-eth-paper-audit-key");
        assert!(service_internet_ports(Role::Auditor, &s).is_empty());
        for role in Role::DEFAULT_VOTERS {
            assert!(service_secrets(role, &s).is_empty(), "{role}");
        }
    }
}
