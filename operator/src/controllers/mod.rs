//! The control plane (docs/architecture.md, "From a Strategy to running pods and back"): one
//! kube-runtime `Controller` per kind, each level-triggered and idempotent, applying children with
//! server-side apply under one field manager.
//!
//! - [`assistant`]: TradingAssistant → ConfigMap + NetworkPolicy + Deployment, status from the
//!   Deployment;
//! - [`strategy`]: Strategy → coordinator, managed dependencies, NetworkPolicies, team status,
//!   the approve/reject annotation relay;
//! - [`policy`]: ConsensusPolicy → `Valid`;
//! - [`conditions`]: readiness computed from the children's real status (pure functions);
//! - [`apply`]: server-side apply of the builders' objects, and Events (status writes are
//!   [`crate::status`]'s);
//! - [`metrics`]: reconcile counters and latency histograms per controller;
//! - [`leader`]: leader election on a Lease;
//! - [`run`]: wiring, leader election, health and metrics server, graceful shutdown.

pub mod apply;
pub mod assistant;
pub mod conditions;
pub mod leader;
pub mod metrics;
pub mod notifications;
pub mod policy;
pub mod run;
pub mod strategy;

use crate::decisions::DecisionWatchers;
use crate::resources::network::NetworkPolicySettings;
use crate::resources::BuildError;
pub use crate::status::key;
use crate::status::StatusError;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::Client;
use std::sync::Arc;
use std::time::Duration;

/// How often a converged object is looked at again anyway (level-triggered safety net).
pub const RESYNC: Duration = Duration::from_secs(300);
/// How soon an object waiting for something (its Strategy, a policy, a dependency) is retried.
pub const WAITING: Duration = Duration::from_secs(15);

/// What every reconcile needs.
pub struct Context {
    /// The Kubernetes client every controller shares.
    pub client: Client,
    /// Publishes the Events, as `trading-operator` with this replica as the instance.
    pub recorder: Recorder,
    /// Reconcile counters and latencies, shared with the `/metrics` server.
    pub metrics: Arc<metrics::Metrics>,
    /// The decision-stream consumers and the escalation relay, one NATS connection per Strategy.
    pub decisions: Arc<DecisionWatchers>,
    /// Generates a managed Postgres's password (only ever once per Strategy).
    pub generate_password: fn() -> String,
    /// The clock, so tests can pin condition times.
    pub now: fn() -> Time,
    /// Who may reach the teams' pods and where DNS and the internet are, for their NetworkPolicies.
    pub network: NetworkPolicySettings,
    /// Consecutive failures per object, for the error backoff.
    failures: std::sync::Mutex<std::collections::HashMap<String, u32>>,
}

impl Context {
    /// A context for the replica `instance` (its Lease identity), with the real clock, random
    /// passwords and the default NetworkPolicy settings.
    pub fn new(client: Client, instance: &str, decisions: Arc<DecisionWatchers>) -> Self {
        let reporter = Reporter {
            controller: crate::resources::FIELD_MANAGER.into(),
            instance: Some(instance.to_string()),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics: Arc::new(metrics::Metrics::default()),
            decisions,
            generate_password: random_password,
            now: || Time(k8s_openapi::jiff::Timestamp::now()),
            network: NetworkPolicySettings::default(),
            failures: Default::default(),
        }
    }

    /// Records a failure of `object` and returns how long to wait before the next try:
    /// 1 s, 2 s, 4 s, … up to 5 minutes.
    pub fn backoff(&self, object: &str) -> Duration {
        let mut failures = self.failures.lock().expect("failures lock");
        let n = failures.entry(object.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        Duration::from_secs(1u64 << (*n - 1).min(8)).min(Duration::from_secs(300))
    }

    /// Forgets the failures of `object` after a successful reconcile.
    pub fn succeeded(&self, object: &str) {
        self.failures.lock().expect("failures lock").remove(object);
    }
}

/// A 32-character alphanumeric password from the OS's random source.
pub fn random_password() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 32)
}

/// Why a reconcile failed; every variant names the object at fault. The controller requeues it
/// with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("{action} {object}: {source}")]
    Kube {
        /// What was being done, as the start of a sentence (`reading the Strategy of`).
        action: &'static str,
        /// The object at fault, kind and `namespace/name` (`Strategy default/btc`).
        object: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// A child object could not be built from the spec.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A human's approve/reject annotation could not be passed on to the team.
    #[error("Strategy {strategy}: relaying the escalation answer over NATS: {reason}")]
    Relay {
        /// The Strategy annotated, `namespace/name`.
        strategy: String,
        /// The NATS error.
        reason: String,
    },
    /// The NATS credentials a Strategy names cannot be used (a missing Secret or key).
    #[error("Strategy {strategy}: {field}: {reason}")]
    Credentials {
        /// The Strategy, `namespace/name`.
        strategy: String,
        /// The field that names them (`spec.dependencies.nats.credentialsSecretRef`).
        field: &'static str,
        /// What is missing (never a value).
        reason: String,
    },
    /// kube-runtime could not add or remove a finalizer (a failed apply or cleanup keeps its own
    /// error).
    #[error("finalizer of {object}: {reason}")]
    Finalizer {
        /// The object, kind and `namespace/name`.
        object: String,
        /// kube-runtime's finalizer error.
        reason: String,
    },
}

impl From<StatusError> for Error {
    /// A refused status write is an API error like any other (same message, same metric label).
    fn from(e: StatusError) -> Self {
        Error::Kube {
            action: "updating the status of",
            object: format!("{} {}", e.kind, e.object),
            source: e.source,
        }
    }
}

impl Error {
    /// A short label for the error metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kube",
            Error::Build(_) => "build",
            Error::Relay { .. } => "relay",
            Error::Credentials { .. } => "credentials",
            Error::Finalizer { .. } => "finalizer",
        }
    }
}

/// The controllers' error policy: count, log with the object's name, retry with exponential backoff.
pub fn error_policy<K: kube::Resource<DynamicType = ()>>(
    object: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let kind = K::kind(&());
    let object = format!("{kind} {}", key(object.as_ref()));
    ctx.metrics.failed(&kind, error);
    let delay = ctx.backoff(&object);
    tracing::warn!(%object, %error, retry_in_s = delay.as_secs(), "reconcile failed");
    Action::requeue(delay)
}
