//! The team's book out of the coordinator: after each step the record tells the latest
//! [`PortfolioSnapshot`]; this task publishes it on `….portfolio` (core NATS) at most once a
//! second, and the operator writes it into the Strategy's `status.portfolio`. A failed publish is
//! logged and the next change tried; nothing waits on it.

use crate::bus::nats::NatsBus;
use crate::bus::Bus;
use crate::engine::PortfolioSender;
use protocol::messages::{Message, PortfolioSnapshot};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The least time between two snapshots on the bus.
pub const EVERY: Duration = Duration::from_secs(1);

/// Starts publishing the snapshots sent to the returned sender on `subject`; the task ends when
/// the sender is gone, after publishing the last snapshot.
pub fn start(bus: NatsBus, subject: String) -> (PortfolioSender, JoinHandle<()>) {
    let (tx, rx) = watch::channel(None);
    (tx, tokio::spawn(publish(bus, subject, rx)))
}

async fn publish(
    bus: NatsBus,
    subject: String,
    mut latest: watch::Receiver<Option<PortfolioSnapshot>>,
) {
    let mut failed = false;
    loop {
        let closed = latest.changed().await.is_err();
        let snapshot = latest.borrow_and_update().clone();
        if let Some(snapshot) = snapshot {
            match bus.publish(&subject, &Message::Portfolio(snapshot)).await {
                Ok(()) => failed = false,
                Err(error) if !failed => {
                    failed = true;
                    tracing::warn!(%error, "publishing the portfolio failed; the next change is tried");
                }
                Err(_) => {}
            }
        }
        if closed {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {},
            () = crate::shutdown::stop_requested() => {},
        }
    }
}
