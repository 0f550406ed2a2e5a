//! Strategy → the coordinator, the managed dependencies (NATS with one nkey per identity and
//! Postgres with a password, each generated once; Ollama with its model pull), NetworkPolicies;
//! status from the children's real state (`DependenciesReady`, `AssistantsReady`, `Paused`,
//! `Ready`, `status.assistants`); the approve/reject annotations relayed to NATS and removed; the
//! team's decision consumer started, connected as the team's `operator` identity, and stopped by a
//! finalizer when the Strategy goes.

use super::apply::{apply_children, event};
use super::conditions::{
    self, assistants_ready, dependencies_ready, deployment_ready, job_succeeded, policy_unusable,
    statefulset_ready, strategy_ready, transition, StrategyReadiness,
};
use super::{key, policy, Context, Error, RESYNC, WAITING};
use crate::decisions::TeamNats;
use crate::resources::nats::{self as nats_identity, PublicKeys};
use crate::resources::strategy::{self as build, Child};
use crate::resources::FIELD_MANAGER;
use crate::status::apply_status;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Error as FinalizerError, Event as Finalized};
use kube::{Api, ResourceExt};
use protocol::crd::conditions::{ASSISTANTS_READY, DEPENDENCIES_READY, PAUSED, READY};
use protocol::crd::{ConsensusPolicy, Strategy, StrategyStatus, TradingAssistant};
use protocol::messages::EscalationResolution;
use serde_json::json;
use std::sync::Arc;

/// The controller's name in metrics and logs.
pub const CONTROLLER: &str = "strategy";
/// Held while the Strategy's decision consumer runs; removed once it is stopped.
pub const FINALIZER: &str = "trading.ia-agents.dev/decision-consumer";
/// Annotation a human sets to approve an escalation (`trading.ia-agents.dev/approve: <decision
/// id>`); relayed to NATS, then removed.
pub const APPROVE_ANNOTATION: &str = "trading.ia-agents.dev/approve";
/// Annotation a human sets to reject an escalation, dropping the cycle (no order); relayed and
/// removed like [`APPROVE_ANNOTATION`].
pub const REJECT_ANNOTATION: &str = "trading.ia-agents.dev/reject";

/// The condition types this reconciler owns (the decision consumer owns the outcome ones).
const OWNED: [&str; 4] = [DEPENDENCIES_READY, ASSISTANTS_READY, PAUSED, READY];

/// Converges one Strategy behind its [`FINALIZER`]: children, conditions and decision consumer
/// while it exists; the consumer stopped once it is deleted.
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
        api_token_secret: previous.api_token_secret.clone(),
        ..Default::default()
    }
}

/// Converges one Strategy: its policy checked, escalation answers relayed, the generated Secrets
/// ensured, its children applied, then its conditions from what the children and the team report.
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
    let policy = match usable_policy(&s, &ctx, &namespace).await? {
        Ok(policy) => policy,
        Err(not_ready) => {
            let transitioned = transition(&mut status.conditions, not_ready.clone(), now);
            if status != previous {
                apply_status(&api, s.as_ref(), &status, FIELD_MANAGER).await?;
            }
            if transitioned {
                let (reason, message) = (not_ready.reason, not_ready.message);
                event(&ctx, s.as_ref(), true, &reason, "Reconcile", message).await;
            }
            return Ok(Action::requeue(WAITING));
        }
    };

    let (nats, nats_keys) = team_nats(&s, &ctx, &namespace).await?;
    relay_answers(&s, &ctx, &api, &nats).await?;
    ensure_generated_secrets(&s, &ctx, &namespace).await?;
    status.api_token_secret = Some(build::api_token_secret_name(&s));
    let team = team_of(&s, &ctx, &namespace).await?;
    let applied = apply_children(
        &ctx.client,
        &build::objects(&s, &policy, &team, &ctx.network, &nats_keys)?,
    )
    .await?;
    let dependencies = dependencies_ready(
        &dependency_problems(&applied),
        &s.spec.dependencies,
        generation,
    );
    let (counts, assistants) = assistants_ready(&name, &team, generation);
    status.assistants = Some(counts);
    let ready = strategy_ready(
        StrategyReadiness {
            strategy: &s,
            dependencies: &dependencies,
            coordinator: coordinator_ready(&applied),
            assistants: &assistants,
            team_size: team.len(),
        },
        generation,
    );
    let next = if ready.status == "True" || s.spec.paused {
        RESYNC
    } else {
        WAITING
    };
    let paused = conditions::paused(s.spec.paused, generation);
    let changes = [dependencies, assistants, paused, ready];
    record(&ctx, &s, &mut status.conditions, changes, now).await;
    if status != previous {
        apply_status(&api, s.as_ref(), &status, FIELD_MANAGER).await?;
    }
    ctx.decisions.ensure(&namespace, &name, &nats);
    Ok(Action::requeue(next))
}

/// The Strategy's ConsensusPolicy when it exists and is valid, else the `Ready=False` saying why.
async fn usable_policy(
    s: &Strategy,
    ctx: &Context,
    namespace: &str,
) -> Result<Result<ConsensusPolicy, Condition>, Error> {
    let policy_name = &s.spec.consensus_policy_ref.name;
    let policies: Api<ConsensusPolicy> = Api::namespaced(ctx.client.clone(), namespace);
    let policy = policies
        .get_opt(policy_name)
        .await
        .map_err(|source| Error::Kube {
            action: "reading the ConsensusPolicy of",
            object: format!("Strategy {}", key(s)),
            source,
        })?;
    let found = policy.as_ref().map(policy::check);
    match (
        policy,
        policy_unusable(policy_name, namespace, found, s.metadata.generation),
    ) {
        (Some(policy), None) => Ok(Ok(policy)),
        (_, Some(not_ready)) => Ok(Err(not_ready)),
        (None, None) => unreachable!("a missing policy is unusable"),
    }
}

/// Creates the Secrets the operator generates when they do not exist yet: a managed Postgres's
/// password, the coordinator API's token and the audit chain's key. Each value is generated once
/// and never changes under what uses it, so the Secrets are created, never applied (the operator
/// may only get and create Secrets, not patch them).
async fn ensure_generated_secrets(
    s: &Strategy,
    ctx: &Context,
    namespace: &str,
) -> Result<(), Error> {
    if s.spec.dependencies.postgres.managed == Some(true) {
        let secret = build::postgres_secret(s, None, ctx.generate_password)?;
        ensure_secret(s, ctx, namespace, secret, "the Postgres password").await?;
    }
    let token = build::api_token_secret(s, ctx.generate_password);
    ensure_secret(s, ctx, namespace, token, "the API token").await?;
    let key = build::audit_key_secret(s, ctx.generate_password);
    ensure_secret(s, ctx, namespace, key, "the audit chain's key").await?;
    Ok(())
}

/// How the operator reaches the team's NATS, and the public keys of the team's identities that a
/// managed NATS's configuration lists. A managed NATS's nkeys are generated once into their Secret
/// (created, never patched: a new seed would lock out the pods holding the old one) and read back;
/// the operator connects as the `operator` identity of the generated or the referenced Secret.
async fn team_nats(
    s: &Strategy,
    ctx: &Context,
    namespace: &str,
) -> Result<(TeamNats, PublicKeys), Error> {
    let url = build::nats_url(s);
    let dependency = &s.spec.dependencies.nats;
    let (secret_name, values) = if dependency.is_managed() {
        let generated = nats_identity::credentials_secret(s, nats_identity::generate_seeds(s)?);
        let what = "the NATS identities' nkeys";
        let stored = ensure_secret(s, ctx, namespace, generated, what).await?;
        let name = nats_identity::credentials_secret_name(&s.name_any());
        (name, nats_identity::secret_values(&stored))
    } else if let Some(reference) = &dependency.credentials_secret_ref {
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
        let found = secrets
            .get_opt(&reference.name)
            .await
            .map_err(|source| Error::Kube {
                action: "reading the NATS credentials of",
                object: format!("Strategy {}", key(s)),
                source,
            })?;
        let Some(secret) = found else {
            return Err(Error::Credentials {
                strategy: key(s),
                field: "spec.dependencies.nats.credentialsSecretRef",
                reason: format!("Secret {namespace}/{} not found", reference.name),
            });
        };
        (
            reference.name.clone(),
            nats_identity::secret_values(&secret),
        )
    } else {
        return Ok((TeamNats::anonymous(url), PublicKeys::default()));
    };
    let operator = protocol::nats_auth::OPERATOR;
    let Some(seed) = values.get(operator) else {
        return Err(Error::Credentials {
            strategy: key(s),
            field: "spec.dependencies.nats",
            reason: format!("Secret {namespace}/{secret_name} has no key {operator} (the operator's NATS identity)"),
        });
    };
    let keys = if dependency.is_managed() {
        PublicKeys::from_seeds(s, &secret_name, &values)?
    } else {
        PublicKeys::default()
    };
    Ok((TeamNats::with_nkey(url, seed.clone()), keys))
}

/// Creates `secret` unless it exists; an event says what was generated where. Returns the Secret
/// as stored: the existing one, else the one created.
async fn ensure_secret(
    s: &Strategy,
    ctx: &Context,
    namespace: &str,
    secret: Secret,
    what: &str,
) -> Result<Secret, Error> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let secret_name = secret.metadata.name.clone().unwrap_or_default();
    let kube_error = |action: &'static str| {
        let object = format!("Secret {namespace}/{secret_name}");
        move |source| Error::Kube {
            action,
            object,
            source,
        }
    };
    if let Some(existing) = secrets
        .get_opt(&secret_name)
        .await
        .map_err(kube_error("reading"))?
    {
        return Ok(existing);
    }
    let stored = match secrets
        .create(&kube::api::PostParams::default(), &secret)
        .await
    {
        Ok(created) => created,
        // another reconcile created it first: its value stands
        Err(kube::Error::Api(e)) if e.code == 409 => secrets
            .get(&secret_name)
            .await
            .map_err(kube_error("reading"))?,
        Err(source) => return Err(kube_error("creating")(source)),
    };
    let note = format!("generated {what} in Secret {secret_name}");
    event(ctx, s, false, "SecretCreated", "Reconcile", note).await;
    Ok(stored)
}

/// The TradingAssistants that reference the Strategy.
async fn team_of(
    s: &Strategy,
    ctx: &Context,
    namespace: &str,
) -> Result<Vec<TradingAssistant>, Error> {
    let assistants: Api<TradingAssistant> = Api::namespaced(ctx.client.clone(), namespace);
    let name = s.name_any();
    Ok(assistants
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Kube {
            action: "listing the TradingAssistants of",
            object: format!("Strategy {}", key(s)),
            source,
        })?
        .items
        .into_iter()
        .filter(|ta| ta.spec.strategy_ref.name == name)
        .collect())
}

/// Sets the conditions, with an Event for each one that changed status or reason. A dependency or
/// the team not being ready is a warning, `Paused` never is; their Events say which condition.
async fn record(
    ctx: &Context,
    s: &Strategy,
    conditions: &mut Vec<Condition>,
    changes: [Condition; 4],
    now: Time,
) {
    for c in changes {
        let before = protocol::crd::find_condition(conditions, &c.type_).map(|c| c.status.clone());
        if !transition(conditions, c.clone(), now.clone()) {
            continue;
        }
        // thrown, or released after it was on (not the first look at a running Strategy)
        if c.type_ == PAUSED && (c.status == "True" || before.as_deref() == Some("True")) {
            super::notifications::tell_kill_switch(ctx, s, c.status == "True");
        }
        let (warning, note) = if c.type_ == READY {
            (c.status != "True", c.message)
        } else {
            (
                c.status != "True" && c.type_ != PAUSED,
                format!("{}: {}", c.type_, c.message),
            )
        };
        event(ctx, s, warning, &c.reason, "Reconcile", note).await;
    }
}

/// What the managed dependencies (as just applied, with their status) still wait for.
fn dependency_problems(applied: &[Child]) -> Vec<String> {
    applied
        .iter()
        .filter_map(|child| match child {
            Child::StatefulSet(s) => statefulset_ready(s).err(),
            Child::Job(j) => job_succeeded(j).err(),
            _ => None,
        })
        .collect()
}

/// Whether the coordinator Deployment (as just applied) has its pod ready.
fn coordinator_ready(applied: &[Child]) -> Option<Result<(), String>> {
    applied.iter().find_map(|child| match child {
        Child::Deployment(d) => Some(deployment_ready(d)),
        _ => None,
    })
}

/// Relays `approve`/`reject` annotations to the team's NATS, then removes them. If NATS cannot be
/// reached the annotation stays and the reconcile fails (retried with backoff): nothing is lost.
async fn relay_answers(
    s: &Strategy,
    ctx: &Context,
    api: &Api<Strategy>,
    nats: &TeamNats,
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
            id: id.clone().into(),
            approved,
            by: format!("annotation {annotation} on Strategy {namespace}/{name}"),
            at: k8s_openapi::jiff::Timestamp::now().as_millisecond(),
        };
        ctx.decisions
            .relay(&namespace, &name, nats, &answer)
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
