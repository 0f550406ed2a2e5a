//! Readiness computed from the children's real status: pure functions, unit-tested here.

use crate::status::condition;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use protocol::crd::conditions::{DEGRADED, PROGRESSING, READY};

/// What a TradingAssistant's status says about its Deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentHealth {
    pub replicas: i32,
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
    let spec = &d.spec;
    let desired = spec.replicas.unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let observed = status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    let selector = spec
        .selector
        .match_labels
        .as_ref()
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
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
    let replica_failure =
        deployment_condition("ReplicaFailure").filter(|c| c.status.as_deref() == Some("True"));

    let ready_condition = if desired == 0 {
        condition(READY, true, "ScaledToZero", "0 pods wanted", generation)
    } else if ready >= desired && updated >= desired && observed {
        condition(
            READY,
            true,
            "PodsReady",
            format!("{ready}/{desired} pods ready"),
            generation,
        )
    } else {
        condition(
            READY,
            false,
            "PodsNotReady",
            format!("{ready}/{desired} pods ready"),
            generation,
        )
    };
    let rolling = !observed
        || updated < desired
        || status.replicas.unwrap_or(0) > updated
        || status.available_replicas.unwrap_or(0) < desired;
    let progressing = if deadline_exceeded {
        condition(
            PROGRESSING,
            false,
            "ProgressDeadlineExceeded",
            "the rollout did not finish within its progress deadline",
            generation,
        )
    } else if rolling && desired > 0 {
        condition(
            PROGRESSING,
            true,
            "RollingOut",
            format!("{updated}/{desired} pods updated"),
            generation,
        )
    } else {
        condition(
            PROGRESSING,
            false,
            "RolloutComplete",
            "every pod runs the current revision",
            generation,
        )
    };
    let degraded = if let Some(failure) = replica_failure {
        condition(
            DEGRADED,
            true,
            "ReplicaFailure",
            failure.message.unwrap_or_default(),
            generation,
        )
    } else if deadline_exceeded {
        condition(
            DEGRADED,
            true,
            "ProgressDeadlineExceeded",
            format!("{ready}/{desired} pods ready after the progress deadline"),
            generation,
        )
    } else {
        condition(DEGRADED, false, "AsExpected", "", generation)
    };
    DeploymentHealth {
        replicas: status.replicas.unwrap_or(0),
        ready_replicas: ready,
        selector,
        conditions: vec![ready_condition, progressing, degraded],
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
}
