//! What the operator's integration tests share: the namespace they work in and the sample manifests.

#![allow(dead_code)]

use serde_json::{json, Value};

pub const NS: &str = "trading";
pub const CRD: &str = "trading.ia-agents.dev/v1alpha1";

/// Every document of a `config/samples` file, placed in [`NS`].
pub fn samples(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(format!(
        "{}/../config/samples/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let mut v: Value = serde::Deserialize::deserialize(doc).unwrap();
            v["metadata"]["namespace"] = json!(NS);
            v
        })
        .collect()
}

/// Document `index` of a `config/samples` file, placed in [`NS`].
pub fn sample(file: &str, index: usize) -> Value {
    samples(file).swap_remove(index)
}
