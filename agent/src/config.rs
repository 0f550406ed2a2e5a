//! The configuration of a team, read from the same `Strategy` and `ConsensusPolicy` manifests the
//! cluster uses, so that a team outside Kubernetes (docker compose, bare processes, the local
//! backtest) runs on exactly what `kubectl apply` would accept.

use crate::consensus::Voter;
use protocol::crd::validate::{ManifestValidator, ValidationError};
use protocol::crd::{ConsensusPolicy, Strategy, TradingAssistant};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Why a manifest file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {error}")]
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why reading failed.
        error: std::io::Error,
    },
    #[error("{path} is not valid YAML: {error}")]
    /// The text is not YAML.
    Yaml {
        /// The file (or `built-in …` / `the command-line options` when not from a file).
        path: PathBuf,
        /// The parser's complaint, with its position.
        error: serde_yaml::Error,
    },
    #[error("{path} holds no {kind} (found {found})")]
    /// No object of the wanted kind (or, for voters, none for the Strategy).
    Missing {
        /// The file (or `built-in …` / `the command-line options` when not from a file).
        path: PathBuf,
        /// The kind looked for (`Strategy`, `ConsensusPolicy`, `TradingAssistant`).
        kind: &'static str,
        /// What the file holds instead (its kinds, comma-separated, or `nothing`); for voters,
        /// which Strategy has none.
        found: String,
    },
    #[error("{path} holds {count} {kind} objects; pass a file with exactly one")]
    /// More than one object of the wanted kind, so which one is meant is unclear.
    Ambiguous {
        /// The file (or `built-in …` / `the command-line options` when not from a file).
        path: PathBuf,
        /// The kind looked for.
        kind: &'static str,
        /// How many objects of that kind there are (two or more).
        count: usize,
    },
    #[error("{path}: {error}")]
    /// The object fails the CRD's schema or validation rules, as the cluster would reject it.
    Invalid {
        /// The file (or `built-in …` / `the command-line options` when not from a file).
        path: PathBuf,
        /// The failing fields.
        error: ValidationError,
    },
    #[error("{path}: {kind} does not match the API: {error}")]
    /// The object passed validation but does not deserialise into the Rust type.
    Decode {
        /// The file (or `built-in …` / `the command-line options` when not from a file).
        path: PathBuf,
        /// The kind being decoded.
        kind: &'static str,
        /// serde's complaint.
        error: serde_json::Error,
    },
    #[error(
        "Strategy {strategy} references ConsensusPolicy {wanted:?}, but {path} holds {found:?}"
    )]
    /// The policy file holds another ConsensusPolicy than the Strategy's `consensusPolicyRef`.
    PolicyMismatch {
        /// The Strategy's name.
        strategy: String,
        /// The policy name the Strategy references.
        wanted: String,
        /// The name of the policy in the file (empty when it has none).
        found: String,
        /// The policy file.
        path: PathBuf,
    },
}

/// A Strategy and the ConsensusPolicy it references, both validated.
#[derive(Debug, Clone)]
pub struct TeamConfig {
    /// The Strategy: symbols, interval, exchange, risk limits, schedules.
    pub strategy: Strategy,
    /// The ConsensusPolicy named by the Strategy's `consensusPolicyRef`.
    pub policy: ConsensusPolicy,
}

impl TeamConfig {
    /// Loads and cross-checks a Strategy file and a ConsensusPolicy file.
    pub fn load(strategy_file: &Path, policy_file: &Path) -> Result<Self, ConfigError> {
        let validator = ManifestValidator::new();
        let strategy: Strategy = load_one(&validator, strategy_file, "Strategy")?;
        let policy: ConsensusPolicy = load_one(&validator, policy_file, "ConsensusPolicy")?;
        let wanted = &strategy.spec.consensus_policy_ref.name;
        let found = policy.metadata.name.clone().unwrap_or_default();
        if *wanted != found {
            return Err(ConfigError::PolicyMismatch {
                strategy: strategy.metadata.name.clone().unwrap_or_default(),
                wanted: wanted.clone(),
                found,
                path: policy_file.to_path_buf(),
            });
        }
        Ok(Self { strategy, policy })
    }

    /// The sample team of `config/samples` (BTCUSDT + ETHUSDT, paper, the `balanced` policy), built
    /// into the binary so the local backtest needs no file.
    pub fn builtin() -> Result<Self, ConfigError> {
        let validator = ManifestValidator::new();
        let strategy = parse_one(
            &validator,
            include_str!("../../config/samples/strategy.yaml"),
            Path::new("built-in config/samples/strategy.yaml"),
            "Strategy",
        )?;
        let policy = parse_one(
            &validator,
            include_str!("../../config/samples/consensuspolicy.yaml"),
            Path::new("built-in config/samples/consensuspolicy.yaml"),
            "ConsensusPolicy",
        )?;
        Ok(Self { strategy, policy })
    }

    /// Applies command-line overrides (JSON merged into each object's `spec`) and validates the
    /// result exactly as the files were validated, so `--threshold 2` fails naming `spec.threshold`.
    pub fn with_overrides(
        self,
        strategy_spec: Value,
        policy_spec: Value,
    ) -> Result<Self, ConfigError> {
        fn patch<T: DeserializeOwned>(
            validator: &ManifestValidator,
            mut object: Value,
            spec: Value,
            source: &str,
            kind: &'static str,
        ) -> Result<T, ConfigError> {
            merge(&mut object, serde_json::json!({ "spec": spec }));
            validated(validator, object, Path::new(source), kind)
        }
        let validator = ManifestValidator::new();
        let strategy = patch(
            &validator,
            serde_json::to_value(&self.strategy).expect("a Strategy serialises"),
            strategy_spec,
            "the command-line options",
            "Strategy",
        )?;
        let policy = patch(
            &validator,
            serde_json::to_value(&self.policy).expect("a ConsensusPolicy serialises"),
            policy_spec,
            "the command-line options",
            "ConsensusPolicy",
        )?;
        Ok(Self { strategy, policy })
    }
}

/// The voters a manifest file declares for `strategy`: every reasoning TradingAssistant whose
/// `strategyRef` names it, at its `spec.weight` (each validated against the CRD). This is the team:
/// the coordinator counts no one else, whatever announces itself on the bus.
pub fn load_team(path: &Path, strategy: &str) -> Result<Vec<Voter>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let docs = protocol::yaml::documents(&text).map_err(|e| ConfigError::Yaml {
        path: path.to_path_buf(),
        error: e.error,
    })?;
    let validator = ManifestValidator::new();
    let mut voters = Vec::new();
    for doc in docs
        .into_iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("TradingAssistant"))
    {
        let ta: TradingAssistant = validated(&validator, doc, path, "TradingAssistant")?;
        if ta.spec.strategy_ref.name == strategy && ta.spec.role.reasons() {
            voters.push(Voter {
                assistant: ta.metadata.name.unwrap_or_default(),
                role: ta.spec.role,
                weight: ta.spec.weight,
            });
        }
    }
    if voters.is_empty() {
        return Err(ConfigError::Missing {
            path: path.to_path_buf(),
            kind: "TradingAssistant",
            found: format!("no voter with strategyRef {strategy}"),
        });
    }
    Ok(voters)
}

/// Reads the single object of `kind` in a (possibly multi-document) YAML file, validates it against
/// the CRD and decodes it with defaults applied.
pub fn load_one<T: DeserializeOwned>(
    validator: &ManifestValidator,
    path: &Path,
    kind: &'static str,
) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse_one(validator, &text, path, kind)
}

/// As [`load_one`], from text; `path` names the source in errors.
pub fn parse_one<T: DeserializeOwned>(
    validator: &ManifestValidator,
    text: &str,
    path: &Path,
    kind: &'static str,
) -> Result<T, ConfigError> {
    let docs = protocol::yaml::documents(text).map_err(|e| ConfigError::Yaml {
        path: path.to_path_buf(),
        error: e.error,
    })?;
    let found = docs
        .iter()
        .map(|d| {
            d.get("kind")
                .and_then(Value::as_str)
                .unwrap_or("an object without kind")
                .to_string()
        })
        .collect::<Vec<_>>();
    let mut matching: Vec<Value> = docs
        .into_iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some(kind))
        .collect();
    let doc = match matching.len() {
        0 => {
            return Err(ConfigError::Missing {
                path: path.to_path_buf(),
                kind,
                found: if found.is_empty() {
                    "nothing".into()
                } else {
                    found.join(", ")
                },
            })
        }
        1 => matching.remove(0),
        count => {
            return Err(ConfigError::Ambiguous {
                path: path.to_path_buf(),
                kind,
                count,
            })
        }
    };
    validated(validator, doc, path, kind)
}

fn validated<T: DeserializeOwned>(
    validator: &ManifestValidator,
    doc: Value,
    path: &Path,
    kind: &'static str,
) -> Result<T, ConfigError> {
    validator
        .validate(&doc, None)
        .map_err(|error| ConfigError::Invalid {
            path: path.to_path_buf(),
            error,
        })?;
    serde_json::from_value(doc).map_err(|error| ConfigError::Decode {
        path: path.to_path_buf(),
        kind,
        error,
    })
}

/// Merges `patch` into the object `target` (objects recursively; anything else replaces).
fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::stream::arbitrary::{corrupt, json, mutate};
    use proptest::prelude::{any, prop, ProptestConfig, TestCaseError};
    use proptest::{prop_assert, proptest};
    use std::io::Write;

    fn samples() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/samples")
    }

    fn temp_file(contents: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(contents.as_bytes()).unwrap();
        f
    }

    #[test]
    fn the_team_file_declares_the_voters_at_their_weights() {
        let voters = load_team(&samples().join("team.yaml"), "btc-eth-paper").unwrap();
        let names: Vec<&str> = voters.iter().map(|v| v.assistant.as_str()).collect();
        assert_eq!(voters.len(), 5, "{names:?}");
        assert!(!names.contains(&"executor") && !names.contains(&"auditor"));
        let technical = voters
            .iter()
            .find(|v| v.assistant == "technical-analyst")
            .unwrap();
        assert_eq!(technical.weight, 1.2);
        let e = load_team(&samples().join("team.yaml"), "other").unwrap_err();
        assert!(e.to_string().contains("strategyRef other"), "{e}");
    }

    #[test]
    fn loads_the_samples_with_defaults_applied() {
        let team = TeamConfig::load(
            &samples().join("strategy.yaml"),
            &samples().join("consensuspolicy.yaml"),
        )
        .unwrap();
        assert_eq!(team.strategy.spec.symbols, ["BTCUSDT", "ETHUSDT"]);
        assert_eq!(team.policy.spec.threshold, 0.8);
        // Absent from the sample: filled in by the API's defaults.
        assert!(team.strategy.spec.dependencies.ollama.is_none());
        assert_eq!(team.strategy.spec.risk.max_open_positions, 2);
    }

    #[test]
    fn out_of_range_threshold_names_file_and_field() {
        let f = temp_file(
            "apiVersion: trading.ia-agents.dev/v1alpha1\nkind: ConsensusPolicy\nmetadata: {name: balanced}\nspec: {threshold: 2.0}\n",
        );
        let err = TeamConfig::load(&samples().join("strategy.yaml"), f.path()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&f.path().display().to_string()) && msg.contains("spec.threshold"),
            "{msg}"
        );
    }

    #[test]
    fn malformed_yaml_and_wrong_kind_name_the_file() {
        let f = temp_file("kind: Strategy\nspec: [unclosed\n");
        let err = TeamConfig::load(f.path(), &samples().join("consensuspolicy.yaml")).unwrap_err();
        assert!(matches!(err, ConfigError::Yaml { .. }), "{err}");

        let err = TeamConfig::load(
            &samples().join("team.yaml"),
            &samples().join("consensuspolicy.yaml"),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("holds no Strategy (found TradingAssistant"),
            "{err}"
        );
    }

    #[test]
    fn a_strategy_must_reference_the_given_policy() {
        let f = temp_file(
            "apiVersion: trading.ia-agents.dev/v1alpha1\nkind: ConsensusPolicy\nmetadata: {name: other}\nspec: {}\n",
        );
        let err = TeamConfig::load(&samples().join("strategy.yaml"), f.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("references ConsensusPolicy \"balanced\""),
            "{err}"
        );
    }

    thread_local! {
        /// One validator per test thread: building one compiles every schema.
        static VALIDATOR: ManifestValidator = ManifestValidator::new();
    }

    /// Each sample manifest, with its kind.
    fn arb_sample() -> impl proptest::strategy::Strategy<Value = (Value, &'static str)> {
        let docs: Vec<(Value, &'static str)> = [
            (
                include_str!("../../config/samples/strategy.yaml"),
                "Strategy",
            ),
            (
                include_str!("../../config/samples/consensuspolicy.yaml"),
                "ConsensusPolicy",
            ),
            (
                include_str!("../../config/samples/team.yaml"),
                "TradingAssistant",
            ),
        ]
        .into_iter()
        .map(|(text, kind)| (protocol::yaml::documents(text).unwrap().remove(0), kind))
        .collect();
        prop::sample::select(docs)
    }

    /// What reading a manifest must guarantee: no panic, and nothing the validator accepts that
    /// the typed decoding then refuses.
    fn check_total(text: &str, kind: &'static str) -> Result<(), TestCaseError> {
        let path = Path::new("test.yaml");
        let outcome = VALIDATOR.with(|v| match kind {
            "Strategy" => parse_one::<Strategy>(v, text, path, kind).map(drop),
            "ConsensusPolicy" => parse_one::<ConsensusPolicy>(v, text, path, kind).map(drop),
            _ => parse_one::<TradingAssistant>(v, text, path, kind).map(drop),
        });
        if let Err(ConfigError::Decode { error, .. }) = outcome {
            prop_assert!(
                false,
                "valid by the CRD but not decodable: {}\n{}",
                error,
                text
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// A sample manifest with one field replaced by any JSON value or removed, or its text
        /// corrupted: the typed manifest or an error, never a panic.
        #[test]
        fn mutated_manifests_load_or_fail_cleanly((mut doc, kind) in arb_sample(), node in any::<usize>(), by in prop::option::of(json()), flip in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
            let text = serde_yaml::to_string(&doc).unwrap();
            check_total(&corrupt(&text, flip, byte, cut), kind)?;
            mutate(&mut doc, node, by);
            check_total(&serde_yaml::to_string(&doc).unwrap(), kind)?;
        }
    }
}

#[cfg(test)]
mod override_tests {
    use super::*;

    #[test]
    fn the_builtin_team_is_the_sample() {
        let team = TeamConfig::builtin().unwrap();
        assert_eq!(team.strategy.spec.symbols, vec!["BTCUSDT", "ETHUSDT"]);
        assert_eq!(team.policy.metadata.name.as_deref(), Some("balanced"));
    }

    #[test]
    fn overrides_are_validated_like_manifests() {
        let team = TeamConfig::builtin().unwrap();
        let ok = team
            .clone()
            .with_overrides(
                serde_json::json!({"capital": 500.0}),
                serde_json::json!({"threshold": 0.7}),
            )
            .unwrap();
        assert_eq!(
            (ok.strategy.spec.capital, ok.policy.spec.threshold),
            (500.0, 0.7)
        );
        let error = team
            .with_overrides(serde_json::json!({}), serde_json::json!({"threshold": 2.0}))
            .unwrap_err()
            .to_string();
        assert!(error.contains("spec.threshold"), "{error}");
    }
}
