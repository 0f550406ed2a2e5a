//! Delivery: one queue and one task per target, so that a slow channel delays only itself; each
//! message is retried with exponential backoff on what may pass (a network error, 429, 5xx) and
//! given up on what will not (any other 4xx).

use crate::{Event, Target};
use backon::{ExponentialBuilder, Retryable};
use prometheus::{register_int_counter_vec, IntCounterVec};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// Messages waiting per target; beyond it new ones are dropped (and counted), never waited for.
pub const QUEUE: usize = 256;

/// Notifications by target and outcome (`sent`, `failed` after every retry, `dropped` on a full
/// queue), in the default registry that `/metrics` serves.
static NOTIFICATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "ia_notifications_total",
        "Notifications by target and outcome (sent, failed, dropped)",
        &["target", "outcome"]
    )
    .expect("registered once")
});

/// How hard a message is tried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// The wait before the first retry; it doubles (with jitter) up to `max_delay`.
    pub first_delay: Duration,
    /// The longest wait between two attempts (60 s by default).
    pub max_delay: Duration,
    /// Retries after the first attempt.
    pub retries: usize,
    /// Each attempt's own limit.
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            retries: 6,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why one attempt failed; never carries the target's address.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("{0}")]
    Transport(reqwest::Error),
}

impl Failure {
    fn may_pass(&self) -> bool {
        match self {
            Self::Status(status) => {
                status.is_server_error() || *status == reqwest::StatusCode::TOO_MANY_REQUESTS
            }
            Self::Transport(_) => true,
        }
    }
}

/// Posts `event` to `target`, retrying as `retry` says; the error names the last failure.
pub async fn deliver_once(
    client: &reqwest::Client,
    target: &Target,
    event: &Event,
    retry: Retry,
) -> Result<(), String> {
    let body = target.body(event);
    let attempt = || async {
        let response = client
            .post(target.address())
            .timeout(retry.timeout)
            .json(&body)
            .send()
            .await
            .map_err(|e| Failure::Transport(e.without_url()))?;
        match response.status() {
            status if status.is_success() => Ok(()),
            status => Err(Failure::Status(status)),
        }
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(retry.first_delay)
        .with_max_delay(retry.max_delay)
        .with_max_times(retry.retries)
        .with_jitter();
    attempt
        .retry(backoff)
        .when(Failure::may_pass)
        .notify(|failure, wait| {
            tracing::debug!(target = %target.name, %failure, ?wait, "notification not delivered; retrying");
        })
        .await
        .map_err(|failure| failure.to_string())
}

/// Hands events to their targets without ever waiting for a channel. Cheap to clone; a notifier
/// without targets does nothing.
#[derive(Clone, Default)]
pub struct Notifier {
    queues: Vec<(Arc<Target>, mpsc::Sender<Event>)>,
}

impl Notifier {
    /// A notifier with no targets.
    pub fn none() -> Self {
        Self::default()
    }

    /// Starts one delivery task per target (on the current Tokio runtime).
    pub fn spawn(targets: Vec<Target>, retry: Retry) -> Self {
        let client = reqwest::Client::new();
        let queues = targets
            .into_iter()
            .map(|target| {
                let target = Arc::new(target);
                let (tx, rx) = mpsc::channel(QUEUE);
                tokio::spawn(drain(client.clone(), target.clone(), rx, retry));
                (target, tx)
            })
            .collect();
        Self { queues }
    }

    /// Whether any target is configured.
    pub fn is_active(&self) -> bool {
        !self.queues.is_empty()
    }

    /// As [`Notifier::notify`], building the event only when there is a target to tell: the
    /// engine calls this on every fill of a replay.
    pub fn send(&self, event: impl FnOnce() -> Event) {
        if self.is_active() {
            self.notify(event());
        }
    }

    /// Queues `event` for every target that wants it; a full queue drops it (counted and logged).
    pub fn notify(&self, event: Event) {
        for (target, queue) in &self.queues {
            if !target.wants(event.event) {
                continue;
            }
            if queue.try_send(event.clone()).is_err() {
                NOTIFICATIONS
                    .with_label_values(&[&target.name, "dropped"])
                    .inc();
                tracing::warn!(target = %target.name, "notification queue full or closed: message dropped");
            }
        }
    }
}

/// Delivers a target's queue in order until every sender is gone.
async fn drain(
    client: reqwest::Client,
    target: Arc<Target>,
    mut queue: mpsc::Receiver<Event>,
    retry: Retry,
) {
    while let Some(event) = queue.recv().await {
        let outcome = match deliver_once(&client, &target, &event, retry).await {
            Ok(()) => "sent",
            Err(failure) => {
                tracing::warn!(target = %target.name, %failure, event = ?event.event, "notification given up after its retries");
                "failed"
            }
        };
        NOTIFICATIONS
            .with_label_values(&[&target.name, outcome])
            .inc();
    }
}

/// The notifier of a Strategy's `spec.notifications`, each target's address from the environment
/// variable the operator sets from its Secret (`IA_NOTIFY_<NAME>`); none without the spec.
pub fn from_env(
    spec: Option<&protocol::crd::NotificationsSpec>,
) -> Result<Notifier, crate::TargetError> {
    match spec {
        None => Ok(Notifier::none()),
        Some(spec) => {
            let targets = Target::all_from(spec, |variable| std::env::var(variable).ok())?;
            tracing::info!(targets = targets.len(), "notifications on");
            Ok(Notifier::spawn(targets, Retry::default()))
        }
    }
}
