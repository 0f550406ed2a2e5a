//! TradingAssistant → its role ConfigMap, NetworkPolicy and Deployment; status (replicas,
//! selector, Ready / Progressing / Degraded) from the Deployment's real status. A missing Strategy
//! is a condition and a retry, never a crash.

use super::apply::{apply, event};
use super::conditions::{deployment_health, strategy_not_found};
use super::{key, Context, Error, RESYNC, WAITING};
use crate::resources::{assistant, FIELD_MANAGER};
use crate::status::apply_status;
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use protocol::crd::conditions::READY;
use protocol::crd::{
    find_condition, set_condition, Strategy, TradingAssistant, TradingAssistantStatus,
};
use protocol::Role;
use std::sync::Arc;

/// The controller's name in metrics and logs.
pub const CONTROLLER: &str = "tradingassistant";

/// Converges one TradingAssistant: its ConfigMap, NetworkPolicy and Deployment applied (the policy
/// first, so no pod of it ever runs unguarded), its status from the
/// Deployment as applied. Without its Strategy it waits (`Ready=False/StrategyNotFound`).
pub async fn reconcile(ta: Arc<TradingAssistant>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    if ta.metadata.deletion_timestamp.is_some() {
        // its children carry owner references: the garbage collector removes them
        return Ok(Action::await_change());
    }
    let namespace = ta.namespace().unwrap_or_else(|| "default".into());
    let strategy_name = &ta.spec.strategy_ref.name;
    let strategies: Api<Strategy> = Api::namespaced(ctx.client.clone(), &namespace);
    let strategy = strategies
        .get_opt(strategy_name)
        .await
        .map_err(|source| Error::Kube {
            action: "reading the Strategy of",
            object: format!("TradingAssistant {}", key(ta.as_ref())),
            source,
        })?;
    let api: Api<TradingAssistant> = Api::namespaced(ctx.client.clone(), &namespace);
    let previous = ta.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    status.observed_generation = ta.metadata.generation;
    let now = (ctx.now)();

    let Some(strategy) = strategy else {
        let not_found = strategy_not_found(strategy_name, &namespace, ta.metadata.generation);
        let changed = set_condition(&mut status.conditions, not_found.clone(), now);
        if changed || status != previous {
            apply_status(&api, ta.as_ref(), &status, FIELD_MANAGER).await?;
        }
        if changed {
            let (reason, message) = (not_found.reason, not_found.message);
            event(&ctx, ta.as_ref(), true, &reason, "Reconcile", message).await;
        }
        ctx.succeeded(&format!("TradingAssistant {}", key(ta.as_ref())));
        return Ok(Action::requeue(WAITING));
    };

    let team = service_team(&ta, &ctx, &namespace).await?;
    apply(&ctx.client, &assistant::config_map(&ta)?).await?;
    let policy = assistant::network_policy(&ta, Some(&strategy), &team, &ctx.network);
    apply(&ctx.client, &policy).await?;
    let deployment = assistant::deployment(&ta, Some(&strategy), &team)?;
    let applied = apply(&ctx.client, &deployment).await?;

    let health = deployment_health(&applied, ta.metadata.generation);
    status.replicas = health.replicas;
    status.ready_replicas = health.ready_replicas;
    status.selector = Some(health.selector);
    if status.weight.is_none() {
        status.weight = Some(ta.spec.weight);
    }
    for c in health.conditions {
        set_condition(&mut status.conditions, c, now.clone());
    }
    if status != previous {
        apply_status(&api, ta.as_ref(), &status, FIELD_MANAGER).await?;
    }
    announce(&ctx, &ta, &applied.name_any(), &previous, &status).await;
    ctx.succeeded(&format!("TradingAssistant {}", key(ta.as_ref())));
    // a Deployment status change triggers the next reconcile through `owns`; RESYNC is the safety net
    Ok(Action::requeue(RESYNC))
}

/// Whether a TradingAssistant's pods depend on the rest of its team: an executor's or auditor's do
/// (they are services of their own when the team has both, [`assistant::deployment`]); another
/// role's never.
fn depends_on_the_team(ta: &TradingAssistant) -> bool {
    matches!(ta.spec.role, Role::Executor | Role::Auditor)
}

/// The TradingAssistants of the namespace, when `ta`'s pods depend on them
/// ([`depends_on_the_team`]); else none, without asking the API server.
async fn service_team(
    ta: &TradingAssistant,
    ctx: &Context,
    namespace: &str,
) -> Result<Vec<TradingAssistant>, Error> {
    if !depends_on_the_team(ta) {
        return Ok(vec![]);
    }
    let api: Api<TradingAssistant> = Api::namespaced(ctx.client.clone(), namespace);
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Kube {
            action: "listing the team of",
            object: format!("TradingAssistant {}", key(ta)),
            source,
        })?;
    Ok(list.items)
}

/// The TradingAssistants to reconcile again when `changed` appears, changes or goes: when it is an
/// executor or auditor, the other services of its Strategy in `assistants` (whether the team runs
/// them as services depends on both being there); else none.
pub fn service_partners(
    assistants: &[Arc<TradingAssistant>],
    changed: &TradingAssistant,
) -> Vec<ObjectRef<TradingAssistant>> {
    if !depends_on_the_team(changed) {
        return vec![];
    }
    assistants
        .iter()
        .filter(|ta| {
            depends_on_the_team(ta)
                && ta.namespace() == changed.namespace()
                && ta.spec.strategy_ref.name == changed.spec.strategy_ref.name
                && ta.name_any() != changed.name_any()
        })
        .map(|ta| ObjectRef::from_obj(ta.as_ref()))
        .collect()
}

/// The Events of a reconcile that got as far as the Deployment: `Applied` for a new generation,
/// and the `Ready` condition's reason when its status changed (a warning when it became false).
async fn announce(
    ctx: &Context,
    ta: &TradingAssistant,
    deployment: &str,
    previous: &TradingAssistantStatus,
    status: &TradingAssistantStatus,
) {
    if previous.observed_generation != ta.metadata.generation {
        let note = format!(
            "Deployment {deployment} applied for generation {} ({} replicas of role {})",
            ta.metadata.generation.unwrap_or_default(),
            ta.spec.replicas,
            ta.spec.role.as_str()
        );
        event(ctx, ta, false, "Applied", "Reconcile", note).await;
    }
    let was_ready = find_condition(&previous.conditions, READY).map(|c| c.status.as_str());
    let ready = find_condition(&status.conditions, READY).expect("deployment_health sets Ready");
    if was_ready != Some(ready.status.as_str()) {
        let became_ready = ready.status == "True";
        let note = ready.message.clone();
        event(ctx, ta, !became_ready, &ready.reason, "Reconcile", note).await;
    }
}
