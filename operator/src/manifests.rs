//! Reading Kubernetes manifests from YAML files (one or many documents per file).

use protocol::crd::validate::ManifestValidator;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One document of a manifest file.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file it came from.
    pub file: PathBuf,
    /// Its position in the file (0-based, counting only non-empty documents).
    pub index: usize,
    /// The parsed object.
    pub value: Value,
}

impl Document {
    /// `file#index (Kind/name)`, for messages.
    pub fn describe(&self) -> String {
        let kind = self
            .value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let name = self
            .value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        format!("{}#{} ({kind}/{name})", self.file.display(), self.index)
    }
}

/// Errors while reading manifests.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("reading {path}: {error}")]
    Read {
        /// The file, as given.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A document of the file is not valid YAML.
    #[error("parsing {path}, document {index}: {error}")]
    Parse {
        /// The file, as given.
        path: String,
        /// Position of the document in the file, from 0, counting empty ones.
        index: usize,
        /// The YAML parser's error (with its line and column).
        error: serde_yaml::Error,
    },
}

/// Parses every non-empty YAML document of `text`; `path` only names the source in errors.
pub fn parse_documents(text: &str, path: &Path) -> Result<Vec<Document>, ManifestError> {
    let values = protocol::yaml::documents(text).map_err(|e| ManifestError::Parse {
        path: path.display().to_string(),
        index: e.index,
        error: e.error,
    })?;
    Ok(values
        .into_iter()
        .enumerate()
        .map(|(index, value)| Document {
            file: path.to_path_buf(),
            index,
            value,
        })
        .collect())
}

/// Reads and parses one manifest file.
pub fn read_documents(path: &Path) -> Result<Vec<Document>, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|error| ManifestError::Read {
        path: path.display().to_string(),
        error,
    })?;
    parse_documents(&text, path)
}

/// Whether a document is one of our custom resources.
pub fn is_ia_agents_resource(value: &Value) -> bool {
    value
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with(&format!("{}/", protocol::crd::GROUP)))
}

/// Whether `validate` must check a document rather than skip it as another API's object: it is in
/// our group, names a kind the validator serves (under a mistyped apiVersion, say), or lacks a string
/// apiVersion or kind. The validator's own errors then say what is wrong.
pub fn needs_validation(value: &Value, validator: &ManifestValidator) -> bool {
    let has_api_version = value.get("apiVersion").and_then(Value::as_str).is_some();
    let kind = value.get("kind").and_then(Value::as_str);
    is_ia_agents_resource(value)
        || !has_api_version
        || kind.is_none_or(|k| validator.serves_kind(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_and_skips_empty_ones() {
        let docs = parse_documents(
            "---\na: 1\n---\n---\nkind: X\nmetadata: {name: y}\n",
            Path::new("f.yaml"),
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].describe(), "f.yaml#1 (X/y)");
    }

    #[test]
    fn a_mistyped_or_missing_api_version_is_validated_not_skipped() {
        let validator = ManifestValidator::new();
        let needs = |v: Value| needs_validation(&v, &validator);
        assert!(needs(
            serde_json::json!({"apiVersion": "trading.ia-agent.dev/v1alpha1", "kind": "Strategy"})
        ));
        assert!(needs(
            serde_json::json!({"apiVersion": "trading.ia-agents.dev/v1", "kind": "Foo"})
        ));
        assert!(needs(serde_json::json!({"kind": "Strategy"})));
        assert!(needs(serde_json::json!({"apiVersion": "v1"})));
        assert!(needs(
            serde_json::json!({"apiVersion": protocol::crd::API_VERSION, "kind": "Strategy"})
        ));
        assert!(!needs(
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap"})
        ));
    }

    #[test]
    fn a_duplicate_key_is_an_error_not_the_last_value() {
        let err = parse_documents(
            "kind: Strategy\nspec:\n  stopLoss: 0.05\n  stopLoss: 0.9\n",
            Path::new("s.yaml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("stopLoss"), "{err}");
    }

    #[test]
    fn parse_errors_name_file_and_document() {
        let err = parse_documents("a: 1\n---\nb: [\n", Path::new("bad.yaml")).unwrap_err();
        assert!(
            err.to_string().starts_with("parsing bad.yaml, document 1"),
            "{err}"
        );
    }
}
