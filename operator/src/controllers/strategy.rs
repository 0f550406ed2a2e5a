//! Strategy → the coordinator, the managed dependencies (NATS, Postgres with a password that is
//! generated once, Ollama with its model pull), NetworkPolicies; status from the children's real
//! state (`DependenciesReady`, `AssistantsReady`, `Paused`, `Ready`, `status.assistants`); the
//! approve/reject annotations relayed to NATS and removed; the team's decision consumer started,
//! and stopped by a finalizer when the Strategy goes.

use super::apply::{apply_all, decode, event};
use super::conditions::{deployment_ready, job_succeeded, statefulset_ready};
use super::{key, policy, Context, Error, RESYNC, WAITING};
use crate::resources::{strategy as build, FIELD_MANAGER};
use crate::status::{apply_status, condition};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Error as FinalizerError, Event as Finalized};
use kube::{Api, ResourceExt};
use protocol::crd::conditions::{ASSISTANTS_READY, DEPENDENCIES_READY, PAUSED, READY};
use protocol::crd::{
    condition_is_true, find_condition, set_condition, AssistantCounts, ConsensusPolicy, Strategy,
    StrategyStatus, TradingAssistant,
};
use protocol::messages::EscalationResolution;
use serde_json::{json, Value};
use std::sync::Arc;

/// The controller's name in metrics and logs.
pub const CONTROLLER: &str = "strategy";
/// Held while the Strategy's decision consumer runs; removed once it is stopped.
pub const FINALIZER: &str = "trading.ia-agents.dev/decision-consumer";
/// Annotations a human sets to answer an escalation (`<prefix>approve: <decision id>`).
pub const APPROVE_ANNOTATION: &str = "trading.ia-agents.dev/approve";
pub const REJECT_ANNOTATION: &str = "trading.ia-agents.dev/reject";

/// The condition types this reconciler owns (the decision consumer owns the outcome ones).
const OWNED: [&str; 4] = [DEPENDENCIES_READY, ASSISTANTS_READY, PAUSED, READY];

pub async fn reconcile(strategy: Arc<Strategy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    let namespace = strategy.namespace().unwrap_or_else(|| "default".into());
    let api: Api<Strategy> = Api::namespaced(ctx.client.clone(), &namespace);
    let object = format!("Strategy {}", key(strategy.as_ref()));
    let result = finalizer(&api, FINALIZER, strategy, |event| async {
        match event {
            Finalized::Apply(s) => apply(s, ctx.clone()).await,
            Finalized::Cleanup(s) => cleanup(s, ctx.clone()).await,
        }
    })
    .await
    .map_err(|e| match e {
        FinalizerError::ApplyFailed(e) | FinalizerError::CleanupFailed(e) => e,
        other => Error::Finalizer {
            object: object.clone(),
            reason: other.to_string(),
        },
    });
    if result.is_ok() {
        ctx.succeeded(&object);
    }
    result
}

async fn cleanup(s: Arc<Strategy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = s.namespace().unwrap_or_else(|| "default".into());
    ctx.decisions.stop(&namespace, &s.name_any());
    event(
        &ctx,
        s.as_ref(),
        false,
        "Deleted",
        "Cleanup",
        "decision consumer stopped; owned objects are garbage-collected".into(),
    )
    .await;
    Ok(Action::await_change())
}

/// The conditions this reconciler owns, from the previous status.
fn owned_status(previous: &StrategyStatus) -> StrategyStatus {
    StrategyStatus {
        observed_generation: previous.observed_generation,
        conditions: previous
            .conditions
            .iter()
            .filter(|c| OWNED.contains(&c.type_.as_str()))
            .cloned()
            .collect(),
        assistants: previous.assistants.clone(),
        ..Default::default()
    }
}

async fn apply(s: Arc<Strategy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = s.namespace().unwrap_or_else(|| "default".into());
    let name = s.name_any();
    let generation = s.metadata.generation;
    let api: Api<Strategy> = Api::namespaced(ctx.client.clone(), &namespace);
    let previous = owned_status(&s.status.clone().unwrap_or_default());
    let mut status = previous.clone();
    status.observed_generation = generation;
    let now = (ctx.now)();

    // the team's policy must exist and be usable before anything runs
    let policy_name = &s.spec.consensus_policy_ref.name;
    let policies: Api<ConsensusPolicy> = Api::namespaced(ctx.client.clone(), &namespace);
    let policy = policies
        .get_opt(policy_name)
        .await
        .map_err(|source| Error::Kube {
            action: "reading the ConsensusPolicy of",
            object: format!("Strategy {}", key(s.as_ref())),
            source,
        })?;
    let policy = match policy.map(|p| (policy::check(&p), p)) {
        Some((Ok(()), p)) => p,
        problem => {
            let (reason, message) = match problem {
                None => (
                    "PolicyNotFound",
                    format!(
                        "ConsensusPolicy {policy_name} does not exist in namespace {namespace}"
                    ),
                ),
                Some((Err(why), _)) => (
                    "PolicyInvalid",
                    format!("ConsensusPolicy {policy_name} is invalid: {why}"),
                ),
                Some((Ok(()), _)) => unreachable!("handled above"),
            };
            let ready = condition(READY, false, reason, &message, generation);
            let transitioned = transition(&mut status.conditions, ready, now);
            if status != previous {
                apply_status(&api, s.as_ref(), &status, FIELD_MANAGER).await?;
            }
            if transitioned {
                event(&ctx, s.as_ref(), true, reason, "Reconcile", message).await;
            }
            return Ok(Action::requeue(WAITING));
        }
    };

    let nats_url = build::nats_url(&s);
    relay_answers(&s, &ctx, &api, &nats_url).await?;

    // a managed Postgres's password is generated once and never changes under the database
    if s.spec.dependencies.postgres.managed == Some(true) {
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
        let secret_name = build::postgres_secret_name(&s);
        let existing = secrets
            .get_opt(&secret_name)
            .await
            .map_err(|source| Error::Kube {
                action: "reading",
                object: format!("Secret {namespace}/{secret_name}"),
                source,
            })?;
        if existing.is_none() {
            // created, never applied: the operator may only get and create Secrets (no patch)
            let secret: Secret = decode(&build::postgres_secret(&s, None, ctx.generate_password)?)?;
            match secrets
                .create(&kube::api::PostParams::default(), &secret)
                .await
            {
                Ok(_) => {}
                // another reconcile created it first: its password stands
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(source) => {
                    return Err(Error::Kube {
                        action: "creating",
                        object: format!("Secret {namespace}/{secret_name}"),
                        source,
                    })
                }
            }
            event(
                &ctx,
                s.as_ref(),
                false,
                "SecretCreated",
                "Reconcile",
                format!("generated the Postgres password in Secret {secret_name}"),
            )
            .await;
        }
    }

    let applied = apply_all(&ctx.client, &build::objects(&s, &policy)?).await?;
    let dependencies = dependency_problems(&applied)?;
    let dependencies_ready = match dependencies.as_slice() {
        [] => condition(
            DEPENDENCIES_READY,
            true,
            "AllReady",
            describe_dependencies(&s),
            generation,
        ),
        waiting => condition(
            DEPENDENCIES_READY,
            false,
            "Waiting",
            waiting.join("; "),
            generation,
        ),
    };

    let assistants: Api<TradingAssistant> = Api::namespaced(ctx.client.clone(), &namespace);
    let team: Vec<TradingAssistant> = assistants
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Kube {
            action: "listing the TradingAssistants of",
            object: format!("Strategy {}", key(s.as_ref())),
            source,
        })?
        .items
        .into_iter()
        .filter(|ta| ta.spec.strategy_ref.name == name)
        .collect();
    let ready_count = team
        .iter()
        .filter(|ta| {
            ta.status
                .as_ref()
                .is_some_and(|st| condition_is_true(&st.conditions, READY))
        })
        .count() as u32;
    let counts = AssistantCounts {
        total: team.len() as u32,
        ready: ready_count,
    };
    let assistants_ready = if counts.total == 0 {
        condition(
            ASSISTANTS_READY,
            false,
            "NoAssistants",
            format!("no TradingAssistant references Strategy {name}"),
            generation,
        )
    } else if counts.ready == counts.total {
        condition(
            ASSISTANTS_READY,
            true,
            "AllReady",
            format!("{}/{} assistants ready", counts.ready, counts.total),
            generation,
        )
    } else {
        let waiting: Vec<String> = team
            .iter()
            .filter(|ta| {
                !ta.status
                    .as_ref()
                    .is_some_and(|st| condition_is_true(&st.conditions, READY))
            })
            .map(|ta| ta.name_any())
            .collect();
        condition(
            ASSISTANTS_READY,
            false,
            "NotReady",
            format!(
                "{}/{} assistants ready; waiting for {}",
                counts.ready,
                counts.total,
                waiting.join(", ")
            ),
            generation,
        )
    };
    status.assistants = Some(counts);

    let paused = if s.spec.paused {
        condition(
            PAUSED,
            true,
            "Paused",
            "spec.paused: the coordinator and every assistant are scaled to zero",
            generation,
        )
    } else {
        condition(PAUSED, false, "Running", "", generation)
    };
    let coordinator = applied
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .map(decode)
        .transpose()?
        .map(|d| deployment_ready(&d));
    let ready = if s.spec.paused {
        condition(
            READY,
            false,
            "Paused",
            "the team is paused (spec.paused)",
            generation,
        )
    } else if dependencies_ready.status != "True" {
        condition(
            READY,
            false,
            "DependenciesNotReady",
            dependencies_ready.message.clone(),
            generation,
        )
    } else if let Some(Err(why)) = coordinator {
        condition(READY, false, "CoordinatorNotReady", why, generation)
    } else if assistants_ready.status != "True" {
        condition(
            READY,
            false,
            "AssistantsNotReady",
            assistants_ready.message.clone(),
            generation,
        )
    } else {
        condition(
            READY,
            true,
            "Ready",
            format!(
                "trading {} in {} mode with {} assistants",
                s.spec.symbols.join(", "),
                match s.spec.mode {
                    protocol::crd::TradingMode::Paper => "paper",
                    protocol::crd::TradingMode::Live => "live",
                },
                team.len()
            ),
            generation,
        )
    };
    for c in [dependencies_ready, assistants_ready, paused] {
        if transition(&mut status.conditions, c.clone(), now.clone()) {
            event(
                &ctx,
                s.as_ref(),
                c.status != "True" && c.type_ != PAUSED,
                &c.reason,
                "Reconcile",
                format!("{}: {}", c.type_, c.message),
            )
            .await;
        }
    }
    if transition(&mut status.conditions, ready.clone(), now) {
        event(
            &ctx,
            s.as_ref(),
            ready.status != "True",
            &ready.reason,
            "Reconcile",
            ready.message.clone(),
        )
        .await;
    }
    if status != previous {
        apply_status(&api, s.as_ref(), &status, FIELD_MANAGER).await?;
    }
    ctx.decisions.ensure(&namespace, &name, &nats_url);
    let next = if ready.status == "True" || s.spec.paused {
        RESYNC
    } else {
        WAITING
    };
    Ok(Action::requeue(next))
}

/// Sets a condition; returns whether its status or reason changed (worth an Event).
fn transition(
    conditions: &mut Vec<Condition>,
    new: Condition,
    now: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> bool {
    let before =
        find_condition(conditions, &new.type_).map(|c| (c.status.clone(), c.reason.clone()));
    let after = (new.status.clone(), new.reason.clone());
    set_condition(conditions, new, now);
    before.as_ref() != Some(&after)
}

/// What the managed dependencies (as just applied, with their status) still wait for.
fn dependency_problems(applied: &[Value]) -> Result<Vec<String>, Error> {
    let mut waiting = Vec::new();
    for o in applied {
        let problem = match o["kind"].as_str() {
            Some("StatefulSet") => statefulset_ready(&decode(o)?),
            Some("Job") => job_succeeded(&decode(o)?),
            _ => Ok(()),
        };
        if let Err(why) = problem {
            waiting.push(why);
        }
    }
    Ok(waiting)
}

fn describe_dependencies(s: &Strategy) -> String {
    let d = &s.spec.dependencies;
    let how = |managed: Option<bool>| {
        if managed == Some(true) {
            "managed"
        } else {
            "external"
        }
    };
    let mut parts = vec![
        format!("nats {}", how(d.nats.managed)),
        format!("postgres {}", how(d.postgres.managed)),
    ];
    if let Some(o) = &d.ollama {
        parts.push(format!("ollama {}", how(o.managed)));
    }
    parts.join(", ")
}

/// Relays `approve`/`reject` annotations to the team's NATS, then removes them. If NATS cannot be
/// reached the annotation stays and the reconcile fails (retried with backoff): nothing is lost.
async fn relay_answers(
    s: &Strategy,
    ctx: &Context,
    api: &Api<Strategy>,
    nats_url: &str,
) -> Result<(), Error> {
    let namespace = s.namespace().unwrap_or_else(|| "default".into());
    let name = s.name_any();
    for (annotation, approved) in [(APPROVE_ANNOTATION, true), (REJECT_ANNOTATION, false)] {
        let Some(id) = s
            .annotations()
            .get(annotation)
            .map(|v| v.trim().to_string())
        else {
            continue;
        };
        let answer = EscalationResolution {
            id: id.clone(),
            approved,
            by: format!("annotation {annotation} on Strategy {namespace}/{name}"),
            at: k8s_openapi::jiff::Timestamp::now().as_millisecond(),
        };
        ctx.decisions
            .relay(&namespace, &name, nats_url, &answer)
            .await
            .map_err(|e| Error::Relay {
                strategy: format!("{namespace}/{name}"),
                reason: e.to_string(),
            })?;
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {annotation: null}}})),
        )
        .await
        .map_err(|source| Error::Kube {
            action: "removing the relayed annotation from",
            object: format!("Strategy {namespace}/{name}"),
            source,
        })?;
        event(
            ctx,
            s,
            false,
            if approved {
                "EscalationApproved"
            } else {
                "EscalationRejected"
            },
            "Relay",
            format!(
                "relayed {} of decision {id} to the coordinator",
                if approved { "approval" } else { "rejection" }
            ),
        )
        .await;
    }
    Ok(())
}
