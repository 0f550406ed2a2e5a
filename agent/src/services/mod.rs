//! The executor and the auditor as services of their own (docs/architecture.md, "The executor and
//! auditor services"): each follows its team's decision stream with a durable consumer and acts on
//! it exactly once per message, whatever crashes and redeliveries happen.
//!
//! - [`executor`]: candles and decisions → orders on the venue → order reports and fills on the stream;
//! - [`auditor`]: decisions and order reports → the store and the audit chain, anchored on `….audit`.

pub mod auditor;
pub mod executor;

use crate::bus::nats::NatsBus;
use crate::bus::publisher::until_out;
use crate::bus::{Bus, BusError};
use protocol::messages::Message;

/// Whose signatures a service requires on what it follows (`bus::signing`): the coordinator's on
/// candles and decisions, the executor's on order reports. `None` takes them unsigned (a team
/// without nkey identities), which the service says at start.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    /// The coordinator's public key (`--coordinator-key`).
    pub coordinator: Option<crate::bus::signing::Verifier>,
    /// The executor's public key (`--executor-key`).
    pub executor: Option<crate::bus::signing::Verifier>,
}

/// Says once, at start, that what `follows` is taken unsigned.
fn unsigned_warning(follows: &str, key: Option<&crate::bus::signing::Verifier>, flag: &str) {
    if key.is_none() {
        tracing::warn!(
            "{follows} are taken unsigned: without {flag}, anyone able to put a message on this team's stream could make this service act on it"
        );
    }
}

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

/// Publishes `message` durably on `subject` under `id`, as the coordinator publishes its decisions
/// (`bus::publisher::until_out`: retried, backing off, for as long as the bus fails); `false` when
/// a stop was asked first (the message is then not out, and the input it came from is not
/// acknowledged: it is delivered again after a restart).
async fn publish_until_out(bus: &NatsBus, subject: &str, id: &str, message: &Message) -> bool {
    let publish = || async { bus.publish_durable(subject, id, message).await.map(|_| ()) };
    let failed = |attempt: u32, error: &BusError| {
        if attempt == 1 || attempt.is_multiple_of(10) {
            tracing::warn!(%error, %subject, %id, attempt, "publishing failed; retrying until the bus is back");
        }
    };
    until_out(subject, publish, failed).await.is_ok()
}
