//! A team's identities on NATS (issue 17; the model is [`protocol::nats_auth`]): for a managed
//! NATS, one nkey per identity generated once into Secret `<strategy>-nats-credentials` and the
//! server's configuration (each identity's public key and permissions, JetStream, the listen
//! address) in ConfigMap `<strategy>-nats`; for an external NATS, the seeds of the Secret named by
//! `spec.dependencies.nats.credentialsSecretRef`. Either way each pod mounts its own identity's
//! seed only (`items:` selecting its key) and reads it from [`protocol::env::NATS_NKEY_FILE`].
//!
//! The server's configuration is a ConfigMap, not a Secret: it holds public keys and permissions,
//! nothing secret, and the operator applies it on every reconcile (server-side apply: patch), a
//! verb it is not granted on Secrets, which it only gets and creates.

use super::strategy::{config_hash, meta, name};
use super::{child_name, BuildError};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapKeySelector, ConfigMapVolumeSource, EnvVar, EnvVarSource, KeyToPath,
    PodSpec, Secret, SecretVolumeSource, Volume, VolumeMount,
};
use k8s_openapi::ByteString;
use protocol::crd::Strategy;
use protocol::nats_auth::{authorization, team_grants, Grant};
use protocol::subjects::Subjects;
use std::collections::BTreeMap;

/// The port a managed NATS listens on.
pub const PORT: i32 = 4222;
/// Where a managed NATS's configuration is mounted (its ConfigMap, read-only).
pub const CONFIG_DIR: &str = "/etc/nats";
/// The configuration's file (and ConfigMap key) in [`CONFIG_DIR`].
pub const CONFIG_FILE: &str = "nats.conf";

/// The item of the managed NATS's ConfigMap that holds the coordinator's public key (not a
/// secret): the executor and the auditor check the decisions' signatures with it.
pub const COORDINATOR_KEY_ITEM: &str = "coordinator.pub";

/// The item that holds the executor's public key: the auditor checks the order reports with it.
pub const EXECUTOR_KEY_ITEM: &str = "executor.pub";
/// Where a managed NATS keeps its JetStream data (its volume).
pub const STORE_DIR: &str = "/data";
/// Where a pod's own seed is mounted (read-only), as `<identity>.nk`.
pub const NKEY_DIR: &str = "/etc/ia-agents-nats";
/// The pod volume holding its seed.
const NKEY_VOLUME: &str = "nats-nkey";
/// Mode of the mounted seed: owner and group (the pods' `fsGroup`) may read it, nobody else.
const NKEY_MODE: i32 = 0o440;

/// The Secret holding a managed NATS's generated seeds, one key per identity.
pub fn credentials_secret_name(strategy: &str) -> String {
    child_name(strategy, "nats-credentials")
}

/// The ConfigMap holding a managed NATS's configuration ([`CONFIG_FILE`]).
pub fn config_name(strategy: &str) -> String {
    child_name(strategy, "nats")
}

/// The Secret a pod of Strategy `strategy_name` takes its seed from: the generated one for a managed
/// NATS (also while the Strategy is not found: NATS is managed by default), the referenced one for
/// an external NATS, none for an external NATS without credentials.
pub fn credentials_source(s: Option<&Strategy>, strategy_name: &str) -> Option<String> {
    match s.map(|s| &s.spec.dependencies.nats) {
        None => Some(credentials_secret_name(strategy_name)),
        Some(n) if n.is_managed() => Some(credentials_secret_name(strategy_name)),
        Some(n) => n.credentials_secret_ref.as_ref().map(|r| r.name.clone()),
    }
}

/// The path of `identity`'s seed in its pod.
pub fn nkey_file(identity: &str) -> String {
    format!("{NKEY_DIR}/{identity}.nk")
}

/// Gives `pod` (its first container) the seed of `identity` from Secret `secret`: a volume with that
/// key only, mounted read-only under [`NKEY_DIR`], and [`protocol::env::NATS_NKEY_FILE`] naming it.
pub fn mount_identity(pod: &mut PodSpec, secret: &str, identity: &str) {
    pod.volumes.get_or_insert_with(Vec::new).push(Volume {
        name: NKEY_VOLUME.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.into()),
            items: Some(vec![KeyToPath {
                key: identity.into(),
                path: format!("{identity}.nk"),
                ..Default::default()
            }]),
            default_mode: Some(NKEY_MODE),
            ..Default::default()
        }),
        ..Default::default()
    });
    if let Some(container) = pod.containers.first_mut() {
        container
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .push(VolumeMount {
                name: NKEY_VOLUME.into(),
                mount_path: NKEY_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            });
        container.env.get_or_insert_with(Vec::new).push(EnvVar {
            name: protocol::env::NATS_NKEY_FILE.into(),
            value: Some(nkey_file(identity)),
            ..Default::default()
        });
    }
}

/// Gives the executor's and the auditor's pod (its first container) their peers' public keys
/// from the managed NATS's ConfigMap: the coordinator's ([`protocol::env::COORDINATOR_KEY`]), and
/// for the auditor the executor's ([`protocol::env::EXECUTOR_KEY`]), so that they take only what
/// their peers signed (`agent::bus::signing`). Optional references: with an external NATS there is
/// no such ConfigMap, and the services take messages unsigned, saying so at start.
pub fn peer_keys(pod: &mut PodSpec, strategy: &str, role: protocol::Role) {
    let wanted: &[(&str, &str)] = match role {
        protocol::Role::Executor => &[(protocol::env::COORDINATOR_KEY, COORDINATOR_KEY_ITEM)],
        protocol::Role::Auditor => &[
            (protocol::env::COORDINATOR_KEY, COORDINATOR_KEY_ITEM),
            (protocol::env::EXECUTOR_KEY, EXECUTOR_KEY_ITEM),
        ],
        _ => return,
    };
    let Some(container) = pod.containers.first_mut() else {
        return;
    };
    for (variable, item) in wanted {
        container.env.get_or_insert_with(Vec::new).push(EnvVar {
            name: (*variable).into(),
            value_from: Some(EnvVarSource {
                config_map_key_ref: Some(ConfigMapKeySelector {
                    name: config_name(strategy),
                    key: (*item).into(),
                    optional: Some(true),
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
}

/// The subjects of the Strategy's team, or why its name or namespace cannot make them.
fn subjects(s: &Strategy, object: &str) -> Result<Subjects, BuildError> {
    let namespace = s.metadata.namespace.as_deref().unwrap_or("default");
    Subjects::new(namespace, &name(s)).map_err(|e| BuildError::Invalid {
        kind: "ConfigMap",
        name: object.into(),
        reason: e.to_string(),
    })
}

/// The identities of a team: every component whatever its policy ([`team_grants`]).
fn identities(s: &Strategy) -> Result<Vec<Grant>, BuildError> {
    Ok(team_grants(&subjects(s, &config_name(&name(s)))?))
}

/// A fresh user nkey seed (`SU…`) for every identity of the team.
pub fn generate_seeds(s: &Strategy) -> Result<BTreeMap<String, String>, BuildError> {
    identities(s)?
        .into_iter()
        .map(|grant| {
            let seed = nkeys::KeyPair::new_user()
                .seed()
                .map_err(|e| BuildError::Invalid {
                    kind: "Secret",
                    name: credentials_secret_name(&name(s)),
                    reason: format!("data.{}: encoding a new nkey seed: {e}", grant.identity),
                })?;
            Ok((grant.identity, seed))
        })
        .collect()
}

/// The managed NATS's credentials Secret with `seeds` (from [`generate_seeds`]; created once,
/// never changed: a new seed would lock out the pod still holding the old one).
pub fn credentials_secret(s: &Strategy, seeds: BTreeMap<String, String>) -> Secret {
    Secret {
        metadata: meta(s, &credentials_secret_name(&name(s)), "nats"),
        type_: Some("Opaque".into()),
        data: Some(
            seeds
                .into_iter()
                .map(|(identity, seed)| (identity, ByteString(seed.into_bytes())))
                .collect(),
        ),
        ..Default::default()
    }
}

/// The values of a Secret by key, as text (`data`, else `stringData` where nothing converted it).
pub fn secret_values(secret: &Secret) -> BTreeMap<String, String> {
    let mut values: BTreeMap<String, String> = secret.string_data.clone().unwrap_or_default();
    for (key, bytes) in secret.data.iter().flatten() {
        values.insert(
            key.clone(),
            String::from_utf8_lossy(&bytes.0).trim().to_string(),
        );
    }
    values
}

/// The public keys of a team's identities, by identity: what the server's configuration names (the
/// seeds stay in their Secret).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublicKeys(BTreeMap<String, String>);

impl PublicKeys {
    /// The public keys of the seeds of Secret `secret` (`seeds` its values by key), one for every
    /// identity of the team; a missing or malformed seed is named (never shown).
    pub fn from_seeds(
        s: &Strategy,
        secret: &str,
        seeds: &BTreeMap<String, String>,
    ) -> Result<Self, BuildError> {
        let invalid = |identity: &str, reason: &str| BuildError::Invalid {
            kind: "Secret",
            name: secret.into(),
            reason: format!("data.{identity}: {reason}"),
        };
        let mut keys = BTreeMap::new();
        for grant in identities(s)? {
            let identity = grant.identity;
            let seed = seeds
                .get(&identity)
                .ok_or_else(|| invalid(&identity, "missing: every identity needs its seed"))?;
            let pair = nkeys::KeyPair::from_seed(seed.trim())
                .map_err(|_| invalid(&identity, "not an nkey seed"))?;
            if !pair.public_key().starts_with('U') {
                return Err(invalid(&identity, "not a user nkey seed (SU…)"));
            }
            keys.insert(identity, pair.public_key());
        }
        Ok(Self(keys))
    }

    /// Placeholders for a dry run (`trading-operator render`): in a cluster the keys are those of
    /// the seeds generated into the Strategy's credentials Secret, which a dry run never has.
    pub fn placeholders(s: &Strategy) -> Self {
        let secret = credentials_secret_name(&name(s));
        let keys = identities(s)
            .unwrap_or_default()
            .into_iter()
            .map(|g| {
                let key = format!("<public key of the seed {} in Secret {secret}>", g.identity);
                (g.identity, key)
            })
            .collect();
        Self(keys)
    }

    /// The public key of `identity`.
    pub fn get(&self, identity: &str) -> Option<&str> {
        self.0.get(identity).map(String::as_str)
    }
}

/// The managed NATS's configuration: where it listens, JetStream under [`STORE_DIR`], and every
/// identity of the team once, with its public key and permissions.
pub fn server_config(s: &Strategy, keys: &PublicKeys) -> Result<ConfigMap, BuildError> {
    let object = config_name(&name(s));
    let keyed = identities(s)?
        .into_iter()
        .map(|grant| {
            let key = keys
                .get(&grant.identity)
                .ok_or_else(|| BuildError::Invalid {
                    kind: "ConfigMap",
                    name: object.clone(),
                    reason: format!("data.{CONFIG_FILE}: no public key for {}", grant.identity),
                })?;
            Ok((grant, key.to_string()))
        })
        .collect::<Result<Vec<_>, BuildError>>()?;
    let text = format!(
        "# Written by trading-operator for Strategy {}: one nkey identity per component of the\n\
         # team, each allowed only its own subjects; the seeds are in Secret {}.\n\
         listen: \"0.0.0.0:{PORT}\"\n\
         jetstream {{\n  store_dir: \"{STORE_DIR}\"\n}}\n{}",
        name(s),
        credentials_secret_name(&name(s)),
        authorization(&keyed)
    );
    let mut data = BTreeMap::from([(CONFIG_FILE.to_string(), text)]);
    for (item, identity) in [
        (COORDINATOR_KEY_ITEM, protocol::nats_auth::COORDINATOR),
        (EXECUTOR_KEY_ITEM, protocol::nats_auth::EXECUTOR),
    ] {
        if let Some(key) = keys.get(identity) {
            data.insert(item.to_string(), key.to_string());
        }
    }
    Ok(ConfigMap {
        metadata: meta(s, &object, "nats"),
        data: Some(data),
        ..Default::default()
    })
}

/// The hash of a managed NATS's configuration, for its pod template (a change rolls the server,
/// which reads it at start).
pub fn server_config_hash(config: &ConfigMap) -> String {
    config_hash(config.data.as_ref())
}

/// The managed NATS's configuration volume (its ConfigMap, read-only).
pub fn config_volume(strategy: &str) -> Volume {
    Volume {
        name: "config".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_name(strategy),
            items: Some(vec![KeyToPath {
                key: CONFIG_FILE.into(),
                path: CONFIG_FILE.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::nats_auth::{COORDINATOR, EXECUTOR, OPERATOR};
    use protocol::Role;

    fn strategy() -> Strategy {
        let mut s: Strategy = serde_yaml::from_str(
            "apiVersion: trading.ia-agents.dev/v1alpha1\nkind: Strategy\n\
             metadata: {name: btc, namespace: trading, uid: u1}\n\
             spec: {symbols: [BTCUSDT], consensusPolicyRef: {name: p}}\n",
        )
        .unwrap();
        s.metadata.namespace = Some("trading".into());
        s
    }

    #[test]
    fn the_configuration_lists_every_identity_once_with_its_permissions_and_no_seed() {
        let s = strategy();
        let seeds = generate_seeds(&s).unwrap();
        assert_eq!(seeds.len(), 9, "{:?}", seeds.keys());
        assert!(seeds.values().all(|seed| seed.starts_with("SU")));
        let secret = credentials_secret(&s, seeds.clone());
        assert_eq!(
            secret.metadata.name.as_deref(),
            Some("btc-nats-credentials")
        );
        assert_eq!(secret_values(&secret), seeds);
        let keys = PublicKeys::from_seeds(&s, "btc-nats-credentials", &seeds).unwrap();
        let config = server_config(&s, &keys).unwrap();
        let text = &config.data.as_ref().unwrap()[CONFIG_FILE];
        assert!(text.contains("listen: \"0.0.0.0:4222\""), "{text}");
        assert!(
            text.contains("jetstream {\n  store_dir: \"/data\"\n}"),
            "{text}"
        );
        for grant in team_grants(&Subjects::new("trading", "btc").unwrap()) {
            let key = keys.get(&grant.identity).unwrap();
            assert_eq!(text.matches(key).count(), 1, "{}", grant.identity);
            assert_eq!(
                text.matches(&format!("    # {}\n", grant.identity)).count(),
                1,
                "{}",
                grant.identity
            );
            let entry = text.lines().find(|l| l.contains(key)).unwrap();
            for subject in grant.publish.iter().chain(&grant.subscribe) {
                assert!(entry.contains(&format!("\"{subject}\"")), "{subject}");
            }
        }
        for seed in seeds.values() {
            assert!(!text.contains(seed.as_str()), "a seed in the ConfigMap");
        }
        assert_eq!(server_config_hash(&config).len(), 64);
        // and the two public keys the services check signatures with (not secrets)
        let data = config.data.as_ref().unwrap();
        assert_eq!(data[COORDINATOR_KEY_ITEM], keys.get(COORDINATOR).unwrap());
        assert_eq!(data[EXECUTOR_KEY_ITEM], keys.get(EXECUTOR).unwrap());
    }

    #[test]
    fn the_services_get_their_peers_public_keys_and_the_voters_none() {
        let wanted = |role: Role| {
            let mut pod = PodSpec {
                containers: vec![Default::default()],
                ..Default::default()
            };
            peer_keys(&mut pod, "btc", role);
            let env = pod.containers[0].env.clone().unwrap_or_default();
            env.into_iter()
                .map(|e| {
                    let r = e.value_from.unwrap().config_map_key_ref.unwrap();
                    assert_eq!((r.name.as_str(), r.optional), ("btc-nats", Some(true)));
                    (e.name, r.key)
                })
                .collect::<Vec<_>>()
        };
        let coordinator = (
            protocol::env::COORDINATOR_KEY.to_string(),
            COORDINATOR_KEY_ITEM.to_string(),
        );
        let executor = (
            protocol::env::EXECUTOR_KEY.to_string(),
            EXECUTOR_KEY_ITEM.to_string(),
        );
        assert_eq!(wanted(Role::Executor), std::slice::from_ref(&coordinator));
        assert_eq!(wanted(Role::Auditor), [coordinator, executor]);
        assert!(wanted(Role::Strategist).is_empty());
    }

    #[test]
    fn a_missing_or_malformed_seed_is_named_and_never_shown() {
        let s = strategy();
        let mut seeds = generate_seeds(&s).unwrap();
        seeds.remove(OPERATOR);
        let e = PublicKeys::from_seeds(&s, "ids", &seeds).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Secret ids: data.operator: missing: every identity needs its seed"
        );
        seeds.insert(OPERATOR.into(), "SUnot-a-seed-at-all".into());
        let e = PublicKeys::from_seeds(&s, "ids", &seeds).unwrap_err();
        assert_eq!(e.to_string(), "Secret ids: data.operator: not an nkey seed");
        let account = nkeys::KeyPair::new_account().seed().unwrap();
        seeds.insert(OPERATOR.into(), account.clone());
        let e = PublicKeys::from_seeds(&s, "ids", &seeds).unwrap_err();
        assert!(!e.to_string().contains(&account), "{e}");
        assert!(e.to_string().contains("not a user nkey seed"), "{e}");
    }

    #[test]
    fn a_pod_mounts_only_its_own_seed() {
        let mut pod = PodSpec {
            containers: vec![Default::default()],
            ..Default::default()
        };
        mount_identity(&mut pod, "btc-nats-credentials", "riskManager");
        let volume = &pod.volumes.as_ref().unwrap()[0];
        let source = volume.secret.as_ref().unwrap();
        assert_eq!(source.secret_name.as_deref(), Some("btc-nats-credentials"));
        let items = source.items.as_ref().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(
            (items[0].key.as_str(), items[0].path.as_str()),
            ("riskManager", "riskManager.nk")
        );
        assert_eq!(source.default_mode, Some(0o440));
        let container = &pod.containers[0];
        let mount = &container.volume_mounts.as_ref().unwrap()[0];
        assert_eq!(
            (mount.mount_path.as_str(), mount.read_only),
            (NKEY_DIR, Some(true))
        );
        let env = &container.env.as_ref().unwrap()[0];
        assert_eq!(env.name, protocol::env::NATS_NKEY_FILE);
        assert_eq!(
            env.value.as_deref(),
            Some("/etc/ia-agents-nats/riskManager.nk")
        );
    }

    #[test]
    fn the_seed_comes_from_the_generated_or_the_referenced_secret() {
        let mut s = strategy();
        assert_eq!(
            credentials_source(None, "btc").as_deref(),
            Some("btc-nats-credentials"),
            "managed by default while the Strategy is not found"
        );
        assert_eq!(
            credentials_source(Some(&s), "btc").as_deref(),
            Some("btc-nats-credentials")
        );
        s.spec.dependencies.nats = serde_json::from_value(serde_json::json!({
            "url": "nats://nats.infra:4222"
        }))
        .unwrap();
        assert_eq!(credentials_source(Some(&s), "btc"), None);
        s.spec.dependencies.nats.credentials_secret_ref =
            Some(protocol::crd::LocalObjectRef::new("team-ids"));
        assert_eq!(
            credentials_source(Some(&s), "btc").as_deref(),
            Some("team-ids")
        );
        let placeholders = PublicKeys::placeholders(&s);
        assert!(placeholders
            .get(COORDINATOR)
            .unwrap()
            .contains("btc-nats-credentials"));
        assert!(placeholders
            .get(protocol::nats_auth::identity_of(Role::Strategist))
            .is_some());
    }
}
