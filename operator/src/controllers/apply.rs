//! Writes to the API server: server-side apply of built objects, and Events.

use super::{Context, Error};
use crate::resources::FIELD_MANAGER;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Server-side applies one object built by [`crate::resources`] (taking ownership of the fields it
/// sets, `force` so a human's `kubectl edit` of our fields is converged back) and returns the
/// object as the API server now has it, status included.
pub async fn apply_object(client: &kube::Client, object: &Value) -> Result<Value, Error> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let applied = api
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
        .map_err(|source| Error::Kube {
            action: "applying",
            object: format!("{kind} {namespace}/{name}"),
            source,
        })?;
    Ok(serde_json::to_value(applied).expect("objects serialise"))
}

/// Applies every object in order; returns them as applied.
pub async fn apply_all(client: &kube::Client, objects: &[Value]) -> Result<Vec<Value>, Error> {
    let mut out = Vec::with_capacity(objects.len());
    for o in objects {
        out.push(apply_object(client, o).await?);
    }
    Ok(out)
}

/// Decodes an applied object into its typed form.
pub fn decode<T: DeserializeOwned>(object: &Value) -> Result<T, Error> {
    serde_json::from_value(object.clone()).map_err(|e| Error::Invalid {
        object: format!(
            "{} {}",
            object["kind"].as_str().unwrap_or_default(),
            object["metadata"]["name"].as_str().unwrap_or_default()
        ),
        reason: format!("unexpected shape from the API server: {e}"),
    })
}

/// Publishes a Kubernetes Event about `object`. A failure is logged, never fatal: events are
/// for humans, the status is the contract.
pub async fn event<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    warning: bool,
    reason: &str,
    action: &str,
    note: String,
) {
    if warning {
        tracing::warn!(object = %super::key(object), reason, "{note}");
    } else {
        tracing::info!(object = %super::key(object), reason, "{note}");
    }
    let event = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(object = %super::key(object), %error, "cannot publish an Event");
    }
}
