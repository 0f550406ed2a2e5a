//! Readiness computed from the children's real status: pure functions, unit-tested here.

use crate::status::condition;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use protocol::crd::conditions::{
    ASSISTANTS_READY, DEGRADED, DEPENDENCIES_READY, PAUSED, PROGRESSING, READY,
};
use protocol::crd::{
    condition_is_true, find_condition, set_condition, AssistantCounts, DependenciesSpec, Strategy,
    TradingAssistant, TradingMode,
};

/// What a TradingAssistant's status says about its Deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentHealth {
    /// Pods the Deployment has (`status.replicas`), for the scale subresource.
    pub replicas: i32,
    /// Pods of it that are ready (`status.readyReplicas`).
    pub ready_replicas: i32,
    /// `k=v,...` of the pod selector, for the scale subresource.
    pub selector: String,
    /// Ready, Progressing and Degraded.
    pub conditions: Vec<Condition>,
}

/// Reads a Deployment the way `kubectl rollout status` does: Ready when every wanted pod of the
/// current revision is ready; Progressing while a rollout is under way; Degraded when the rollout
/// exceeded its deadline or pods cannot be created.
pub fn deployment_health(d: &Deployment, generation: Option<i64>) -> DeploymentHealth {
    let rollout = Rollout::of(d);
    DeploymentHealth {
        replicas: rollout.replicas,
        ready_replicas: rollout.ready,
        selector: match_labels(d),
        conditions: vec![
            rollout.ready(generation),
            rollout.progressing(generation),
            rollout.degraded(generation),
        ],
    }
}

/// `k=v,...` of a Deployment's `matchLabels`.
fn match_labels(d: &Deployment) -> String {
    d.spec
        .selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Where a Deployment's rollout stands, from its spec and status.
struct Rollout {
    desired: i32,
    replicas: i32,
    ready: i32,
    updated: i32,
    /// The Deployment controller has seen the current spec.
    observed: bool,
    /// Pods of an older revision remain, or too few are available.
    rolling: bool,
    /// `Progressing=False/ProgressDeadlineExceeded`.
    deadline_exceeded: bool,
    /// The message of `ReplicaFailure=True`.
    replica_failure: Option<String>,
}

impl Rollout {
    fn of(d: &Deployment) -> Self {
        let desired = d.spec.replicas.unwrap_or(1);
        let status = d.status.clone().unwrap_or_default();
        let updated = status.updated_replicas.unwrap_or(0);
        let replicas = status.replicas.unwrap_or(0);
        let observed =
            status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
        let deployment_condition = |type_: &str| {
            status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_.as_deref() == Some(type_))
                .cloned()
        };
        let deadline_exceeded = deployment_condition("Progressing").is_some_and(|c| {
            c.status.as_deref() == Some("False")
                && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        });
        let replica_failure = deployment_condition("ReplicaFailure")
            .filter(|c| c.status.as_deref() == Some("True"))
            .map(|c| c.message.unwrap_or_default());
        Rollout {
            desired,
            replicas,
            ready: status.ready_replicas.unwrap_or(0),
            updated,
            observed,
            rolling: !observed
                || updated < desired
                || replicas > updated
                || status.available_replicas.unwrap_or(0) < desired,
            deadline_exceeded,
            replica_failure,
        }
    }

    fn ready(&self, generation: Option<i64>) -> Condition {
        let (ready, desired) = (self.ready, self.desired);
        if desired == 0 {
            condition(READY, true, "ScaledToZero", "0 pods wanted", generation)
        } else {
            let all = ready >= desired && self.updated >= desired && self.observed;
            let reason = if all { "PodsReady" } else { "PodsNotReady" };
            let message = format!("{ready}/{desired} pods ready");
            condition(READY, all, reason, message, generation)
        }
    }

    fn progressing(&self, generation: Option<i64>) -> Condition {
        if self.deadline_exceeded {
            condition(
                PROGRESSING,
                false,
                "ProgressDeadlineExceeded",
                "the rollout did not finish within its progress deadline",
                generation,
            )
        } else if self.rolling && self.desired > 0 {
            let message = format!("{}/{} pods updated", self.updated, self.desired);
            condition(PROGRESSING, true, "RollingOut", message, generation)
        } else {
            condition(
                PROGRESSING,
                false,
                "RolloutComplete",
                "every pod runs the current revision",
                generation,
            )
        }
    }

    fn degraded(&self, generation: Option<i64>) -> Condition {
        if let Some(message) = &self.replica_failure {
            condition(DEGRADED, true, "ReplicaFailure", message, generation)
        } else if self.deadline_exceeded {
            let message = format!(
                "{}/{} pods ready after the progress deadline",
                self.ready, self.desired
            );
            condition(
                DEGRADED,
                true,
                "ProgressDeadlineExceeded",
                message,
                generation,
            )
        } else {
            condition(DEGRADED, false, "AsExpected", "", generation)
        }
    }
}

/// A TradingAssistant's `Ready=False` while its Strategy does not exist (it is retried, not failed).
pub fn strategy_not_found(strategy: &str, namespace: &str, generation: Option<i64>) -> Condition {
    condition(
        READY,
        false,
        "StrategyNotFound",
        format!(
            "Strategy {strategy} does not exist in namespace {namespace}; retrying until it does"
        ),
        generation,
    )
}

/// Sets a condition; returns whether its status or reason changed (worth an Event). A new message
/// alone (`2/3 ready` → `3/3 ready`) is no transition.
pub fn transition(conditions: &mut Vec<Condition>, new: Condition, now: Time) -> bool {
    let before =
        find_condition(conditions, &new.type_).map(|c| (c.status.clone(), c.reason.clone()));
    let after = (new.status.clone(), new.reason.clone());
    set_condition(conditions, new, now);
    before.as_ref() != Some(&after)
}

/// A Strategy's `Ready=False` when its ConsensusPolicy `name` cannot be used, `None` when it can.
/// `found` is the policy's [`check`](super::policy::check), `None` when it does not exist.
pub fn policy_unusable(
    name: &str,
    namespace: &str,
    found: Option<Result<(), String>>,
    generation: Option<i64>,
) -> Option<Condition> {
    let (reason, message) = match found {
        Some(Ok(())) => return None,
        None => (
            "PolicyNotFound",
            format!("ConsensusPolicy {name} does not exist in namespace {namespace}"),
        ),
        Some(Err(why)) => (
            "PolicyInvalid",
            format!("ConsensusPolicy {name} is invalid: {why}"),
        ),
    };
    Some(condition(READY, false, reason, message, generation))
}

/// `DependenciesReady`: true when nothing is `waiting` (each entry says what a managed dependency
/// waits for); its message then says which dependencies are managed and which external.
pub fn dependencies_ready(
    waiting: &[String],
    dependencies: &DependenciesSpec,
    generation: Option<i64>,
) -> Condition {
    if waiting.is_empty() {
        condition(
            DEPENDENCIES_READY,
            true,
            "AllReady",
            describe_dependencies(dependencies),
            generation,
        )
    } else {
        condition(
            DEPENDENCIES_READY,
            false,
            "Waiting",
            waiting.join("; "),
            generation,
        )
    }
}

/// `nats managed, postgres external, ollama managed`.
fn describe_dependencies(d: &DependenciesSpec) -> String {
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

/// The team's counts and `AssistantsReady` for Strategy `strategy`, from its TradingAssistants'
/// own `Ready` conditions. A team of none is not ready: a Strategy without assistants cannot decide.
pub fn assistants_ready(
    strategy: &str,
    team: &[TradingAssistant],
    generation: Option<i64>,
) -> (AssistantCounts, Condition) {
    let is_ready = |ta: &TradingAssistant| {
        ta.status
            .as_ref()
            .is_some_and(|st| condition_is_true(&st.conditions, READY))
    };
    let counts = AssistantCounts {
        total: team.len() as u32,
        ready: team.iter().filter(|ta| is_ready(ta)).count() as u32,
    };
    let ready = if counts.total == 0 {
        condition(
            ASSISTANTS_READY,
            false,
            "NoAssistants",
            format!("no TradingAssistant references Strategy {strategy}"),
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
            .filter(|ta| !is_ready(ta))
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
    (counts, ready)
}

/// `Paused`, from `spec.paused`.
pub fn paused(paused: bool, generation: Option<i64>) -> Condition {
    if paused {
        condition(
            PAUSED,
            true,
            "Paused",
            "spec.paused: the coordinator and every assistant are scaled to zero",
            generation,
        )
    } else {
        condition(PAUSED, false, "Running", "", generation)
    }
}

/// What a Strategy's `Ready` is computed from.
pub struct StrategyReadiness<'a> {
    /// The Strategy whose `Ready` this is (its spec: paused, mode, symbols).
    pub strategy: &'a Strategy,
    /// `DependenciesReady`, as [`dependencies_ready`] computed it.
    pub dependencies: &'a Condition,
    /// The coordinator Deployment's [`deployment_ready`], `None` when there is none.
    pub coordinator: Option<Result<(), String>>,
    /// `AssistantsReady`, as [`assistants_ready`] computed it.
    pub assistants: &'a Condition,
    /// How many TradingAssistants reference the Strategy.
    pub team_size: usize,
}

/// A Strategy's `Ready`: the first of paused, dependencies, coordinator and assistants that is not
/// ready says why; otherwise what the team trades.
pub fn strategy_ready(r: StrategyReadiness<'_>, generation: Option<i64>) -> Condition {
    let spec = &r.strategy.spec;
    if spec.paused {
        condition(
            READY,
            false,
            "Paused",
            "the team is paused (spec.paused)",
            generation,
        )
    } else if r.dependencies.status != "True" {
        condition(
            READY,
            false,
            "DependenciesNotReady",
            r.dependencies.message.clone(),
            generation,
        )
    } else if let Some(Err(why)) = r.coordinator {
        condition(READY, false, "CoordinatorNotReady", why, generation)
    } else if r.assistants.status != "True" {
        condition(
            READY,
            false,
            "AssistantsNotReady",
            r.assistants.message.clone(),
            generation,
        )
    } else {
        let mode = match spec.mode {
            TradingMode::Paper => "paper",
            TradingMode::Live => "live",
        };
        condition(
            READY,
            true,
            "Ready",
            format!(
                "trading {} in {mode} mode with {} assistants",
                spec.symbols.join(", "),
                r.team_size
            ),
            generation,
        )
    }
}

/// `Ok` when every wanted replica of a StatefulSet is ready, else what it is waiting for.
pub fn statefulset_ready(s: &StatefulSet) -> Result<(), String> {
    let name = s.metadata.name.as_deref().unwrap_or_default();
    let desired = s.spec.replicas.unwrap_or(1);
    let ready = s
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    if ready >= desired {
        Ok(())
    } else {
        Err(format!("StatefulSet {name}: {ready}/{desired} ready"))
    }
}

/// `Ok` when a Deployment has every wanted pod ready.
pub fn deployment_ready(d: &Deployment) -> Result<(), String> {
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let health = deployment_health(d, None);
    if health.conditions[0].status == "True" {
        Ok(())
    } else {
        Err(format!(
            "Deployment {name}: {}",
            health.conditions[0].message
        ))
    }
}

/// `Ok` when a Job succeeded; an error says whether it is still running or failed.
pub fn job_succeeded(j: &Job) -> Result<(), String> {
    let name = j.metadata.name.as_deref().unwrap_or_default();
    let status = j.status.clone().unwrap_or_default();
    if status.succeeded.unwrap_or(0) > 0 {
        return Ok(());
    }
    let failed = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Failed" && c.status == "True");
    match failed {
        Some(c) => Err(format!(
            "Job {name} failed: {}",
            c.message.clone().unwrap_or_default()
        )),
        None => Err(format!("Job {name} is still running")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(replicas: i32, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "d", "generation": 2},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"a": "1", "b": "2"}},
                     "template": {}},
            "status": status,
        }))
        .unwrap()
    }

    fn find<'a>(h: &'a DeploymentHealth, t: &str) -> &'a Condition {
        h.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn a_rolled_out_deployment_is_ready_and_not_progressing() {
        let h = deployment_health(
            &deployment(
                3,
                json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3,
                                  "updatedReplicas": 3, "availableReplicas": 3}),
            ),
            Some(7),
        );
        assert_eq!((h.replicas, h.ready_replicas), (3, 3));
        assert_eq!(h.selector, "a=1,b=2");
        assert_eq!(find(&h, READY).status, "True");
        assert_eq!(find(&h, READY).observed_generation, Some(7));
        assert_eq!(find(&h, PROGRESSING).reason, "RolloutComplete");
        assert_eq!(find(&h, DEGRADED).status, "False");
    }

    #[test]
    fn a_scale_up_in_flight_is_progressing_and_not_ready() {
        let h = deployment_health(
            &deployment(
                3,
                json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 1,
                                  "updatedReplicas": 3, "availableReplicas": 1}),
            ),
            None,
        );
        assert_eq!(find(&h, READY).status, "False");
        assert_eq!(find(&h, READY).message, "1/3 pods ready");
        assert_eq!(find(&h, PROGRESSING).reason, "RollingOut");
        // a new spec the Deployment controller has not seen yet is not ready either
        let h = deployment_health(
            &deployment(
                3,
                json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 3,
                                  "updatedReplicas": 3, "availableReplicas": 3}),
            ),
            None,
        );
        assert_eq!(find(&h, READY).status, "False");
    }

    #[test]
    fn a_stuck_rollout_is_degraded() {
        let h = deployment_health(
            &deployment(
                2,
                json!({"observedGeneration": 2, "replicas": 2, "readyReplicas": 0,
                "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"},
                               {"type": "ReplicaFailure", "status": "True", "message": "quota exceeded"}]}),
            ),
            None,
        );
        assert_eq!(find(&h, DEGRADED).status, "True");
        assert_eq!(find(&h, DEGRADED).message, "quota exceeded");
        assert_eq!(find(&h, PROGRESSING).reason, "ProgressDeadlineExceeded");
    }

    #[test]
    fn zero_replicas_is_ready_by_design() {
        let h = deployment_health(&deployment(0, json!({"observedGeneration": 2})), None);
        assert_eq!(find(&h, READY).reason, "ScaledToZero");
    }

    #[test]
    fn dependencies_report_what_they_wait_for() {
        let s: StatefulSet = serde_json::from_value(json!({"metadata": {"name": "x-nats"},
            "spec": {"replicas": 1, "selector": {}, "template": {}, "serviceName": "x"},
            "status": {"replicas": 1, "readyReplicas": 0}}))
        .unwrap();
        assert_eq!(
            statefulset_ready(&s).unwrap_err(),
            "StatefulSet x-nats: 0/1 ready"
        );
        let j: Job = serde_json::from_value(json!({"metadata": {"name": "pull"}, "spec": {"template": {}},
            "status": {"conditions": [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]}}))
        .unwrap();
        assert!(job_succeeded(&j)
            .unwrap_err()
            .contains("failed: BackoffLimitExceeded"));
    }

    fn at(second: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(second).unwrap())
    }

    #[test]
    fn only_a_new_status_or_reason_is_a_transition() {
        let mut conditions = Vec::new();
        let first = condition(READY, false, "PodsNotReady", "0/2 pods ready", None);
        assert!(transition(&mut conditions, first, at(1)));
        let message_only = condition(READY, false, "PodsNotReady", "1/2 pods ready", None);
        assert!(!transition(&mut conditions, message_only, at(2)));
        assert_eq!(conditions[0].message, "1/2 pods ready");
        let ready = condition(READY, true, "PodsReady", "2/2 pods ready", None);
        assert!(transition(&mut conditions, ready, at(3)));
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, at(3));
    }

    #[test]
    fn a_missing_or_invalid_policy_is_named() {
        assert_eq!(policy_unusable("p", "ns", Some(Ok(())), None), None);
        let missing = policy_unusable("p", "ns", None, Some(3)).unwrap();
        assert_eq!(
            (missing.type_.as_str(), missing.status.as_str()),
            (READY, "False")
        );
        assert_eq!(missing.reason, "PolicyNotFound");
        assert_eq!(
            missing.message,
            "ConsensusPolicy p does not exist in namespace ns"
        );
        assert_eq!(missing.observed_generation, Some(3));
        let invalid = policy_unusable("p", "ns", Some(Err("spec.quorum: too low".into())), None);
        let invalid = invalid.unwrap();
        assert_eq!(invalid.reason, "PolicyInvalid");
        assert_eq!(
            invalid.message,
            "ConsensusPolicy p is invalid: spec.quorum: too low"
        );
    }

    #[test]
    fn dependencies_say_what_they_wait_for_or_how_they_are_run() {
        let mut deps = DependenciesSpec::default();
        let ready = dependencies_ready(&[], &deps, None);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "AllReady")
        );
        assert_eq!(ready.message, "nats managed, postgres managed");
        deps.postgres = protocol::crd::Dependency {
            url: Some("postgres://db:5432/ia".into()),
            ..Default::default()
        };
        deps.ollama = Some(protocol::crd::OllamaDependency {
            managed: Some(true),
            ..Default::default()
        });
        let ready = dependencies_ready(&[], &deps, None);
        assert_eq!(
            ready.message,
            "nats managed, postgres external, ollama managed"
        );
        let waiting = [
            "StatefulSet a: 0/1 ready".to_string(),
            "Job b is still running".into(),
        ];
        let waiting = dependencies_ready(&waiting, &deps, None);
        assert_eq!(
            (waiting.status.as_str(), waiting.reason.as_str()),
            ("False", "Waiting")
        );
        assert_eq!(
            waiting.message,
            "StatefulSet a: 0/1 ready; Job b is still running"
        );
    }

    fn assistant(name: &str, ready: Option<bool>) -> TradingAssistant {
        let status = ready.map(|r| {
            json!({"conditions": [{"type": READY, "status": if r { "True" } else { "False" },
                "reason": "x", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]})
        });
        serde_json::from_value(json!({
            "apiVersion": "trading.ia-agents.dev/v1alpha1", "kind": "TradingAssistant",
            "metadata": {"name": name},
            "spec": {"strategyRef": {"name": "s"}, "role": "strategist"},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn the_team_is_ready_when_every_assistant_is() {
        let (counts, c) = assistants_ready("s", &[], None);
        assert_eq!((counts.total, counts.ready), (0, 0));
        assert_eq!(c.reason, "NoAssistants");
        assert_eq!(c.message, "no TradingAssistant references Strategy s");

        let team = [
            assistant("a", Some(true)),
            assistant("b", Some(false)),
            assistant("c", None),
        ];
        let (counts, c) = assistants_ready("s", &team, None);
        assert_eq!((counts.total, counts.ready), (3, 1));
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "NotReady")
        );
        assert_eq!(c.message, "1/3 assistants ready; waiting for b, c");

        let (counts, c) = assistants_ready("s", &team[..1], None);
        assert_eq!((counts.total, counts.ready), (1, 1));
        assert_eq!(
            (c.status.as_str(), c.message.as_str()),
            ("True", "1/1 assistants ready")
        );
    }

    #[test]
    fn paused_is_its_own_condition() {
        assert_eq!(paused(true, None).reason, "Paused");
        assert_eq!(paused(true, None).status, "True");
        let running = paused(false, Some(2));
        assert_eq!(
            (running.status.as_str(), running.reason.as_str()),
            ("False", "Running")
        );
        assert_eq!(running.observed_generation, Some(2));
    }

    #[test]
    fn a_strategy_is_ready_when_nothing_before_it_is_not() {
        let mut s: Strategy = serde_json::from_value(json!({
            "apiVersion": "trading.ia-agents.dev/v1alpha1", "kind": "Strategy",
            "metadata": {"name": "s"},
            "spec": {"symbols": ["BTCUSDT", "ETHUSDT"], "interval": "1h", "mode": "paper",
                     "capital": 1000, "consensusPolicyRef": {"name": "p"}},
        }))
        .unwrap();
        let deps_ready = dependencies_ready(&[], &s.spec.dependencies, None);
        let deps_waiting = dependencies_ready(&["NATS: 0/1".into()], &s.spec.dependencies, None);
        let team_ready = assistants_ready("s", &[assistant("a", Some(true))], None).1;
        let team_waiting = assistants_ready("s", &[], None).1;
        let ready = |s: &Strategy, deps, coordinator, team, size| {
            strategy_ready(
                StrategyReadiness {
                    strategy: s,
                    dependencies: deps,
                    coordinator,
                    assistants: team,
                    team_size: size,
                },
                Some(4),
            )
        };

        let c = ready(&s, &deps_ready, Some(Ok(())), &team_ready, 1);
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "Ready"));
        assert_eq!(
            c.message,
            "trading BTCUSDT, ETHUSDT in paper mode with 1 assistants"
        );
        assert_eq!(c.observed_generation, Some(4));
        // no coordinator (yet) does not hold the team back
        assert_eq!(ready(&s, &deps_ready, None, &team_ready, 1).status, "True");

        let c = ready(&s, &deps_ready, Some(Ok(())), &team_waiting, 0);
        assert_eq!(c.reason, "AssistantsNotReady");
        assert_eq!(c.message, team_waiting.message);
        let c = ready(
            &s,
            &deps_ready,
            Some(Err("Deployment c: 0/1 pods ready".into())),
            &team_waiting,
            0,
        );
        assert_eq!(
            (c.reason.as_str(), c.message.as_str()),
            ("CoordinatorNotReady", "Deployment c: 0/1 pods ready")
        );
        let c = ready(&s, &deps_waiting, Some(Err("x".into())), &team_waiting, 0);
        assert_eq!(
            (c.reason.as_str(), c.message.as_str()),
            ("DependenciesNotReady", "NATS: 0/1")
        );
        s.spec.paused = true;
        let c = ready(&s, &deps_waiting, Some(Err("x".into())), &team_waiting, 0);
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "Paused"));
    }

    #[test]
    fn an_assistant_without_its_strategy_says_where_it_looked() {
        let c = strategy_not_found("team", "trading", Some(5));
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "StrategyNotFound")
        );
        assert_eq!(
            c.message,
            "Strategy team does not exist in namespace trading; retrying until it does"
        );
        assert_eq!(c.observed_generation, Some(5));
    }
}
