//! The team's book out of the coordinator: after each step the record tells the latest
//! [`PortfolioSnapshot`]; this task publishes it on `….portfolio` (core NATS) at most once a
//! second, through [`publish_latest`] (the newest value wins, a failed publish is retried with
//! backoff), and the operator writes it into the Strategy's `status.portfolio`. Nothing waits on it.

use crate::bus::nats::NatsBus;
use crate::bus::publisher::publish_latest;
use crate::bus::Bus;
use crate::engine::PortfolioSender;
use protocol::messages::{Message, PortfolioSnapshot};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The least time between two snapshots on the bus.
pub const EVERY: Duration = Duration::from_secs(1);

/// Starts publishing the snapshots sent to the returned sender on `subject`; the task ends when
/// the sender is gone, after publishing the last snapshot.
pub fn start(bus: NatsBus, subject: String) -> (PortfolioSender, JoinHandle<()>) {
    let (tx, rx) = watch::channel(None);
    let mut next_at = Instant::now();
    let publish = move |snapshot: &PortfolioSnapshot| {
        // at most one a second: a publish waits for its turn
        let wait = next_at.saturating_duration_since(Instant::now());
        next_at = Instant::now() + wait + EVERY;
        let (bus, subject) = (bus.clone(), subject.clone());
        let message = Message::Portfolio(snapshot.clone());
        async move {
            tokio::time::sleep(wait).await;
            bus.publish(&subject, &message).await
        }
    };
    let task = tokio::spawn(async move {
        publish_latest("the portfolio subject", rx, publish).await;
    });
    (tx, task)
}
