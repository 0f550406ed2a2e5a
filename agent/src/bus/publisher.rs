//! The coordinator's decision publisher: every decision, in order, onto the durable stream. A
//! failed publish is retried for as long as NATS is away (backing off from 250 ms to 5 s), never
//! dropped; while it is behind, readiness says not ready and `ia_agent_unpublished_decisions`
//! says how far behind. Asked to stop while NATS is away, it says which decisions are left
//! (they are in the store; a restarted replay publishes them, deduplicated by id).

use super::BusError;
use protocol::messages::Decision;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// The first wait after a failed publish; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

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

/// One publish, bounded by [`ATTEMPT_TIMEOUT`], and by [`ATTEMPT_AFTER_STOP`] once a stop is asked.
async fn attempt_once(publish: impl Future<Output = Result<(), BusError>>) -> Result<(), BusError> {
    let gave_up = |after: Duration| BusError::Nats {
        subject: "the decision stream".into(),
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

/// Publishes what arrives on `decisions`, in order, with `publish`, until the channel closes;
/// `published` is told of each one out. Returns how many went out.
pub async fn publish_in_order<P, F>(
    strategy: &str,
    mut decisions: UnboundedReceiver<Decision>,
    ready: Arc<AtomicBool>,
    mut publish: P,
    mut published: impl FnMut(&Decision),
) -> Result<u64, PublishError>
where
    P: FnMut(&Decision) -> F,
    F: Future<Output = Result<(), BusError>>,
{
    let backlog = crate::metrics::UNPUBLISHED.with_label_values(&[strategy]);
    let mut count = 0u64;
    while let Some(decision) = decisions.recv().await {
        backlog.set(decisions.len() as i64 + 1);
        let mut wait = FIRST_BACKOFF;
        let mut attempt = 0u32;
        loop {
            let error = match attempt_once(publish(&decision)).await {
                Ok(()) => break,
                Err(error) => error,
            };
            attempt += 1;
            ready.store(false, Ordering::Relaxed);
            if attempt == 1 || attempt.is_multiple_of(10) {
                tracing::warn!(%error, id = %decision.id, attempt, behind = decisions.len() + 1,
                    "publishing the decision failed; retrying until the bus is back");
            }
            if crate::shutdown::requested() {
                return Err(PublishError::Stopped {
                    first: decision.id.clone(),
                    left: decisions.len() + 1,
                    error,
                });
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {},
                () = crate::shutdown::stop_requested() => {},
            }
            wait = (wait * 2).min(MAX_BACKOFF);
        }
        if attempt > 0 {
            tracing::info!(id = %decision.id, attempts = attempt + 1, "the bus is back; publishing");
        }
        ready.store(true, Ordering::Relaxed);
        backlog.set(decisions.len() as i64);
        count += 1;
        published(&decision);
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

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
}
