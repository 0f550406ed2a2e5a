//! Status writing shared by the reconcilers ([`crate::controllers`]) and the decision consumer
//! ([`crate::decisions`]): building a condition, and server-side applying a status.
//!
//! It lives apart from both so that neither imports the other both ways: the controllers start
//! and stop the decision consumers, and the consumers only need these two helpers.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// A condition (its transition time is set by `protocol::crd::set_condition`).
pub fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    }
}

/// `namespace/name` of an object, for messages.
pub fn key<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.meta().namespace.as_deref().unwrap_or("default"),
        object.meta().name.as_deref().unwrap_or_default()
    )
}

/// A status the API server refused, naming the object (`Strategy ns/name`).
#[derive(Debug, thiserror::Error)]
#[error("updating the status of {kind} {object}: {source}")]
pub struct StatusError {
    /// The object's kind.
    pub kind: String,
    /// `namespace/name` of the object.
    pub object: String,
    /// The client's error: the API server refused the write, or did not answer.
    #[source]
    pub source: kube::Error,
}

/// Server-side applies `status` on the object's status subresource under `field_manager` (the
/// reconcilers and the decision consumer use different managers, so each owns its own conditions).
pub async fn apply_status<K>(
    api: &Api<K>,
    object: &K,
    status: &impl serde::Serialize,
    field_manager: &str,
) -> Result<(), StatusError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|source| StatusError {
        kind: K::kind(&()).into_owned(),
        object: key(object),
        source,
    })?;
    Ok(())
}
