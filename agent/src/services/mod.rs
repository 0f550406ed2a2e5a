//! The executor and the auditor as services of their own (docs/architecture.md, "The executor and
//! auditor services"): each follows its team's decision stream with a durable consumer and acts on
//! it exactly once per message, whatever crashes and redeliveries happen.
//!
//! - [`executor`]: candles and decisions → orders on the venue → order reports and fills on the stream;
//! - [`auditor`]: decisions and order reports → the store and the audit chain, anchored on `….audit`.

pub mod auditor;
pub mod executor;

use crate::bus::nats::NatsBus;
use crate::bus::{Bus, BusError};
use protocol::messages::Message;
use std::time::Duration;

/// Why a service stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The bus failed where it cannot be retried (the consumer cannot be made).
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The store failed where it cannot be retried.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Publishes `message` durably on `subject` under `id`, trying again (backing off up to 5 s) for as
/// long as the bus fails; `false` when a stop was asked first (the message is then not out, and the
/// input it came from is not acknowledged: it is delivered again after a restart).
async fn publish_until_out(bus: &NatsBus, subject: &str, id: &str, message: &Message) -> bool {
    let mut wait = Duration::from_millis(250);
    let mut attempt = 0u32;
    loop {
        let published = tokio::time::timeout(
            Duration::from_secs(10),
            bus.publish_durable(subject, id, message),
        )
        .await;
        match published {
            Ok(Ok(_)) => return true,
            Ok(Err(error)) if attempt.is_multiple_of(10) => {
                tracing::warn!(%error, %subject, %id, attempt, "publishing failed; retrying until the bus is back")
            }
            Err(_) if attempt.is_multiple_of(10) => {
                tracing::warn!(%subject, %id, attempt, "no acknowledgement within 10 s; retrying")
            }
            _ => {}
        }
        attempt += 1;
        if crate::shutdown::requested() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {},
            () = crate::shutdown::stop_requested() => return false,
        }
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}
