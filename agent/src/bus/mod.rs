//! The bus the team talks over (docs/architecture.md, "NATS subjects and messages"), behind one
//! trait with two implementations:
//! - [`nats::NatsBus`]: async-nats; core request/reply with queue groups for `analyze`, JetStream for
//!   the durable `decision` / `order` / `fill` subjects (deduplicated by message id) and the `audit`
//!   anchor (the last one kept), and a KV bucket with a TTL for presence;
//! - [`memory::MemoryBus`]: the same semantics in one process, for the local mode and tests.
//!
//! Both carry typed [`Message`]s; the NATS side encodes them with the protocol's versioned JSON and
//! rejects (counts and logs) whatever does not decode, never panicking.

pub mod auth;
pub mod consumer;
pub mod memory;
pub mod nats;
pub mod publisher;
pub mod signing;

use protocol::messages::{DecodeError, Heartbeat, Message};
use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Messages received but rejected by the decoder, by reason.
pub static REJECTED: LazyLock<prometheus::IntCounterVec> = LazyLock::new(|| {
    prometheus::register_int_counter_vec!(
        "ia_agent_bus_rejected_messages_total",
        "Messages from the bus that did not decode, by reason",
        &["reason"]
    )
    .expect("the metric is registered once")
});

/// Decodes a message received on `subject`; one that does not decode is counted and logged, and
/// gives `None` (every receiving path goes through here, so none can forget the metric).
pub fn decoded(subject: &str, payload: &[u8]) -> Option<Message> {
    protocol::messages::decode(payload)
        .inspect_err(|error: &DecodeError| {
            REJECTED.with_label_values(&[error.kind()]).inc();
            tracing::warn!(%subject, %error, "rejected a message from the bus");
        })
        .ok()
}

/// Why a bus operation failed, naming the subject.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("{subject}: {error}")]
    /// NATS refused or failed the operation (or it timed out).
    Nats {
        /// The subject (or stream) it was on.
        subject: String,
        /// What NATS said, as text.
        error: String,
    },
    #[error("NATS at {server}: the credentials of {identity} do not work ({reason}): check the nkey seed, .creds file or user and password it was given")]
    /// This identity's credentials did not work at the first connection (the server refused
    /// them, or the client could not sign the server's challenge with them): a wrong or revoked
    /// seed, JWT or password is a configuration error, not an outage to wait out.
    Refused {
        /// The server, its password redacted.
        server: String,
        /// Who tried to connect (`ia-agents` when no identity was given).
        identity: String,
        /// What the client said (`authorization violation`, `failed signing nonce`).
        reason: String,
    },
    #[error("{subject}: the bus is closed")]
    /// The other end of the bus has gone, so nothing can be sent.
    Closed {
        /// The subject it was on.
        subject: String,
    },
}

/// A request received by a server, to be answered once.
#[derive(Debug)]
pub struct Incoming {
    /// Shared: the in-memory bus hands every recipient the same message.
    pub message: std::sync::Arc<Message>,
    reply: Replier,
}

#[derive(Debug)]
enum Replier {
    Memory(oneshot::Sender<Message>),
    Nats {
        client: async_nats::Client,
        subject: async_nats::Subject,
    },
    Nobody,
}

impl Incoming {
    /// Answers the request (a no-op when the sender expects no answer or has gone).
    pub async fn reply(self, message: Message) -> Result<(), BusError> {
        match self.reply {
            Replier::Memory(tx) => {
                let _ = tx.send(message);
                Ok(())
            }
            Replier::Nats { client, subject } => client
                .publish(subject.clone(), protocol::messages::encode(&message).into())
                .await
                .map_err(|e| BusError::Nats {
                    subject: subject.to_string(),
                    error: e.to_string(),
                }),
            Replier::Nobody => Ok(()),
        }
    }
}

/// The requests a server receives from [`Bus::serve`], one at a time.
pub struct Requests {
    source: RequestSource,
}

enum RequestSource {
    /// The in-memory bus hands requests over a channel.
    Channel(mpsc::Receiver<Incoming>),
    /// NATS requests are decoded on the receiving task as they are read: no task and channel in
    /// between, i.e. one wake-up fewer per request.
    Nats {
        subscriber: async_nats::Subscriber,
        client: async_nats::Client,
        subject: String,
    },
}

impl Requests {
    fn channel(requests: mpsc::Receiver<Incoming>) -> Self {
        Self {
            source: RequestSource::Channel(requests),
        }
    }

    fn nats(subscriber: async_nats::Subscriber, client: async_nats::Client, subject: &str) -> Self {
        Self {
            source: RequestSource::Nats {
                subscriber,
                client,
                subject: subject.to_string(),
            },
        }
    }

    /// The next request; `None` once the bus is gone. Messages that do not decode are counted,
    /// logged and skipped. Cancel-safe (may be raced in `select!`).
    pub async fn recv(&mut self) -> Option<Incoming> {
        match &mut self.source {
            RequestSource::Channel(requests) => requests.recv().await,
            RequestSource::Nats {
                subscriber,
                client,
                subject,
            } => loop {
                use futures::StreamExt;
                let m = subscriber.next().await?;
                let Some(message) = decoded(subject, &m.payload) else {
                    continue;
                };
                let reply = match m.reply {
                    Some(reply) => Replier::Nats {
                        client: client.clone(),
                        subject: reply,
                    },
                    None => Replier::Nobody,
                };
                return Some(Incoming {
                    message: std::sync::Arc::new(message),
                    reply,
                });
            },
        }
    }
}

/// What a team needs from its bus.
pub trait Bus: Clone + Send + Sync + 'static {
    /// Sends a request to one member of the queue group serving `subject`; `None` when nobody
    /// answered within `timeout` (or nobody serves the subject).
    fn request(
        &self,
        subject: &str,
        message: &Message,
        timeout: Duration,
    ) -> impl Future<Output = Result<Option<Message>, BusError>> + Send;

    /// Sends the same request to several subjects at once (a round's voters); the answers come back
    /// in the order of `subjects`. The NATS bus encodes the message once for all of them.
    fn request_all(
        &self,
        subjects: &[String],
        message: &Message,
        timeout: Duration,
    ) -> impl Future<Output = Vec<Result<Option<Message>, BusError>>> + Send {
        let asks = subjects
            .iter()
            .map(move |s| self.request(s, message, timeout));
        futures::future::join_all(asks)
    }

    /// Serves `subject` as a member of `queue`: each request goes to one member only.
    fn serve(
        &self,
        subject: &str,
        queue: &str,
    ) -> impl Future<Output = Result<Requests, BusError>> + Send;

    /// Fire-and-forget publish (alerts, escalation answers).
    fn publish(
        &self,
        subject: &str,
        message: &Message,
    ) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Every message published on `subject` from now on (core subjects).
    fn subscribe(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<mpsc::Receiver<Message>, BusError>> + Send;

    /// Durable publish (JetStream): stored exactly once per (`subject`, `id`); `Ok(false)` when
    /// `id` was already stored on `subject` (a retried or replayed publish). The same id on another
    /// subject (another namespace's or Strategy's team) is a different message.
    fn publish_durable(
        &self,
        subject: &str,
        id: &str,
        message: &Message,
    ) -> impl Future<Output = Result<bool, BusError>> + Send;

    /// Every durable message on `subject`, from the first (replay, then live).
    fn read_durable(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<mpsc::Receiver<Message>, BusError>> + Send;

    /// The last durable message on `subject` (the audit anchor: [`Subjects::audit`]); `None` when
    /// nothing was ever published there.
    ///
    /// [`Subjects::audit`]: protocol::subjects::Subjects::audit
    fn last_durable(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<Option<Message>, BusError>> + Send;

    /// Announces an assistant instance in the presence bucket (expires after the bus's TTL).
    fn announce(
        &self,
        key: &str,
        heartbeat: &Heartbeat,
    ) -> impl Future<Output = Result<(), BusError>> + Send;

    /// The assistant instances of one team (keys under `scope`, see
    /// [`Subjects::presence_scope`](protocol::subjects::Subjects::presence_scope)) whose presence has
    /// not expired.
    fn present(&self, scope: &str)
        -> impl Future<Output = Result<Vec<Heartbeat>, BusError>> + Send;
}

/// Default presence TTL: an assistant that misses three 5-second heartbeats is gone.
pub const PRESENCE_TTL: Duration = Duration::from_secs(15);
