//! Reading Kubernetes manifests from YAML files (one or many documents per file).

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
    #[error("reading {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("parsing {path}, document {index}: {error}")]
    Parse {
        path: String,
        index: usize,
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

/// The kinds this build defines.
const OUR_KINDS: [&str; 3] = ["Strategy", "ConsensusPolicy", "TradingAssistant"];

/// Why a document can be neither validated nor skipped as another API's object: it has no
/// `apiVersion` or `kind`, or it is one of our kinds (or in our group) under an apiVersion this build
/// does not serve, as after a typo. `None` for our objects and for other APIs' objects.
pub fn unrecognised(value: &Value) -> Option<String> {
    let api_version = value.get("apiVersion").and_then(Value::as_str);
    let kind = value.get("kind").and_then(Value::as_str);
    let (Some(api_version), Some(kind)) = (api_version, kind) else {
        return Some("every object needs a string apiVersion and kind".into());
    };
    let ours = OUR_KINDS.contains(&kind) || is_ia_agents_resource(value);
    (ours && api_version != protocol::crd::API_VERSION).then(|| {
        format!(
            "apiVersion {api_version:?} is not served by this build: use {:?} for kind {kind}",
            protocol::crd::API_VERSION
        )
    })
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
    fn a_mistyped_or_missing_api_version_is_named_not_skipped() {
        let typo =
            serde_json::json!({"apiVersion": "trading.ia-agent.dev/v1alpha1", "kind": "Strategy"});
        assert!(unrecognised(&typo)
            .unwrap()
            .contains("trading.ia-agents.dev/v1alpha1"));
        let version = serde_json::json!({"apiVersion": "trading.ia-agents.dev/v1", "kind": "Foo"});
        assert!(unrecognised(&version).is_some());
        assert!(unrecognised(&serde_json::json!({"kind": "Strategy"})).is_some());
        let ours =
            serde_json::json!({"apiVersion": protocol::crd::API_VERSION, "kind": "Strategy"});
        assert_eq!(unrecognised(&ours), None);
        let foreign = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap"});
        assert_eq!(unrecognised(&foreign), None);
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
