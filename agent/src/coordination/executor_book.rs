//! The executor's book into the coordinator's view (services mode on a live feed, docs/
//! architecture.md, "The executor and auditor services"): the executor publishes its book on
//! `….book` after each message it acts on; this task keeps the newest one for the engine, whose
//! desk takes it before the next scored candle (`engine::Session::executor_book`).

use crate::bus::nats::NatsBus;
use crate::bus::{Bus, BusError};
use crate::engine::ExecutorBookFeed;
use protocol::messages::Message;
use protocol::subjects::Subjects;
use tokio::sync::watch;

/// Follows the executor's book of `strategy` on `subjects.book()`; the feed holds the newest.
/// A message that is not this Strategy's book is logged and ignored.
pub async fn follow(
    bus: &NatsBus,
    subjects: &Subjects,
    strategy: &str,
) -> Result<ExecutorBookFeed, BusError> {
    let subject = subjects.book();
    let mut messages = bus.subscribe(&subject).await?;
    let (tx, rx) = watch::channel(None);
    let strategy = strategy.to_string();
    tokio::spawn(async move {
        while let Some(message) = messages.recv().await {
            match message {
                Message::Book(book) if book.strategy == strategy => {
                    if tx.send(Some(book)).is_err() {
                        break; // the engine is done
                    }
                }
                other => tracing::warn!(%subject, kind = other.type_name(),
                    "not this Strategy's executor book: ignored"),
            }
        }
    });
    Ok(rx)
}
