//! Field ownership, as the API server keeps it in `managedFields`: which field manager, by which
//! operation (server-side apply or another write), set each field of an object. Server-side apply
//! conflicts come from it, and so does the removal of list entries a manager stops applying.
//!
//! A field is a leaf of the object: a scalar, a list other than the keyed ones (which is
//! atomic), or an entry's field in a keyed list (`status.conditions[type="Ready"].status`).
//! `apiVersion`, `kind` and the metadata the server sets are nobody's.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Lists merged entry by entry, and the field that keys their entries (`None`: the entry itself,
/// a set of scalars).
const KEYED_LISTS: [(&str, Option<&str>); 4] = [
    ("conditions", Some("type")),
    ("pendingEscalations", Some("id")),
    ("ownerReferences", Some("uid")),
    ("finalizers", None),
];

/// Metadata fields a writer sets (the rest is the server's).
const OWNED_METADATA: [&str; 4] = ["labels", "annotations", "ownerReferences", "finalizers"];

/// A set of fields, by path.
pub(super) type Fields = BTreeSet<String>;

/// How a manager wrote its fields: they are owned separately, and conflict with each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Operation {
    /// Server-side apply.
    Apply,
    /// Create, replace, or a patch other than an apply.
    Update,
}

/// The owners of one object's fields.
#[derive(Debug, Default, Clone)]
pub(super) struct Managed(BTreeMap<(String, Operation), Fields>);

/// Fields of an apply that another manager owns with another value: (manager, field).
pub(super) type Conflicts = Vec<(String, String)>;

impl Managed {
    /// What an apply by `manager` turning `before` into `after` takes from other managers without
    /// `force`: the fields it adds or changes that they own.
    pub(super) fn conflicts(&self, manager: &str, before: &Value, after: &Value) -> Conflicts {
        let (changed, _) = changes(before, after);
        let me = (manager.to_string(), Operation::Apply);
        self.0
            .iter()
            .filter(|(id, _)| **id != me)
            .flat_map(|((other, _), fields)| {
                fields
                    .intersection(&changed)
                    .map(|f| (other.clone(), f.clone()))
            })
            .collect()
    }

    /// Records a write by `manager` turning `before` into `after`. An apply owns exactly the
    /// fields it applied (`applied`), another write those it added or changed, on top of its
    /// earlier ones; other managers lose what changed, everyone loses what is gone.
    pub(super) fn record(
        &mut self,
        manager: &str,
        operation: Operation,
        applied: Option<Fields>,
        before: &Value,
        after: &Value,
    ) {
        let (changed, removed) = changes(before, after);
        let id = (manager.to_string(), operation);
        for (other, fields) in &mut self.0 {
            if *other != id {
                fields.retain(|f| !changed.contains(f));
            }
            fields.retain(|f| !removed.contains(f));
        }
        let mine = self.0.entry(id).or_default();
        match applied {
            Some(applied) => *mine = applied,
            None => mine.extend(changed),
        }
        self.0.retain(|_, fields| !fields.is_empty());
    }

    /// Forgets the ownership of fields that are gone (a change made outside the API).
    pub(super) fn prune(&mut self, before: &Value, after: &Value) {
        let (_, removed) = changes(before, after);
        for fields in self.0.values_mut() {
            fields.retain(|f| !removed.contains(f));
        }
        self.0.retain(|_, fields| !fields.is_empty());
    }

    /// Whether `manager`'s applies own a field under `prefix` (a keyed list's entry).
    pub(super) fn applied_under(&self, manager: &str, prefix: &str) -> bool {
        self.0
            .get(&(manager.to_string(), Operation::Apply))
            .is_some_and(|fields| fields.iter().any(|f| is_under(f, prefix)))
    }

    /// Whether a manager other than `manager`'s applies owns a field under `prefix`.
    pub(super) fn others_under(&self, manager: &str, prefix: &str) -> bool {
        let me = (manager.to_string(), Operation::Apply);
        self.0
            .iter()
            .any(|(id, fields)| *id != me && fields.iter().any(|f| is_under(f, prefix)))
    }
}

fn is_under(field: &str, prefix: &str) -> bool {
    field
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// The path of a keyed list's entry: `status.conditions[type="Ready"]`.
pub(super) fn entry_path(list_path: &str, key: &Value) -> String {
    let list = list_path.rsplit('.').next().unwrap_or_default();
    match KEYED_LISTS.iter().find(|(name, _)| *name == list) {
        Some((_, Some(key_field))) => format!("{list_path}[{key_field}={key}]"),
        _ => format!("{list_path}[{key}]"),
    }
}

/// The fields an object sets, with their values.
pub(super) fn leaves(object: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    if let Value::Object(fields) = object {
        for (name, value) in fields {
            match name.as_str() {
                "apiVersion" | "kind" => {}
                "metadata" => {
                    for field in OWNED_METADATA {
                        walk(&value[field], &format!("metadata.{field}"), &mut out);
                    }
                }
                _ => walk(value, name, &mut out),
            }
        }
    }
    out
}

/// The fields of `leaves(object)` under `prefix` (`status` for the status subresource).
pub(super) fn fields_under(object: &Value, prefix: &str) -> Fields {
    leaves(object)
        .into_keys()
        .filter(|f| is_under(f, prefix))
        .collect()
}

/// The fields of an object but its status.
pub(super) fn fields_but_status(object: &Value) -> Fields {
    leaves(object)
        .into_keys()
        .filter(|f| !is_under(f, "status"))
        .collect()
}

fn walk(value: &Value, path: &str, out: &mut BTreeMap<String, Value>) {
    let list = path.rsplit('.').next().unwrap_or_default();
    let keyed = KEYED_LISTS.iter().find(|(name, _)| *name == list);
    match (value, keyed) {
        (Value::Null, _) => {}
        (Value::Object(fields), _) => {
            for (name, v) in fields {
                walk(v, &format!("{path}.{name}"), out);
            }
        }
        (Value::Array(items), Some((_, key))) => {
            for item in items {
                let entry = entry_path(path, key.map_or(item, |k| &item[k]));
                match item {
                    Value::Object(fields) => {
                        for (name, v) in fields {
                            walk(v, &format!("{entry}.{name}"), out);
                        }
                    }
                    _ => {
                        out.insert(entry, item.clone());
                    }
                }
            }
        }
        _ => {
            out.insert(path.to_string(), value.clone());
        }
    }
}

/// The fields `after` adds or changes, and those it no longer has.
fn changes(before: &Value, after: &Value) -> (Fields, Fields) {
    let before = leaves(before);
    let after = leaves(after);
    let changed = after
        .iter()
        .filter(|(f, v)| before.get(*f) != Some(v))
        .map(|(f, _)| f.clone())
        .collect();
    let removed = before
        .keys()
        .filter(|f| !after.contains_key(*f))
        .cloned()
        .collect();
    (changed, removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn leaves_descend_maps_and_keyed_lists_and_keep_other_lists_whole() {
        let object = json!({"apiVersion": "v1", "kind": "X",
            "metadata": {"name": "x", "resourceVersion": "3", "labels": {"a": "b"},
                         "finalizers": ["f"]},
            "spec": {"holder": "a", "ports": [1, 2], "empty": null},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let fields: Vec<String> = leaves(&object).into_keys().collect();
        assert_eq!(
            fields,
            [
                "metadata.finalizers[\"f\"]",
                "metadata.labels.a",
                "spec.holder",
                "spec.ports",
                "status.conditions[type=\"Ready\"].status",
                "status.conditions[type=\"Ready\"].type",
            ]
        );
    }

    #[test]
    fn an_apply_conflicts_only_where_another_manager_owns_a_changed_field() {
        let mut managed = Managed::default();
        let empty = json!({});
        let a = json!({"spec": {"holder": "a", "time": 1}});
        managed.record(
            "a",
            Operation::Apply,
            Some(fields_but_status(&a)),
            &empty,
            &a,
        );
        // the same values: shared, no conflict
        assert!(managed.conflicts("b", &a, &a.clone()).is_empty());
        let b = json!({"spec": {"holder": "b", "time": 1}});
        assert_eq!(
            managed.conflicts("b", &a, &b),
            [("a".to_string(), "spec.holder".to_string())]
        );
        // a's own updates conflict with its applies, as on an API server
        managed.record("a", Operation::Update, None, &a, &b);
        assert_eq!(
            managed.conflicts("a", &b, &a),
            [("a".to_string(), "spec.holder".to_string())]
        );
        // a field removed is nobody's any more
        let gone = json!({"spec": {"time": 1}});
        managed.record("c", Operation::Update, None, &b, &gone);
        assert!(managed.conflicts("b", &gone, &b).is_empty());
        assert!(managed.applied_under("a", "spec.time"));
        assert!(!managed.others_under("a", "spec.time"));
    }
}
