//! Offline validation of ia-agents manifests, the way an API server with our CRDs installed
//! validates them: the structural OpenAPI schema (types, enums, ranges, patterns, required fields,
//! unknown fields rejected as with `kubectl`'s strict field validation) and then the CEL rules
//! (`x-kubernetes-validations`) evaluated by a real CEL interpreter with Kubernetes' extensions.
//!
//! Used by the manifest tests, by `trading-operator validate` for GitOps pipelines, and by the agent
//! when it reads Strategy / ConsensusPolicy files outside a cluster.

use super::all_crds;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;
use std::fmt;

/// One violated constraint, with the field it concerns (`spec.threshold`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path of the field at fault, from the object's root (`spec.risk.stopLoss`, `spec.symbols[0]`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Why a manifest was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    /// Not a JSON object, or no string `apiVersion` or `kind`.
    #[error("manifest is not an object with apiVersion and kind")]
    NotAnObject,
    /// A kind or apiVersion these CRDs do not serve (another group, version or kind).
    #[error("unknown kind {kind:?} in {api_version:?}: ia-agents serves ConsensusPolicy, Strategy and TradingAssistant in trading.ia-agents.dev/v1alpha1")]
    UnknownKind {
        /// The manifest's `apiVersion`.
        api_version: String,
        /// The manifest's `kind`.
        kind: String,
    },
    /// One of our kinds that breaks a metadata rule, its schema or a CEL rule.
    #[error("{kind} {name:?} is invalid: {}", join(.errors))]
    Invalid {
        /// The manifest's `kind`.
        kind: String,
        /// `metadata.name`, empty when the manifest has none.
        name: String,
        /// Every violation found, not only the first (at least one).
        errors: Vec<FieldError>,
    },
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl ValidationError {
    /// The individual field errors (empty for the structural errors that concern the whole manifest).
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            ValidationError::Invalid { errors, .. } => errors,
            _ => &[],
        }
    }
}

/// Validates manifests against the CRDs of this build.
pub struct ManifestValidator {
    kinds: Vec<KindSchema>,
    cel: kube_cel::Validator,
}

struct KindSchema {
    api_version: String,
    kind: String,
    /// The openAPIV3Schema exactly as generated (what the CEL rules are walked over).
    openapi: Value,
    /// The same schema made strict for JSON-Schema validation (unknown fields rejected, nullable honoured).
    strict: jsonschema::Validator,
}

impl Default for ManifestValidator {
    fn default() -> Self {
        Self::new()
    }
}

impl ManifestValidator {
    /// A validator for the CRDs generated from this crate's types.
    pub fn new() -> Self {
        Self::for_crds(&all_crds())
    }

    /// A validator for the given CRDs (e.g. read back from `crds/*.yaml`).
    ///
    /// Panics only if a CRD carries a schema that is not valid JSON Schema, which the tests of the
    /// generated CRDs rule out.
    pub fn for_crds(crds: &[CustomResourceDefinition]) -> Self {
        let kinds = crds
            .iter()
            .flat_map(|crd| {
                crd.spec.versions.iter().filter_map(move |v| {
                    let schema = v.schema.as_ref()?.open_api_v3_schema.as_ref()?;
                    let openapi = serde_json::to_value(schema).expect("CRD schema serialises");
                    let mut strict_schema = openapi.clone();
                    make_strict(&mut strict_schema, true);
                    let strict = jsonschema::draft4::new(&strict_schema).unwrap_or_else(|e| {
                        panic!("CRD {} has an invalid schema: {e}", crd.spec.names.kind)
                    });
                    Some(KindSchema {
                        api_version: format!("{}/{}", crd.spec.group, v.name),
                        kind: crd.spec.names.kind.clone(),
                        openapi,
                        strict,
                    })
                })
            })
            .collect();
        Self {
            kinds,
            cel: kube_cel::Validator::new(),
        }
    }

    /// Whether one of the CRDs defines `kind` (in any version).
    pub fn serves_kind(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k.kind == kind)
    }

    /// Validates one manifest (as parsed from YAML or JSON). `old` is the previous version of the
    /// object, for transition rules such as immutable fields; `None` on creation.
    pub fn validate(&self, manifest: &Value, old: Option<&Value>) -> Result<(), ValidationError> {
        let obj = manifest.as_object().ok_or(ValidationError::NotAnObject)?;
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .ok_or(ValidationError::NotAnObject)?;
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .ok_or(ValidationError::NotAnObject)?;
        let schema = self
            .kinds
            .iter()
            .find(|k| k.api_version == api_version && k.kind == kind)
            .ok_or_else(|| ValidationError::UnknownKind {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
            })?;
        let name = manifest
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();

        let mut errors = metadata_errors(manifest);
        errors.extend(schema.strict.iter_errors(manifest).map(|e| FieldError {
            field: pointer_to_path(e.instance_path().as_str()),
            message: redact_credentials(&e.to_string(), e.instance()),
        }));
        // The API server evaluates CEL rules only on a structurally valid object.
        if errors.is_empty() {
            if let Err(cel_errors) = self.cel.validate(&schema.openapi, manifest, old) {
                errors.extend(cel_errors.iter().map(|e| FieldError {
                    field: e.field_path.trim_start_matches('.').to_string(),
                    message: e.message.clone(),
                }));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationError::Invalid {
                kind: kind.to_string(),
                name,
                errors,
            })
        }
    }
}

/// Error messages echo the offending value; a URL with credentials in it must not be echoed.
fn redact_credentials(message: &str, instance: &Value) -> String {
    match instance.as_str() {
        Some(value) if value.contains("://") && embeds_credentials(value) => {
            message.replace(value, "<URL with credentials, redacted>")
        }
        _ => message.to_string(),
    }
}

/// Whether a URL carries user-info or a credential-like query parameter (see the Strategy's CEL rule).
fn embeds_credentials(url: &str) -> bool {
    let query_secret = url.split(['?', '&', ';']).skip(1).any(|param| {
        let name = param.split('=').next().unwrap_or("").to_ascii_lowercase();
        param.contains('=')
            && [
                "pass",
                "pwd",
                "token",
                "secret",
                "key",
                "auth",
                "credential",
            ]
            .iter()
            .any(|word| name.contains(word))
    });
    url.contains('@') || query_secret
}

/// `metadata.name` must be a DNS-1123 subdomain, as for every namespaced object.
fn metadata_errors(manifest: &Value) -> Vec<FieldError> {
    let name = manifest.pointer("/metadata/name").and_then(Value::as_str);
    let valid = name.is_some_and(|n| {
        !n.is_empty()
            && n.len() <= 253
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && n.starts_with(|c: char| c.is_ascii_alphanumeric())
            && n.ends_with(|c: char| c.is_ascii_alphanumeric())
    });
    if valid {
        Vec::new()
    } else {
        vec![FieldError {
            field: "metadata.name".into(),
            message: format!(
                "{:?} must be a lower-case DNS-1123 subdomain (a-z, 0-9, '-', '.'; at most 253 characters)",
                name.unwrap_or_default()
            ),
        }]
    }
}

/// Turns a generated openAPIV3Schema into the JSON Schema an API server effectively enforces:
/// objects with declared properties reject unknown ones (strict field validation), `nullable`
/// admits null, and `x-kubernetes-int-or-string` admits both.
fn make_strict(schema: &mut Value, is_root: bool) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        obj.remove("type");
        obj.insert("type".into(), serde_json::json!(["integer", "string"]));
    }
    if obj.get("nullable") == Some(&Value::Bool(true)) {
        if let Some(Value::String(t)) = obj.get("type").cloned() {
            obj.insert("type".into(), serde_json::json!([t, "null"]));
        }
    }
    if is_root {
        // apiVersion, kind and metadata are implicit in every CRD schema.
        if let Some(Value::Object(props)) = obj.get_mut("properties") {
            props.insert("apiVersion".into(), serde_json::json!({"type": "string"}));
            props.insert("kind".into(), serde_json::json!({"type": "string"}));
            props.insert("metadata".into(), serde_json::json!({"type": "object"}));
        }
    }
    let preserves = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if obj.contains_key("properties") && !obj.contains_key("additionalProperties") && !preserves {
        obj.insert("additionalProperties".into(), Value::Bool(false));
    }
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for (key, child) in props.iter_mut() {
            // metadata is validated by the API server's own rules, not the CRD schema.
            if is_root && key == "metadata" {
                continue;
            }
            make_strict(child, false);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = obj.get_mut(key) {
            make_strict(child, false);
        }
    }
}

/// `/spec/symbols/0` → `spec.symbols[0]`.
fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::arbitrary;
    use proptest::prelude::*;
    use serde_json::json;

    fn policy(spec: Value) -> Value {
        json!({"apiVersion": "trading.ia-agents.dev/v1alpha1", "kind": "ConsensusPolicy",
               "metadata": {"name": "team"}, "spec": spec})
    }

    #[test]
    fn pointer_becomes_a_dotted_path() {
        assert_eq!(pointer_to_path("/spec/symbols/0"), "spec.symbols[0]");
        assert_eq!(pointer_to_path(""), "");
        assert_eq!(
            pointer_to_path("/metadata/annotations/a~1b"),
            "metadata.annotations.a/b"
        );
    }

    #[test]
    fn empty_spec_is_valid_thanks_to_defaults() {
        ManifestValidator::new()
            .validate(&policy(json!({})), None)
            .unwrap();
    }

    #[test]
    fn structural_and_cel_errors_name_the_field() {
        let v = ManifestValidator::new();
        let err = v
            .validate(&policy(json!({"threshold": 2.0})), None)
            .unwrap_err();
        assert_eq!(err.field_errors()[0].field, "spec.threshold", "{err}");

        let err = v
            .validate(&policy(json!({"tresHold": 0.5})), None)
            .unwrap_err();
        assert!(err.to_string().contains("tresHold"), "{err}");

        let err = v
            .validate(
                &policy(json!({"voters": ["technicalAnalyst"], "vetoRoles": ["riskManager"]})),
                None,
            )
            .unwrap_err();
        assert_eq!(err.field_errors()[0].field, "spec.vetoRoles", "{err}");
    }

    #[test]
    fn transition_rules_see_the_old_object() {
        let v = ManifestValidator::new();
        let ta = |role: &str| {
            json!({"apiVersion": "trading.ia-agents.dev/v1alpha1", "kind": "TradingAssistant",
                   "metadata": {"name": "ta"}, "spec": {"strategyRef": {"name": "s"}, "role": role}})
        };
        v.validate(&ta("strategist"), Some(&ta("strategist")))
            .unwrap();
        let err = v
            .validate(&ta("strategist"), Some(&ta("riskManager")))
            .unwrap_err();
        assert!(
            err.to_string().contains("spec.role: role is immutable"),
            "{err}"
        );
    }

    #[test]
    fn unknown_kinds_are_named() {
        let err = ManifestValidator::new()
            .validate(
                &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}),
                None,
            )
            .unwrap_err();
        assert!(err.to_string().contains("\"Pod\""), "{err}");
    }

    thread_local! {
        /// One validator per test thread: building one compiles every schema.
        static VALIDATOR: ManifestValidator = ManifestValidator::new();
    }

    /// Every document of the sample manifests.
    fn samples() -> Vec<Value> {
        [
            include_str!("../../../config/samples/strategy.yaml"),
            include_str!("../../../config/samples/consensuspolicy.yaml"),
            include_str!("../../../config/samples/team.yaml"),
        ]
        .into_iter()
        .flat_map(|text| crate::yaml::documents(text).unwrap())
        .collect()
    }

    /// What `validate` must guarantee: no panic, and a rejection of one of our kinds names at least
    /// one field error.
    fn check_total(manifest: &Value, old: Option<&Value>) -> Result<(), TestCaseError> {
        let outcome = VALIDATOR.with(|v| v.validate(manifest, old));
        if let Err(ValidationError::Invalid { errors, .. }) = &outcome {
            prop_assert!(!errors.is_empty());
        }
        Ok(())
    }

    #[test]
    fn the_samples_are_valid() {
        for doc in samples() {
            VALIDATOR.with(|v| v.validate(&doc, None)).unwrap();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// A sample with one node replaced by any JSON value or removed: valid or rejected with the
        /// fields at fault, as a creation and as an update from the sample (transition rules).
        #[test]
        fn mutated_samples_validate_or_fail_cleanly(doc in any::<prop::sample::Index>(), node in any::<usize>(), by in prop::option::of(arbitrary::json())) {
            let docs = samples();
            let original = &docs[doc.index(docs.len())];
            let mut mutated = original.clone();
            arbitrary::mutate(&mut mutated, node, by);
            check_total(&mutated, None)?;
            check_total(&mutated, Some(original))?;
            check_total(original, Some(&mutated))?;
        }

        /// Any JSON, bare or as a spec under one of our kinds: never a panic.
        #[test]
        fn any_json_validates_or_fails_cleanly(kind in prop::sample::select(vec!["Strategy", "ConsensusPolicy", "TradingAssistant"]), spec in arbitrary::json(), bare in any::<bool>()) {
            let manifest = if bare {
                spec
            } else {
                json!({"apiVersion": "trading.ia-agents.dev/v1alpha1", "kind": kind,
                       "metadata": {"name": "x"}, "spec": spec})
            };
            check_total(&manifest, None)?;
        }
    }
}
