//! Writes to the API server: server-side apply of built objects, and Events.

use super::{Context, Error};
use crate::resources::strategy::Child;
use crate::resources::{manifest, FIELD_MANAGER};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Server-side applies one object built by [`crate::resources`] (taking ownership of the fields it
/// sets, `force` so a human's `kubectl edit` of our fields is converged back) and returns the
/// object as the API server now has it, status included. The body is the object's
/// [`manifest`], exactly what `trading-operator render` prints.
pub async fn apply<K>(client: &kube::Client, object: &K) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let name = object.meta().name.as_deref().unwrap_or_default();
    let namespace = object.meta().namespace.as_deref().unwrap_or("default");
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(manifest(object)),
    )
    .await
    .map_err(|source| Error::Kube {
        action: "applying",
        object: format!("{} {namespace}/{name}", K::kind(&())),
        source,
    })
}

/// Applies a Strategy's children in order; returns them as applied.
pub async fn apply_children(
    client: &kube::Client,
    children: &[Child],
) -> Result<Vec<Child>, Error> {
    let mut out = Vec::with_capacity(children.len());
    for child in children {
        out.push(match child {
            Child::ConfigMap(o) => Child::ConfigMap(apply(client, o).await?),
            Child::Deployment(o) => Child::Deployment(apply(client, o).await?),
            Child::Service(o) => Child::Service(apply(client, o).await?),
            Child::StatefulSet(o) => Child::StatefulSet(apply(client, o).await?),
            Child::NetworkPolicy(o) => Child::NetworkPolicy(apply(client, o).await?),
            Child::Job(o) => Child::Job(apply(client, o).await?),
        });
    }
    Ok(out)
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
