//! `approve|reject ID` and `pause|resume STRATEGY`: the same changes a person makes with
//! `kubectl annotate` and `kubectl patch`, so the operator does the rest (and records it).

use super::PluginError;
use crate::controllers::strategy::{APPROVE_ANNOTATION, REJECT_ANNOTATION};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::Client;
use protocol::crd::Strategy;
use serde_json::json;

/// Annotates the Strategy whose status lists escalation `id` as pending.
pub async fn answer(
    client: Client,
    namespace: &str,
    id: &str,
    approve: bool,
) -> Result<String, PluginError> {
    let api = Api::<Strategy>::namespaced(client, namespace);
    let strategies = api
        .list(&ListParams::default())
        .await
        .map_err(PluginError::kube(format!("strategies in {namespace}")))?;
    let owner = strategies
        .items
        .iter()
        .find(|s| {
            s.status
                .as_ref()
                .is_some_and(|st| st.pending_escalations.iter().any(|e| e.id == id))
        })
        .and_then(|s| s.metadata.name.clone())
        .ok_or_else(|| {
            PluginError::NotFound(format!(
                "escalation {id}: no Strategy in {namespace} has it pending (answered already, timed out, or another namespace?)"
            ))
        })?;
    let annotation = if approve {
        APPROVE_ANNOTATION
    } else {
        REJECT_ANNOTATION
    };
    let patch = json!({"metadata": {"annotations": {annotation: id}}});
    api.patch(&owner, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(PluginError::kube(format!("strategy {namespace}/{owner}")))?;
    let verb = if approve { "approved" } else { "rejected" };
    Ok(format!(
        "escalation {id} of strategy {namespace}/{owner} {verb} (the operator relays it to the coordinator)\n"
    ))
}

/// Sets `spec.paused`.
pub async fn pause(
    client: Client,
    namespace: &str,
    strategy: &str,
    paused: bool,
) -> Result<String, PluginError> {
    let api = Api::<Strategy>::namespaced(client, namespace);
    let patch = json!({"spec": {"paused": paused}});
    api.patch(strategy, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(PluginError::kube(format!(
            "strategy {namespace}/{strategy}"
        )))?;
    Ok(if paused {
        format!("strategy {namespace}/{strategy} paused: the team scales to zero\n")
    } else {
        format!("strategy {namespace}/{strategy} resumed\n")
    })
}
