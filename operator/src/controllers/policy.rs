//! ConsensusPolicy → `Valid`: the schema (with its CEL rules) as this build knows it, plus what a
//! schema cannot say. A Strategy referencing an invalid policy is not Ready and says why.

use super::apply::event;
use super::{key, Context, Error, RESYNC};
use crate::resources::FIELD_MANAGER;
use crate::status::{apply_status, condition};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use protocol::crd::conditions::VALID;
use protocol::crd::validate::ManifestValidator;
use protocol::crd::{set_condition, ConsensusPolicy};
use protocol::Role;
use std::sync::{Arc, OnceLock};

/// The controller's name in metrics and logs.
pub const CONTROLLER: &str = "consensuspolicy";

/// Why a policy cannot be used, or `Ok`. Objects stored before a stricter CRD was installed are
/// re-validated against this build's schema.
pub fn check(policy: &ConsensusPolicy) -> Result<(), String> {
    static VALIDATOR: OnceLock<ManifestValidator> = OnceLock::new();
    let manifest = serde_json::json!({
        "apiVersion": "trading.ia-agents.dev/v1alpha1",
        "kind": "ConsensusPolicy",
        "metadata": {"name": policy.name_any(), "namespace": policy.namespace()},
        "spec": policy.spec,
    });
    if let Err(e) = VALIDATOR
        .get_or_init(ManifestValidator::new)
        .validate(&manifest, None)
    {
        let fields: Vec<String> = e.field_errors().iter().map(|f| f.to_string()).collect();
        return Err(if fields.is_empty() {
            e.to_string()
        } else {
            fields.join("; ")
        });
    }
    let spec = &policy.spec;
    if let Some(r) = spec
        .voters
        .iter()
        .find(|r| matches!(r, Role::Executor | Role::Auditor))
    {
        return Err(format!(
            "spec.voters: {} acts on decisions and cannot vote",
            r.as_str()
        ));
    }
    Ok(())
}

/// Converges one ConsensusPolicy: checks what its schema cannot and writes `Valid` (with an Event
/// when it changes); requeued every [`RESYNC`].
pub async fn reconcile(policy: Arc<ConsensusPolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    let namespace = policy.namespace().unwrap_or_else(|| "default".into());
    let api: Api<ConsensusPolicy> = Api::namespaced(ctx.client.clone(), &namespace);
    let previous = policy.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    status.observed_generation = policy.metadata.generation;
    let valid = match check(&policy) {
        Ok(()) => condition(
            VALID,
            true,
            "Valid",
            format!(
                "{} voters, threshold {}, quorum {}, up to {} rounds",
                policy.spec.voters.len(),
                policy.spec.threshold,
                policy.spec.quorum,
                policy.spec.max_rounds
            ),
            policy.metadata.generation,
        ),
        Err(why) => condition(VALID, false, "Invalid", why, policy.metadata.generation),
    };
    let transitioned = set_condition(&mut status.conditions, valid.clone(), (ctx.now)())
        && previous
            .conditions
            .iter()
            .find(|c| c.type_ == VALID)
            .is_none_or(|c| c.status != valid.status);
    if status != previous {
        apply_status(&api, policy.as_ref(), &status, FIELD_MANAGER).await?;
    }
    if transitioned {
        event(
            &ctx,
            policy.as_ref(),
            valid.status != "True",
            &valid.reason,
            "Validate",
            valid.message.clone(),
        )
        .await;
    }
    ctx.succeeded(&format!("ConsensusPolicy {}", key(policy.as_ref())));
    Ok(Action::requeue(RESYNC))
}
