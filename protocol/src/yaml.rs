//! Reading manifests' YAML strictly: every document as JSON, and a key written twice in one mapping
//! is an error. (Deserializing YAML straight into `serde_json::Value` keeps the last of two equal
//! keys without a word, so `stopLoss: 0.05` followed by `stopLoss: 0.9` would pass as 0.9.)

use serde::Deserialize;
use serde_json::Value;

/// A document that is not valid YAML, or not expressible as JSON.
#[derive(Debug, thiserror::Error)]
#[error("document {index}: {error}")]
pub struct DocumentError {
    /// Position of the document in the stream, from 0, counting empty ones.
    pub index: usize,
    /// What the parser said: a duplicate key names the key and its line.
    pub error: serde_yaml::Error,
}

/// Every non-empty document of `text`, in order; duplicate mapping keys are errors.
pub fn documents(text: &str) -> Result<Vec<Value>, DocumentError> {
    let mut docs = Vec::new();
    for (index, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let strict = serde_yaml::Value::deserialize(de)
            .and_then(serde_yaml::from_value::<Value>)
            .map_err(|error| DocumentError { index, error })?;
        if !strict.is_null() {
            docs.push(strict);
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_written_twice_is_an_error_naming_it() {
        let err = documents("spec:\n  stopLoss: 0.05\n  stopLoss: 0.9\n").unwrap_err();
        assert_eq!(err.index, 0);
        assert!(err.to_string().contains("stopLoss"), "{err}");
    }

    #[test]
    fn documents_come_back_in_order_without_empty_ones() {
        let docs = documents("a: 1\n---\n---\nb: [2]\n").unwrap();
        assert_eq!(
            docs,
            vec![serde_json::json!({"a": 1}), serde_json::json!({"b": [2]})]
        );
    }
}
