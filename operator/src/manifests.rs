//! Reading Kubernetes manifests from YAML files (one or many documents per file).

use serde::Deserialize;
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
    let mut docs = Vec::new();
    for (index, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(de).map_err(|error| ManifestError::Parse {
            path: path.display().to_string(),
            index,
            error,
        })?;
        if !value.is_null() {
            docs.push(Document {
                file: path.to_path_buf(),
                index: docs.len(),
                value,
            });
        }
    }
    Ok(docs)
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
    fn parse_errors_name_file_and_document() {
        let err = parse_documents("a: 1\n---\nb: [\n", Path::new("bad.yaml")).unwrap_err();
        assert!(
            err.to_string().starts_with("parsing bad.yaml, document 1"),
            "{err}"
        );
    }
}
