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
    use proptest::prelude::*;

    /// The sample manifests the mutations start from.
    const SAMPLES: [&str; 3] = [
        include_str!("../../config/samples/strategy.yaml"),
        include_str!("../../config/samples/consensuspolicy.yaml"),
        include_str!("../../config/samples/team.yaml"),
    ];

    /// Pieces of YAML syntax, so that random text often parses some way before it fails.
    #[rustfmt::skip]
    const TOKENS: [&str; 30] = [
        "a", "spec", ":", ": ", " ", "  ", "\n", "\n  ", "- ", "[", "]", "{", "}", ", ", "&x ",
        "*x", "!!str ", "!!binary ", "---\n", "...\n", "'", "\"", "# c", "|\n", ">-\n", "? ",
        "<<: *x", "~", "1e9", "0x1F",
    ];

    /// Random YAML-ish text: a soup of syntax pieces.
    fn yamlish() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(TOKENS.to_vec()), 0..80)
            .prop_map(|pieces| pieces.concat())
    }

    /// A sample with one line deleted, doubled (a duplicate key, often), swapped with the next,
    /// re-indented, or with YAML-ish text inserted into it.
    fn mutated_sample() -> impl Strategy<Value = String> {
        (
            prop::sample::select(SAMPLES.to_vec()),
            0usize..6,
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            yamlish(),
        )
            .prop_map(|(sample, op, line, at, inserted)| {
                let mut lines: Vec<String> = sample.lines().map(String::from).collect();
                let n = lines.len();
                let i = line.index(n);
                match op {
                    0 => {
                        lines.remove(i);
                    }
                    1 => lines.insert(i, lines[i].clone()),
                    2 => lines.swap(i, (i + 1) % n),
                    3 => lines[i].insert_str(0, "  "),
                    4 => lines[i] = lines[i].trim_start().to_string(),
                    _ => {
                        let chars: Vec<char> = lines[i].chars().collect();
                        let at = at.index(chars.len() + 1);
                        let (head, tail) = chars.split_at(at);
                        lines[i] = format!(
                            "{}{inserted}{}",
                            head.iter().collect::<String>(),
                            tail.iter().collect::<String>()
                        );
                    }
                }
                lines.join("\n")
            })
    }

    /// The samples themselves read as they are.
    #[test]
    fn the_samples_read() {
        for sample in SAMPLES {
            assert!(!documents(sample).unwrap().is_empty());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any text gives documents or an error naming one, never a panic.
        #[test]
        fn any_text_reads_or_fails_cleanly(text in prop_oneof![".{0,300}", yamlish(), mutated_sample()]) {
            match documents(&text) {
                Ok(docs) => prop_assert!(docs.iter().all(|d| !d.is_null())),
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        /// Corrupted bytes of a sample (read lossily as text, as a file reader would refuse them).
        #[test]
        fn corrupted_samples_never_panic(sample in prop::sample::select(SAMPLES.to_vec()), flip in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
            let mut bytes = sample.as_bytes().to_vec();
            let len = bytes.len();
            bytes[flip.index(len)] = byte;
            bytes.truncate(cut.index(len + 1));
            let _ = documents(&String::from_utf8_lossy(&bytes));
        }
    }

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
