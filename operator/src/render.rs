//! `trading-operator render`: every object the operator would create for some custom resources,
//! without a cluster (a dry run for GitOps reviews).

use crate::manifests::Document;
use crate::resources::nats::PublicKeys;
use crate::resources::network::NetworkPolicySettings;
use crate::resources::strategy::Child;
use crate::resources::{assistant, manifest, strategy, BuildError};
use protocol::crd::{ConsensusPolicy, Strategy, TradingAssistant};
use serde_json::Value;

/// Why the resources could not be rendered, naming the object.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A document of one of our kinds does not fit its type: the document (`file#index
    /// (Kind/name)`) and serde's error.
    #[error("{0}: {1}")]
    Decode(String, serde_json::Error),
    /// A Strategy whose ConsensusPolicy is in none of the given files.
    #[error("Strategy {strategy} references ConsensusPolicy {policy}, which is not among the given files")]
    MissingPolicy {
        /// The Strategy's name.
        strategy: String,
        /// The name of the policy it references.
        policy: String,
    },
    /// A child object could not be built from the spec.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// The objects for every Strategy (with its policy) and TradingAssistant in `docs`, in apply order,
/// their NetworkPolicies made with `network`. The Secrets the operator generates in the cluster (a
/// managed Postgres's password, the API token, the audit key, a managed NATS's nkeys) are not
/// rendered, and a managed NATS's configuration names placeholders where the cluster has the
/// public keys of those nkeys: a dry run never makes or prints a credential.
pub fn render(
    docs: &[Document],
    network: &NetworkPolicySettings,
) -> Result<Vec<Value>, RenderError> {
    let of_kind = |kind: &'static str| {
        docs.iter().filter(move |d| {
            d.value["kind"] == kind && crate::manifests::is_ia_agents_resource(&d.value)
        })
    };
    let decode = |d: &Document| -> Result<Value, RenderError> { Ok(d.value.clone()) };
    let mut strategies = Vec::new();
    for d in of_kind("Strategy") {
        strategies.push(
            serde_json::from_value::<Strategy>(decode(d)?)
                .map_err(|e| RenderError::Decode(d.describe(), e))?,
        );
    }
    let mut policies = Vec::new();
    for d in of_kind("ConsensusPolicy") {
        policies.push(
            serde_json::from_value::<ConsensusPolicy>(decode(d)?)
                .map_err(|e| RenderError::Decode(d.describe(), e))?,
        );
    }
    let mut assistants = Vec::new();
    for d in of_kind("TradingAssistant") {
        let mut ta: TradingAssistant =
            serde_json::from_value(decode(d)?).map_err(|e| RenderError::Decode(d.describe(), e))?;
        ta.metadata
            .namespace
            .get_or_insert_with(|| "default".into());
        ta.metadata
            .uid
            .get_or_insert_with(|| "00000000-0000-0000-0000-000000000000".into());
        assistants.push(ta);
    }
    let mut out = Vec::new();
    for s in &mut strategies {
        s.metadata.namespace.get_or_insert_with(|| "default".into());
        s.metadata
            .uid
            .get_or_insert_with(|| "00000000-0000-0000-0000-000000000000".into());
        let wanted = &s.spec.consensus_policy_ref.name;
        let policy = policies
            .iter()
            .find(|p| p.metadata.name.as_ref() == Some(wanted))
            .ok_or_else(|| RenderError::MissingPolicy {
                strategy: s.metadata.name.clone().unwrap_or_default(),
                policy: wanted.clone(),
            })?;
        let team: Vec<TradingAssistant> = assistants
            .iter()
            .filter(|ta| {
                s.metadata.name.as_ref() == Some(&ta.spec.strategy_ref.name)
                    && ta.metadata.namespace == s.metadata.namespace
            })
            .cloned()
            .collect();
        out.extend(
            strategy::objects(s, policy, &team, network, &PublicKeys::placeholders(s))?
                .iter()
                .map(Child::manifest),
        );
    }
    for ta in &assistants {
        let owner_strategy = strategies
            .iter()
            .find(|s| s.metadata.name.as_ref() == Some(&ta.spec.strategy_ref.name));
        let team: Vec<TradingAssistant> = assistants
            .iter()
            .filter(|other| other.metadata.namespace == ta.metadata.namespace)
            .cloned()
            .collect();
        out.push(manifest(&assistant::config_map(ta)?));
        out.push(manifest(&assistant::network_policy(
            ta,
            owner_strategy,
            &team,
            network,
        )));
        out.push(manifest(&assistant::deployment(ta, owner_strategy, &team)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::parse_documents;
    use std::path::Path;

    fn samples() -> Vec<Document> {
        let mut docs = Vec::new();
        for file in ["consensuspolicy.yaml", "strategy.yaml", "team.yaml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../config/samples")
                .join(file);
            docs.extend(crate::manifests::read_documents(&path).unwrap());
        }
        docs
    }

    /// Every container the sample team runs, managed NATS and PostgreSQL included, runs restricted:
    /// non-root, a read-only root filesystem (writable volumes where the image writes), no
    /// capability, no privilege escalation, seccomp `RuntimeDefault` (issue 17).
    #[test]
    fn every_container_of_the_sample_runs_restricted() {
        let objects = render(&samples(), &NetworkPolicySettings::default()).unwrap();
        let mut checked = 0;
        for o in &objects {
            let Some(containers) = o["spec"]["template"]["spec"]["containers"].as_array() else {
                continue;
            };
            let pod = &o["spec"]["template"]["spec"]["securityContext"];
            for c in containers {
                let what = format!(
                    "{} {} container {}",
                    o["kind"], o["metadata"]["name"], c["name"]
                );
                let sc = &c["securityContext"];
                assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
                assert_eq!(
                    sc["capabilities"]["drop"],
                    serde_json::json!(["ALL"]),
                    "{what}"
                );
                assert!(
                    sc["runAsNonRoot"] == true || pod["runAsNonRoot"] == true,
                    "{what}"
                );
                let seccomp = if sc["seccompProfile"].is_null() {
                    &pod["seccompProfile"]
                } else {
                    &sc["seccompProfile"]
                };
                assert_eq!(seccomp["type"], "RuntimeDefault", "{what}");
                checked += 1;
            }
        }
        assert!(
            checked >= 10,
            "the coordinator, seven assistants, NATS and PostgreSQL: {checked}"
        );
    }

    #[test]
    fn the_samples_render_the_whole_team() {
        let objects = render(&samples(), &NetworkPolicySettings::default()).unwrap();
        let count = |kind: &str| objects.iter().filter(|o| o["kind"] == kind).count();
        // coordinator + seven assistants; NATS and Postgres are managed in the sample
        assert_eq!(count("Deployment"), 8);
        assert_eq!(count("StatefulSet"), 2);
        // one for each of those pods: coordinator, seven assistants, NATS and Postgres
        assert_eq!(count("NetworkPolicy"), 10);
        assert_eq!(count("Service"), 3);
        // the coordinator's, seven assistants' params, the managed NATS's configuration
        assert_eq!(count("ConfigMap"), 9);
        assert_eq!(
            count("Secret"),
            0,
            "generated in the cluster, never rendered"
        );
        for o in &objects {
            assert_eq!(
                o["metadata"]["ownerReferences"][0]["controller"], true,
                "{}",
                o["metadata"]["name"]
            );
        }
        let coordinator = objects
            .iter()
            .find(|o| {
                o["kind"] == "Deployment" && o["metadata"]["name"] == "btc-eth-paper-coordinator"
            })
            .unwrap();
        let env = coordinator["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap();
        assert!(env.iter().any(|e| e["name"] == "PGPASSWORD"
            && e["valueFrom"]["secretKeyRef"]["name"] == "btc-eth-paper-postgres"));
        assert!(
            !serde_json::to_string(&objects)
                .unwrap()
                .contains("password\":\""),
            "no secret value is rendered"
        );
    }

    #[test]
    fn the_coordinator_gets_its_team_and_every_assistant_its_strategy() {
        let objects = render(&samples(), &NetworkPolicySettings::default()).unwrap();
        let named = |kind: &str, name: &str| {
            objects
                .iter()
                .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
                .unwrap_or_else(|| panic!("{kind} {name}"))
                .clone()
        };
        let config = named("ConfigMap", "btc-eth-paper-coordinator");
        let team = crate::manifests::parse_documents(
            config["data"]["team.yaml"].as_str().unwrap(),
            Path::new("team.yaml"),
        )
        .unwrap();
        assert_eq!(team.len(), 7, "the sample's seven TradingAssistants");
        let technical = team
            .iter()
            .find(|d| d.value["metadata"]["name"] == "technical-analyst")
            .unwrap();
        assert_eq!(technical.value["spec"]["weight"], 1.2);
        let env_of = |d: &Value| {
            d["spec"]["template"]["spec"]["containers"][0]["env"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| Some((e["name"].as_str()?.to_string(), e["value"].clone())))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let coordinator = named("Deployment", "btc-eth-paper-coordinator");
        assert_eq!(
            env_of(&coordinator)[protocol::env::TEAM_FILE],
            "/etc/ia-agents/team.yaml"
        );
        let hash =
            &coordinator["spec"]["template"]["metadata"]["annotations"][strategy::CONFIG_HASH];
        assert_eq!(hash.as_str().unwrap().len(), 64, "{hash}");
        let risk = named("Deployment", "risk-manager-assistant");
        assert_eq!(
            env_of(&risk)[protocol::env::STRATEGY_FILE],
            "/etc/ia-agents/strategy.yaml"
        );
        let volumes = &risk["spec"]["template"]["spec"]["volumes"];
        assert!(
            volumes
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["configMap"]["name"] == "btc-eth-paper-coordinator"),
            "{volumes}"
        );

        // a change of the team changes the coordinator's configuration hash (and so rolls it)
        let mut docs = samples();
        for d in &mut docs {
            if d.value["metadata"]["name"] == "technical-analyst" {
                d.value["spec"]["weight"] = serde_json::json!(2.0);
            }
        }
        let again = render(&docs, &NetworkPolicySettings::default()).unwrap();
        let rolled = again
            .iter()
            .find(|o| {
                o["kind"] == "Deployment" && o["metadata"]["name"] == "btc-eth-paper-coordinator"
            })
            .unwrap();
        assert_ne!(
            &rolled["spec"]["template"]["metadata"]["annotations"][strategy::CONFIG_HASH],
            hash
        );
    }

    /// Whether `selector` (`matchLabels` and `In` expressions) selects `labels`.
    fn selects(selector: &Value, labels: &Value) -> bool {
        let labels = labels.as_object().cloned().unwrap_or_default();
        let matched = selector["matchLabels"]
            .as_object()
            .into_iter()
            .flatten()
            .all(|(k, v)| labels.get(k) == Some(v));
        let expressions = selector["matchExpressions"].as_array().cloned();
        matched
            && expressions.into_iter().flatten().all(|e| {
                assert_eq!(e["operator"], "In", "{e}");
                let values = e["values"].as_array().unwrap();
                labels
                    .get(e["key"].as_str().unwrap())
                    .is_some_and(|v| values.contains(v))
            })
    }

    /// The pod templates of the rendered workloads, by `Kind/name`.
    fn pods(objects: &[Value]) -> Vec<(String, Value)> {
        objects
            .iter()
            .filter(|o| !o["spec"]["template"]["metadata"]["labels"].is_null())
            .map(|o| {
                let what = format!("{}/{}", o["kind"], o["metadata"]["name"]);
                (what, o["spec"]["template"]["metadata"]["labels"].clone())
            })
            .collect()
    }

    /// The sample team with a managed Ollama pulling a model, and a model for the strategist.
    fn with_ollama() -> Vec<Value> {
        let mut docs = samples();
        for d in &mut docs {
            if d.value["kind"] == "Strategy" {
                d.value["spec"]["dependencies"]["ollama"] =
                    serde_json::json!({"managed": true, "models": ["llama3.2:3b"]});
            }
            if d.value["metadata"]["name"] == "strategist" {
                d.value["spec"]["model"] = serde_json::json!({"name": "llama3.2:3b"});
            }
        }
        render(&docs, &NetworkPolicySettings::default()).unwrap()
    }

    /// Every pod the operator runs is selected by exactly one NetworkPolicy, of both types: the
    /// policies' selectors are the labels the pods carry (issue 17).
    #[test]
    fn every_pod_is_guarded_by_one_policy_of_both_types() {
        let objects = with_ollama();
        let policies: Vec<&Value> = objects
            .iter()
            .filter(|o| o["kind"] == "NetworkPolicy")
            .collect();
        let pods = pods(&objects);
        assert_eq!(
            pods.len(),
            12,
            "8 Deployments, 3 StatefulSets, the pull Job"
        );
        for (what, labels) in &pods {
            let guarding: Vec<_> = policies
                .iter()
                .filter(|p| selects(&p["spec"]["podSelector"], labels))
                .collect();
            assert_eq!(guarding.len(), 1, "{what}: {guarding:?}");
            let types = &guarding[0]["spec"]["policyTypes"];
            assert_eq!(types, &serde_json::json!(["Ingress", "Egress"]), "{what}");
        }
        assert_eq!(policies.len(), pods.len(), "no policy guards nothing");
    }

    /// The pods each policy lets a workload reach, or be reached by, are the team's own: an egress
    /// rule to a dependency selects its pods, and the dependency's ingress admits the pods that
    /// use it and no other.
    #[test]
    fn the_team_reaches_its_dependencies_and_only_their_users_get_in() {
        let objects = with_ollama();
        let pods = pods(&objects);
        let policy = |name: &str| {
            objects
                .iter()
                .find(|o| o["kind"] == "NetworkPolicy" && o["metadata"]["name"] == name)
                .unwrap_or_else(|| panic!("NetworkPolicy {name}"))
                .clone()
        };
        // the workloads whose pods a peer list selects in the same namespace
        let reached = |peers: &Value| -> Vec<String> {
            let mut names: Vec<String> = pods
                .iter()
                .filter(|(_, labels)| {
                    peers.as_array().into_iter().flatten().any(|peer| {
                        peer["namespaceSelector"].is_null() && selects(&peer["podSelector"], labels)
                    })
                })
                .map(|(what, _)| what.replace('"', ""))
                .collect();
            names.sort();
            names
        };
        let egress_on = |p: &Value, port: i64| -> Vec<String> {
            let rules = p["spec"]["egress"].as_array().unwrap().clone();
            rules
                .iter()
                .filter(|r| r["ports"][0]["port"] == port)
                .flat_map(|r| reached(&r["to"]))
                .collect()
        };
        let ingress = |p: &Value| reached(&p["spec"]["ingress"][0]["from"]);
        let coordinator = policy("btc-eth-paper-coordinator");
        assert_eq!(
            egress_on(&coordinator, 4222),
            ["StatefulSet/btc-eth-paper-nats"]
        );
        assert_eq!(
            egress_on(&coordinator, 5432),
            ["StatefulSet/btc-eth-paper-postgres"]
        );
        let strategist = policy("strategist-assistant");
        assert_eq!(
            egress_on(&strategist, 11434),
            ["StatefulSet/btc-eth-paper-ollama"]
        );
        assert!(egress_on(&policy("technical-analyst-assistant"), 11434).is_empty());
        let pull = policy("btc-eth-paper-ollama-pull");
        assert_eq!(
            egress_on(&pull, 11434),
            ["StatefulSet/btc-eth-paper-ollama"]
        );

        let nats = ingress(&policy("btc-eth-paper-nats"));
        assert_eq!(
            nats.len(),
            8,
            "the coordinator and the seven assistants: {nats:?}"
        );
        // the strategist reads the model the coordinator retrains into the database; the sample
        // team's executor and auditor are services of their own, which write the record
        let mut postgres = ingress(&policy("btc-eth-paper-postgres"));
        postgres.sort();
        assert_eq!(
            postgres,
            [
                "Deployment/auditor-assistant",
                "Deployment/btc-eth-paper-coordinator",
                "Deployment/executor-assistant",
                "Deployment/strategist-assistant"
            ]
        );
        for user in ["strategist", "executor", "auditor"] {
            assert_eq!(
                egress_on(&policy(&format!("{user}-assistant")), 5432),
                ["StatefulSet/btc-eth-paper-postgres"],
                "{user}"
            );
        }
        assert!(egress_on(&policy("technical-analyst-assistant"), 5432).is_empty());
        let ollama = ingress(&policy("btc-eth-paper-ollama"));
        assert!(ollama.contains(&"Job/btc-eth-paper-ollama-pull".to_string()));
        assert!(!ollama.contains(&"Deployment/btc-eth-paper-coordinator".to_string()));
    }

    #[test]
    fn a_missing_policy_is_named() {
        let docs: Vec<Document> = samples()
            .into_iter()
            .filter(|d| d.value["kind"] != "ConsensusPolicy")
            .collect();
        let e = render(&docs, &NetworkPolicySettings::default())
            .unwrap_err()
            .to_string();
        assert_eq!(e, "Strategy btc-eth-paper references ConsensusPolicy balanced, which is not among the given files");
    }

    #[test]
    fn paused_scales_the_coordinator_to_zero_and_passwords_survive_reconciles() {
        let docs = samples();
        let mut s: Strategy = serde_json::from_value(
            docs.iter()
                .find(|d| d.value["kind"] == "Strategy")
                .unwrap()
                .value
                .clone(),
        )
        .unwrap();
        let p: ConsensusPolicy = serde_json::from_value(
            docs.iter()
                .find(|d| d.value["kind"] == "ConsensusPolicy")
                .unwrap()
                .value
                .clone(),
        )
        .unwrap();
        s.spec.paused = true;
        let objects: Vec<Value> = strategy::objects(
            &s,
            &p,
            &[],
            &NetworkPolicySettings::default(),
            &PublicKeys::placeholders(&s),
        )
        .unwrap()
        .iter()
        .map(Child::manifest)
        .collect();
        let d = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
        assert_eq!(d["spec"]["replicas"], 0);
        let first = strategy::postgres_secret(&s, None, || "generated-1".into()).unwrap();
        let again =
            strategy::postgres_secret(&s, Some("generated-1".into()), || "generated-2".into())
                .unwrap();
        assert_eq!(first.string_data, again.string_data);
        assert_eq!(first.string_data.unwrap()["password"], "generated-1");
        let _ = parse_documents("", Path::new("x")).unwrap();

        // exchange credentials come from their Secret by reference, never as values
        s.spec
            .exchange
            .get_or_insert_with(Default::default)
            .credentials_secret_ref = Some(protocol::crd::LocalObjectRef {
            name: "binance-keys".into(),
        });
        let objects: Vec<Value> = strategy::objects(
            &s,
            &p,
            &[],
            &NetworkPolicySettings::default(),
            &PublicKeys::placeholders(&s),
        )
        .unwrap()
        .iter()
        .map(Child::manifest)
        .collect();
        let d = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
        let env = d["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap();
        let key = env
            .iter()
            .find(|e| e["name"] == protocol::env::EXCHANGE_API_KEY)
            .unwrap();
        assert_eq!(
            key["valueFrom"]["secretKeyRef"],
            serde_json::json!({"name": "binance-keys", "key": "apiKey"})
        );
        assert!(
            env.iter()
                .all(|e| e.get("value").is_none()
                    || !e["name"].as_str().unwrap().contains("EXCHANGE"))
        );
    }
}
