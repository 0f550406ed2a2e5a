//! Stopping when asked (SIGTERM from the kubelet, Ctrl-C at a terminal), in every state: a process
//! with nothing in flight (connecting, retrying, waiting for voters, holding after a replay) stops
//! at once; one with work in flight holds a [`Busy`] guard, and the work sees [`requested`] and
//! ends at its next safe point (between cycles, or by dropping the cycle in flight, which decided
//! nothing and is redone by a restarted replay) and writes down what it has. The binary gives
//! busy work [`GRACE`] before it stops anyway. See docs/architecture.md, "Stopping".

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::watch;

/// How long busy work may take to finish after a stop is asked: inside Kubernetes' default
/// 30 s grace period, with room for the process to exit.
pub const GRACE: Duration = Duration::from_secs(20);

/// The waits between attempts at something that fails until it answers (the bus, the database):
/// [`Backoff::FIRST`], doubling up to [`Backoff::MAX`]; a wait ends early when a stop is asked.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    wait: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { wait: Self::FIRST }
    }
}

impl Backoff {
    /// The first wait after a failure.
    pub const FIRST: Duration = Duration::from_millis(250);
    /// The longest wait between two attempts.
    pub const MAX: Duration = Duration::from_secs(5);

    /// Waits before the next attempt (less if a stop is asked meanwhile); false when it was.
    pub async fn pause(&mut self) -> bool {
        let stopped = tokio::select! {
            () = tokio::time::sleep(self.wait) => false,
            () = stop_requested() => true,
        };
        self.wait = (self.wait * 2).min(Self::MAX);
        !stopped
    }
}

/// A stop request and the count of work in flight: one per process ([`listen`] and the free
/// functions use it), or a private one in tests.
#[derive(Debug)]
pub struct Switch {
    requested: watch::Sender<bool>,
    busy: Arc<AtomicUsize>,
    failure: std::sync::Mutex<Option<String>>,
}

impl Default for Switch {
    fn default() -> Self {
        Self {
            requested: watch::channel(false).0,
            busy: Arc::default(),
            failure: std::sync::Mutex::default(),
        }
    }
}

impl Switch {
    /// Asks everything to stop (what a signal does).
    pub fn request(&self) {
        self.requested.send_replace(true);
    }

    /// Asks everything to stop because the process cannot go on (`reason`, which the process
    /// exits with as its error once in-flight work is written down); the first reason is kept.
    pub fn fail(&self, reason: String) {
        let mut failure = self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if failure.is_none() {
            tracing::error!(%reason, "stopping: the process cannot go on");
            *failure = Some(reason);
        }
        drop(failure);
        self.request();
    }

    /// Why the process was made to stop, when it was by [`Switch::fail`].
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether a stop has been asked.
    pub fn requested(&self) -> bool {
        *self.requested.borrow()
    }

    /// Resolves once a stop is asked.
    pub async fn stop_requested(&self) {
        let mut rx = self.requested.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Marks work in flight until the guard drops.
    pub fn busy(&self) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self.busy.clone())
    }

    /// Whether any work is in flight.
    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire) > 0
    }
}

static PROCESS: LazyLock<Switch> = LazyLock::new(Switch::default);

/// Turns SIGTERM and SIGINT into a stop request (from then on they no longer kill the process, so
/// every long-lived command must call this and watch [`requested`]).
pub fn listen() {
    tokio::spawn(async {
        signal().await;
        tracing::info!("stop requested (SIGTERM or SIGINT): finishing what is in flight");
        PROCESS.request();
    });
}

async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C only");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Whether this process was asked to stop.
pub fn requested() -> bool {
    PROCESS.requested()
}

/// Stops this process because it cannot go on (e.g. its NATS credentials expired): in-flight work
/// is finished as on SIGTERM, then the process exits with `reason` as its error.
pub fn fail(reason: String) {
    PROCESS.fail(reason);
}

/// Why this process was made to stop, when it was by [`fail`].
pub fn failure() -> Option<String> {
    PROCESS.failure()
}

/// Resolves once this process is asked to stop.
pub async fn stop_requested() {
    PROCESS.stop_requested().await;
}

/// Marks work in flight in this process until the guard drops.
pub fn busy() -> Busy {
    PROCESS.busy()
}

/// Whether this process has work in flight.
pub fn is_busy() -> bool {
    PROCESS.is_busy()
}

/// Work in flight that must be finished or handed back before the process exits.
#[must_use = "the work is busy only while the guard lives"]
#[derive(Debug)]
pub struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_wakes_the_waiters_and_busy_counts_guards() {
        let switch = Arc::new(Switch::default());
        assert!(!switch.is_busy());
        let guard = switch.busy();
        let second = switch.busy();
        assert!(switch.is_busy());
        drop(guard);
        assert!(switch.is_busy(), "one guard is still alive");
        drop(second);
        assert!(!switch.is_busy());
        let waiting = switch.clone();
        let waiter = tokio::spawn(async move { waiting.stop_requested().await });
        switch.request();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .unwrap();
        assert!(switch.requested());
        // asked once, asked for good: a late waiter returns at once
        tokio::time::timeout(Duration::from_millis(100), switch.stop_requested())
            .await
            .expect("already requested");
        assert!(!requested(), "the process's own switch is untouched");
    }

    #[tokio::test]
    async fn a_failure_stops_and_keeps_its_first_reason() {
        let switch = Switch::default();
        assert_eq!(switch.failure(), None);
        switch.fail("credentials expired".into());
        switch.fail("a later reason".into());
        assert!(switch.requested(), "a failure asks everything to stop");
        tokio::time::timeout(Duration::from_millis(100), switch.stop_requested())
            .await
            .expect("stop requested");
        assert_eq!(switch.failure().as_deref(), Some("credentials expired"));
    }
}
