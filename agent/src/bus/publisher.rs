//! The coordinator's decision publisher: every decision, in order, onto the durable stream. A
//! failed publish is retried for as long as NATS is away (backing off from 250 ms to 5 s), never
//! dropped; while it is behind, readiness says not ready and `ia_agent_unpublished_decisions`
//! says how far behind. Asked to stop while NATS is away, it says which decisions are left
//! (they are in the store; a restarted replay publishes them, deduplicated by id).

use super::BusError;
use protocol::messages::Decision;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// Why publishing stopped before every decision was out.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("stopping with {left} decision(s) not published, from {first} on (the bus: {error}); they are in the store, and a restarted replay publishes them")]
    /// A stop was asked while the bus was failing.
    Stopped {
        /// Id of the first decision not published.
        first: String,
        /// Decisions not published, that one included.
        left: usize,
        /// The bus's last failure.
        error: BusError,
    },
}

/// How long one publish may take before it counts as failed (a client that lost its server can
/// hold a publish indefinitely).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// After a stop is asked, how long a publish in flight may still take.
const ATTEMPT_AFTER_STOP: Duration = Duration::from_secs(2);

/// One publish, bounded by [`ATTEMPT_TIMEOUT`], and by [`ATTEMPT_AFTER_STOP`] once a stop is asked;
/// `stream` names where it went in the error.
async fn attempt_once(
    stream: &str,
    publish: impl Future<Output = Result<(), BusError>>,
) -> Result<(), BusError> {
    let gave_up = |after: Duration| BusError::Nats {
        subject: stream.into(),
        error: format!("no acknowledgement within {} s", after.as_secs()),
    };
    tokio::select! {
        result = tokio::time::timeout(ATTEMPT_TIMEOUT, publish) => {
            result.unwrap_or_else(|_| Err(gave_up(ATTEMPT_TIMEOUT)))
        }
        () = async {
            crate::shutdown::stop_requested().await;
            tokio::time::sleep(ATTEMPT_AFTER_STOP).await;
        } => Err(gave_up(ATTEMPT_AFTER_STOP)),
    }
}

/// Decisions made and not yet on the stream, with the bound the engine waits under: however long
/// NATS is away, at most `bound` decisions (plus one step's) wait in memory, and none is dropped.
#[derive(Debug)]
pub struct Backlog {
    held: AtomicUsize,
    bound: usize,
    drained: tokio::sync::Notify,
    waiting: AtomicBool,
}

impl Backlog {
    /// An empty backlog the engine keeps under `bound` (at least 1).
    pub fn new(bound: usize) -> Arc<Self> {
        Arc::new(Self {
            held: AtomicUsize::new(0),
            bound: bound.max(1),
            drained: tokio::sync::Notify::new(),
            waiting: AtomicBool::new(false),
        })
    }

    /// A decision handed to the publisher.
    pub fn added(&self) {
        self.held.fetch_add(1, Ordering::Relaxed);
    }

    /// A decision on the stream.
    pub fn published(&self) {
        let _ = self
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        self.drained.notify_waiters();
    }

    /// Decisions made and not yet on the stream.
    pub fn len(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Whether every decision made is on the stream.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits while the backlog is at its bound (the engine decides nothing meanwhile), or until a
    /// stop is asked.
    pub async fn wait_below_bound(&self) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.len() < self.bound || crate::shutdown::requested() {
                if self.waiting.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        behind = self.len(),
                        "the decision stream is catching up; deciding again"
                    );
                }
                return;
            }
            if !self.waiting.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    behind = self.len(),
                    bound = self.bound,
                    "the decision stream is this far behind: no new decision until it catches up"
                );
            }
            tokio::select! {
                () = &mut drained => {},
                () = crate::shutdown::stop_requested() => {},
            }
        }
    }
}

/// Something the coordinator puts on the decision stream, named by its id in the logs.
pub trait Identified {
    /// Its id on the stream (a decision's id, a candle's symbol and time).
    fn id(&self) -> String;
}

impl Identified for Decision {
    fn id(&self) -> String {
        self.id.to_string()
    }
}

/// Publishes with `publish` until it goes out: each attempt bounded as [`attempt_once`] bounds it,
/// backing off between failures ([`crate::shutdown::Backoff`]), `failed(attempt, error)` told of
/// each. How many attempts failed; the last error when a stop is asked while it fails.
pub async fn until_out<F>(
    stream: &str,
    mut publish: impl FnMut() -> F,
    mut failed: impl FnMut(u32, &BusError),
) -> Result<u32, BusError>
where
    F: Future<Output = Result<(), BusError>>,
{
    let mut backoff = crate::shutdown::Backoff::default();
    let mut attempt = 0u32;
    loop {
        let error = match attempt_once(stream, publish()).await {
            Ok(()) => return Ok(attempt),
            Err(error) => error,
        };
        attempt += 1;
        failed(attempt, &error);
        if crate::shutdown::requested() {
            return Err(error);
        }
        backoff.pause().await;
    }
}

/// Publishes what arrives on `decisions`, in order, with `publish`, until the channel closes;
/// `published` is told of each one out. Returns how many went out.
pub async fn publish_in_order<T: Identified, P, F>(
    strategy: &str,
    mut decisions: UnboundedReceiver<T>,
    ready: Arc<AtomicBool>,
    mut publish: P,
    mut published: impl FnMut(&T),
) -> Result<u64, PublishError>
where
    P: FnMut(&T) -> F,
    F: Future<Output = Result<(), BusError>>,
{
    let backlog = crate::metrics::UNPUBLISHED.with_label_values(&[strategy]);
    let mut count = 0u64;
    while let Some(decision) = decisions.recv().await {
        backlog.set(decisions.len() as i64 + 1);
        let behind = decisions.len() + 1;
        let failed = |attempt: u32, error: &BusError| {
            ready.store(false, Ordering::Relaxed);
            if attempt == 1 || attempt.is_multiple_of(10) {
                tracing::warn!(%error, id = %decision.id(), attempt, behind,
                    "publishing the decision failed; retrying until the bus is back");
            }
        };
        match until_out("the decision stream", || publish(&decision), failed).await {
            Ok(0) => {}
            Ok(failures) => {
                tracing::info!(id = %decision.id(), attempts = failures + 1, "the bus is back; publishing");
            }
            Err(error) => {
                return Err(PublishError::Stopped {
                    first: decision.id(),
                    left: decisions.len() + 1,
                    error,
                })
            }
        }
        ready.store(true, Ordering::Relaxed);
        backlog.set(decisions.len() as i64);
        count += 1;
        published(&decision);
    }
    Ok(count)
}

/// Publishes the latest value of `latest` with `publish` each time it changes, until its sender is
/// gone (then the last value, if not out yet): an audit anchor, where only the newest matters. A
/// failed publish is retried like a decision's (backing off up to [`crate::shutdown::Backoff::MAX`]), each attempt
/// with the value newest by then; the sender never waits for it. Asked to stop while the bus
/// fails, it gives up. Returns the last value published.
pub async fn publish_latest<T, P, F>(
    stream: &str,
    mut latest: tokio::sync::watch::Receiver<Option<T>>,
    mut publish: P,
) -> Option<T>
where
    T: Clone + PartialEq,
    P: FnMut(&T) -> F,
    F: Future<Output = Result<(), BusError>>,
{
    let mut published: Option<T> = None;
    loop {
        let closed = latest.changed().await.is_err();
        let mut backoff = crate::shutdown::Backoff::default();
        let mut attempt = 0u32;
        loop {
            let Some(value) = latest.borrow_and_update().clone() else {
                break;
            };
            if published.as_ref() == Some(&value) {
                break;
            }
            let error = match attempt_once(stream, publish(&value)).await {
                Ok(()) => {
                    published = Some(value);
                    continue; // a newer value may have come meanwhile
                }
                Err(error) => error,
            };
            attempt += 1;
            if attempt == 1 || attempt.is_multiple_of(10) {
                tracing::warn!(%error, %stream, attempt, "publishing failed; retrying until the bus is back");
            }
            if crate::shutdown::requested() {
                tracing::warn!(%error, %stream, "stopping with the latest value not published");
                return published;
            }
            backoff.pause().await;
        }
        if closed {
            return published;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[tokio::test]
    async fn the_engine_waits_at_the_bound_until_a_decision_is_out() {
        let backlog = Backlog::new(2);
        backlog.added();
        // under the bound: no wait
        tokio::time::timeout(Duration::from_millis(100), backlog.wait_below_bound())
            .await
            .expect("under the bound");
        backlog.added();
        let waiting = tokio::spawn({
            let backlog = backlog.clone();
            async move { backlog.wait_below_bound().await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "at the bound the engine waits");
        backlog.published();
        tokio::time::timeout(Duration::from_secs(2), waiting)
            .await
            .expect("one out lets it go on")
            .unwrap();
        assert_eq!(backlog.len(), 1);
        backlog.published();
        backlog.published();
        assert!(backlog.is_empty(), "never below zero");
    }

    fn decision(id: &str) -> Decision {
        Decision {
            id: id.into(),
            strategy: "s".into(),
            symbol: "BTCUSDT".into(),
            action: protocol::Action::Hold,
            confidence: 0.5,
            consensus_reached: true,
            escalated: false,
            vetoed: false,
            rejected: false,
            resolved_by: None,
            rounds: vec![],
            transcript: vec![],
            price: 1.0,
            decided_at: 0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_delays_decisions_in_order_and_drops_none() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for id in ["d1", "d2", "d3"] {
            tx.send(decision(id)).unwrap();
        }
        drop(tx);
        let ready = Arc::new(AtomicBool::new(true));
        let failures_left = Cell::new(25u32);
        let seen_not_ready = Cell::new(false);
        let mut out = Vec::new();
        let flag = ready.clone();
        let count = publish_in_order(
            "publisher-test",
            rx,
            ready.clone(),
            |_| {
                let fail = failures_left.get() > 0;
                if fail {
                    failures_left.set(failures_left.get() - 1);
                } else if !flag.load(Ordering::Relaxed) {
                    seen_not_ready.set(true);
                }
                async move {
                    if fail {
                        Err(BusError::Closed {
                            subject: "ia.ns.s.decision".into(),
                        })
                    } else {
                        Ok(())
                    }
                }
            },
            |d| out.push(d.id.clone()),
        )
        .await
        .unwrap();
        assert_eq!(count, 3);
        assert_eq!(out, ["d1", "d2", "d3"], "every decision, in order");
        assert!(seen_not_ready.get(), "not ready while the bus was away");
        assert!(ready.load(Ordering::Relaxed), "ready again once it is back");
    }

    #[tokio::test(start_paused = true)]
    async fn the_latest_value_goes_out_after_an_outage_and_the_sender_never_waits() {
        let (tx, rx) = tokio::sync::watch::channel(None::<u32>);
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let failures_left = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(3));
        let (seen, failing) = (out.clone(), failures_left.clone());
        let task = tokio::spawn(publish_latest("the audit stream", rx, move |v: &u32| {
            let fail = failing
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok();
            let (seen, v) = (seen.clone(), *v);
            async move {
                if fail {
                    return Err(BusError::Closed {
                        subject: "ia.ns.s.audit".into(),
                    });
                }
                seen.lock().unwrap().push(v);
                Ok(())
            }
        }));
        // sent while the bus fails: none of these waits
        for v in 1..=5 {
            tx.send_replace(Some(v));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        tx.send_replace(Some(6));
        tx.send_replace(Some(6));
        drop(tx);
        assert_eq!(task.await.unwrap(), Some(6));
        let out = out.lock().unwrap().clone();
        assert_eq!(out.last(), Some(&6), "{out:?}");
        assert!(
            !out.contains(&1),
            "a superseded value is not retried: {out:?}"
        );
        assert_eq!(out.iter().filter(|v| **v == 6).count(), 1, "{out:?}");
    }
}
