//! A service's durable consumer of its team's decision stream (docs/architecture.md, "The executor
//! and auditor services"): a JetStream pull consumer by name (`ia-<ns>-<strategy>-<role>`, shared
//! by the role's replicas) over one subject of the team (`….decision`: candles and decisions;
//! `….order`: the executor's reports), acknowledged explicitly once the service has done its work,
//! so that whatever a crash interrupted is delivered again.

use super::nats::NatsBus;
use super::signing::{SigningError, Verifier, SIGNATURE_HEADER};
use super::{decoded, BusError};
use futures::StreamExt;
use protocol::messages::Message;
use protocol::subjects::STREAM_DECISIONS;
use std::time::Duration;

/// How long a delivered message may stay unacknowledged before the server delivers it again: a
/// service waiting out a database outage holds its batch for as long as the outage lasts, and a
/// redelivered message is harmless (the store keeps one row per id), only wasted work.
const ACK_WAIT: Duration = Duration::from_secs(60);

/// A service's consumer and its messages.
pub struct ServiceConsumer {
    messages: async_nats::jetstream::consumer::pull::Stream,
    /// The stream sequence up to which the consumer had acknowledged everything when it started
    /// (0 for a new one): what a restarted service has already acted on.
    pub acknowledged: u64,
    /// Whose signature every message must carry (`bus::signing`); `None` takes them unsigned.
    signed_by: Option<Verifier>,
}

/// One message of the stream, decoded (`None`: undecodable, counted, or not signed by the key it
/// must be: to be acknowledged anyway, never acted on).
pub struct Delivered {
    /// The message.
    pub message: Option<Message>,
    /// Its sequence in the stream.
    pub sequence: u64,
    raw: async_nats::jetstream::Message,
}

impl Delivered {
    /// Acknowledges it: the service is done with it.
    pub async fn ack(&self) -> Result<(), BusError> {
        self.raw.ack().await.map_err(|e| BusError::Nats {
            subject: self.raw.subject.to_string(),
            error: e.to_string(),
        })
    }
}

fn nats_error(what: &str, error: impl std::fmt::Display) -> BusError {
    BusError::Nats {
        subject: format!("{STREAM_DECISIONS} consumer {what}"),
        error: error.to_string(),
    }
}

impl NatsBus {
    /// The durable consumer `name` of the decision stream, over `filter`. With `from_first`, it is
    /// created again delivering the stream from its first message (the executor rebuilds its book
    /// that way), and [`ServiceConsumer::acknowledged`] says how far the old one had come; else an
    /// existing one resumes where it was.
    pub async fn service_consumer(
        &self,
        name: &str,
        filter: &str,
        max_ack_pending: i64,
        from_first: bool,
        signed_by: Option<Verifier>,
    ) -> Result<ServiceConsumer, BusError> {
        use async_nats::jetstream::consumer;
        let stream = self
            .jetstream()
            .get_stream(STREAM_DECISIONS)
            .await
            .map_err(|e| nats_error(name, e))?;
        let acknowledged = match stream.consumer_info(name).await {
            Ok(info) => info.ack_floor.stream_sequence,
            Err(_) => 0, // none yet
        };
        if from_first && acknowledged > 0 {
            stream
                .delete_consumer(name)
                .await
                .map_err(|e| nats_error(name, e))?;
        }
        let consumer = stream
            .get_or_create_consumer(
                name,
                consumer::pull::Config {
                    durable_name: Some(name.to_string()),
                    filter_subject: filter.to_string(),
                    deliver_policy: consumer::DeliverPolicy::All,
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    max_ack_pending,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| nats_error(name, e))?;
        let messages = consumer.messages().await.map_err(|e| nats_error(name, e))?;
        Ok(ServiceConsumer {
            messages,
            acknowledged,
            signed_by,
        })
    }
}

impl ServiceConsumer {
    /// The next message; `None` when the consumer ended. A failed pull (the server away) is
    /// logged and the next one waited for: async-nats reconnects by itself.
    pub async fn next(&mut self) -> Option<Delivered> {
        loop {
            let raw = match self.messages.next().await? {
                Ok(raw) => raw,
                Err(error) => {
                    tracing::warn!(%error, "the decision stream's consumer failed; waiting for it");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            };
            let Ok(sequence) = raw.info().map(|info| info.stream_sequence) else {
                tracing::warn!(subject = %raw.subject, "a message without JetStream metadata; skipped");
                continue;
            };
            let message = match self.refused(&raw) {
                Some(why) => {
                    tracing::warn!(subject = %raw.subject, sequence, %why, "a stream message not taken: never acted on");
                    None
                }
                None => decoded(&raw.subject, &raw.payload),
            };
            return Some(Delivered {
                message,
                sequence,
                raw,
            });
        }
    }

    /// Why `raw` is not taken: not signed by the key this consumer requires (`None`: taken).
    fn refused(&self, raw: &async_nats::jetstream::Message) -> Option<SigningError> {
        let check = self.signed_by.as_ref()?;
        let header = |name: &str| {
            raw.headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str())
        };
        let id = header("Nats-Msg-Id").unwrap_or_default();
        check
            .check(&raw.subject, id, &raw.payload, header(SIGNATURE_HEADER))
            .err()
    }

    /// The messages that arrive within `linger` of the first one, at most `max` (a batch).
    pub async fn batch(&mut self, max: usize, linger: Duration) -> Option<Vec<Delivered>> {
        let mut batch = vec![self.next().await?];
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, self.next()).await {
                Ok(Some(delivered)) => batch.push(delivered),
                Ok(None) | Err(_) => break,
            }
        }
        Some(batch)
    }
}
