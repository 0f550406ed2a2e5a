//! Generators for the property tests of the decoders of outside input (NATS messages, Binance
//! frames and replies, manifests are all JSON): any JSON value, and structure-aware mutations of
//! a valid document.

use proptest::prelude::*;
use serde_json::{Number, Value};

/// Any JSON value, nested a few levels: numbers of every range, numeric and other strings.
pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|x| Number::from_f64(x).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::from),
        "-?[0-9]{0,30}(\\.[0-9]{0,30})?(e-?[0-9]{1,3})?|NaN|inf|-0".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The JSON pointers of every node of `value`, in pre-order (the root first, as `""`).
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    let escape = |key: &str| key.replace('~', "~0").replace('/', "~1");
    match value {
        Value::Array(items) => {
            out.push(at.clone());
            for (i, item) in items.iter().enumerate() {
                pointers(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(map) => {
            out.push(at.clone());
            for (key, item) in map {
                pointers(item, format!("{at}/{}", escape(key)), out);
            }
        }
        _ => out.push(at),
    }
}

/// `value` with one node (the `index`-th, modulo their number) replaced by `by`, or removed
/// from its object or array when `by` is `None`.
pub fn mutate(value: &mut Value, index: usize, by: Option<Value>) {
    let mut all = Vec::new();
    pointers(value, String::new(), &mut all);
    let at = all[index % all.len()].clone();
    match by {
        Some(by) => *value.pointer_mut(&at).expect("a pointer just listed") = by,
        None => {
            let (parent, key) = at.rsplit_once('/').unwrap_or(("", ""));
            let key = key.replace("~1", "/").replace("~0", "~");
            match value.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(&key);
                }
                Some(Value::Array(items)) => {
                    if let Ok(i) = key.parse::<usize>() {
                        items.remove(i);
                    }
                }
                _ => *value = Value::Null,
            }
        }
    }
}
