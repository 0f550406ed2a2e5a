//! The bus over NATS (async-nats): core request/reply and queue groups for `analyze`, JetStream for
//! durable subjects (the stream `IA_DECISIONS` over `ia.*.*.decision|order|fill`, deduplicated by
//! `Nats-Msg-Id` = `<subject>/<id>`, and `IA_AUDIT` over `ia.*.*.audit`, which keeps the last audit
//! anchor of each team), and presence in the `ia-assistants` bucket, whose `max_age` is the presence TTL.
//! The bucket is a JetStream stream keeping the last message per key (what a KV bucket is): built on
//! the stream API directly because async-nats 0.51's KV calls cannot read nats-server 2.9's replies. async-nats reconnects by itself and resubscribes; requests in flight
//! during an outage time out and the coordinator's round simply counts them as missing.

use super::auth::NatsAuth;
use super::{decoded, Bus, BusError, Requests, PRESENCE_TTL};
use crate::shutdown::Backoff;
use futures::StreamExt;
use protocol::messages::{encode, Heartbeat, Message};
use protocol::subjects::{
    stream_for, PRESENCE_BUCKET, STREAM_DECISIONS, STREAM_DECISIONS_SUBJECTS,
};
use std::time::Duration;
use tokio::sync::mpsc;

const QUEUE: usize = 1024;

/// A [`Bus`] over a NATS server with JetStream; clones share one connection.
#[derive(Clone)]
pub struct NatsBus {
    client: async_nats::Client,
    jetstream: async_nats::jetstream::Context,
    presence: async_nats::jetstream::stream::Stream,
    /// One presence read at a time: each goes through the team's one named consumer.
    reading_presence: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Signs what this identity puts on a stream (with the seed it connects with; none without).
    signer: Option<super::signing::Signer>,
}

/// The decisions' stream: every team's decisions, orders and fills, deduplicated by message id
/// over a day.
fn decision_stream() -> async_nats::jetstream::stream::Config {
    async_nats::jetstream::stream::Config {
        name: STREAM_DECISIONS.to_string(),
        subjects: STREAM_DECISIONS_SUBJECTS.map(String::from).to_vec(),
        duplicate_window: Duration::from_secs(24 * 3600),
        allow_direct: true,
        ..Default::default()
    }
}

/// The presence bucket's stream: each instance's last heartbeat, expiring after `ttl`.
fn presence_stream(ttl: Duration) -> async_nats::jetstream::stream::Config {
    async_nats::jetstream::stream::Config {
        name: PRESENCE_BUCKET.to_string(),
        subjects: vec![format!("{PRESENCE_BUCKET}.>")],
        max_messages_per_subject: 1,
        max_age: ttl,
        discard: async_nats::jetstream::stream::DiscardPolicy::Old,
        ..Default::default()
    }
}

/// How long a stream's creation may take to be answered before this identity is taken not to be
/// allowed it.
const CREATE_ANSWER: Duration = Duration::from_secs(2);

/// How the first connection went: a refusal of the credentials before it is a configuration
/// error; after it (a server that reloaded its keys) the client goes on retrying.
#[derive(Debug, Clone, PartialEq)]
enum Start {
    Pending,
    Connected,
    Refused(String),
}

impl Start {
    /// The state after `event`; true when it changed.
    fn after(&mut self, event: &async_nats::Event) -> bool {
        use async_nats::{ClientError, Event};
        let next = match (&*self, event) {
            (Start::Pending, Event::Connected) => Start::Connected,
            (Start::Pending, Event::ClientError(ClientError::Other(reason)))
                if reason == "authorization violation" || reason == "failed signing nonce" =>
            {
                Start::Refused(reason.clone())
            }
            _ => return false,
        };
        *self = next;
        true
    }
}

/// What the server said when it ended a session because its credentials (a user's or its
/// account's JWT) expired; `None` for any other event.
///
/// Not retried like a refusal after a server reload: the credentials file is read once, at
/// start, so only a restart with renewed credentials can connect again (docs/architecture.md,
/// "Identities and permissions").
fn credentials_expired(event: &async_nats::Event) -> Option<&str> {
    match event {
        async_nats::Event::ServerError(async_nats::ServerError::Other(said))
            if said.to_lowercase().contains("authentication expired") =>
        {
            Some(said)
        }
        _ => None,
    }
}

/// Resolves with the reason once the server has refused the credentials at the first connection;
/// never otherwise.
async fn refused(mut start: tokio::sync::watch::Receiver<Start>) -> String {
    match start
        .wait_for(|s| matches!(s, Start::Refused(_)))
        .await
        .map(|s| s.clone())
    {
        Ok(Start::Refused(reason)) => reason,
        _ => std::future::pending().await,
    }
}

/// The stream `config` names, as it is on the server: looked up, created when missing. Under a
/// managed NATS only the coordinator may create the shared streams (docs/architecture.md,
/// "Identities and permissions"); any other component that finds one missing waits for it. It
/// also waits, retrying with [`Backoff`] and saying so once, while the server is not reached yet
/// or JetStream not available; any other refusal (a configuration the server will not take) is an
/// error at once.
async fn stream(
    client: &async_nats::Client,
    jetstream: &async_nats::jetstream::Context,
    config: async_nats::jetstream::stream::Config,
) -> Result<async_nats::jetstream::stream::Stream, BusError> {
    let name = config.name.clone();
    let mut backoff = Backoff::default();
    let mut said = None;
    loop {
        let why_wait = match jetstream.get_stream(&name).await {
            Ok(stream) => return Ok(checked(stream, &config)),
            Err(e) => match Lookup::of(client, &e) {
                Lookup::Missing => match create(jetstream, &config).await {
                    Created::Stream(stream) => return Ok(*stream),
                    Created::ByAnother => continue,
                    Created::NotAllowed => {
                        "this identity may not create it: waiting for the coordinator to"
                    }
                    Created::Refused(error) => return Err(nats_error(&name, error)),
                },
                Lookup::Unreachable => "NATS or its JetStream is not reachable yet",
                Lookup::Failed => return Err(nats_error(&name, e)),
            },
        };
        if said != Some(why_wait) {
            said = Some(why_wait);
            tracing::warn!(stream = %name, "waiting for the stream: {why_wait}");
        }
        if !backoff.pause().await {
            return Err(nats_error(&name, "stopped while waiting for the stream"));
        }
    }
}

/// What looking a stream up said.
enum Lookup {
    /// It does not exist (yet).
    Missing,
    /// No answer: not connected yet, or JetStream not up (yet).
    Unreachable,
    /// Any other answer.
    Failed,
}

impl Lookup {
    fn of(client: &async_nats::Client, e: &async_nats::jetstream::context::GetStreamError) -> Self {
        use async_nats::jetstream::context::GetStreamErrorKind;
        use async_nats::jetstream::ErrorCode;
        match e.kind() {
            GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                Self::Missing
            }
            GetStreamErrorKind::JetStream(j)
                if j.error_code() == ErrorCode::CLUSTER_NOT_AVAILABLE =>
            {
                Self::Unreachable
            }
            GetStreamErrorKind::Request
                if client.connection_state() != async_nats::connection::State::Connected =>
            {
                Self::Unreachable
            }
            _ => Self::Failed,
        }
    }
}

/// What creating a stream came to.
enum Created {
    Stream(Box<async_nats::jetstream::stream::Stream>),
    /// Another component made it meanwhile: look it up again.
    ByAnother,
    /// No answer in [`CREATE_ANSWER`]: the server drops a request its permissions refuse (it only
    /// tells the client), where it answers an allowed one in milliseconds.
    NotAllowed,
    /// The server refused the configuration.
    Refused(String),
}

async fn create(
    jetstream: &async_nats::jetstream::Context,
    config: &async_nats::jetstream::stream::Config,
) -> Created {
    use async_nats::jetstream::context::CreateStreamErrorKind;
    use async_nats::jetstream::ErrorCode;
    let made = tokio::time::timeout(CREATE_ANSWER, jetstream.create_stream(config.clone())).await;
    match made {
        Ok(Ok(stream)) => Created::Stream(Box::new(stream)),
        Ok(Err(e)) => match e.kind() {
            CreateStreamErrorKind::JetStream(j)
                if j.error_code() == ErrorCode::STREAM_NAME_EXIST =>
            {
                Created::ByAnother
            }
            CreateStreamErrorKind::TimedOut => Created::NotAllowed,
            _ => Created::Refused(e.to_string()),
        },
        Err(_) => Created::NotAllowed,
    }
}

/// The stream found, after saying so when it lacks what this version's configuration asks for
/// (one made by an earlier version: direct gets, which a team's anchor is read by).
fn checked(
    stream: async_nats::jetstream::stream::Stream,
    wanted: &async_nats::jetstream::stream::Config,
) -> async_nats::jetstream::stream::Stream {
    let found = &stream.cached_info().config;
    if wanted.allow_direct && !found.allow_direct {
        tracing::error!(stream = %wanted.name,
            "the stream does not allow direct gets (made by an earlier version): a team's audit anchor cannot be read until an administrator runs `nats stream edit {} --allow-direct`",
            wanted.name);
    }
    stream
}

/// Subjects of the presence bucket: `<PRESENCE_BUCKET>.<key>`.
fn presence_subject(key: &str) -> String {
    format!("{PRESENCE_BUCKET}.{key}")
}

fn nats_error(subject: &str, error: impl std::fmt::Display) -> BusError {
    BusError::Nats {
        subject: subject.to_string(),
        error: error.to_string(),
    }
}

impl NatsBus {
    /// Connects (retrying until the server is up) and makes sure the streams and the bucket exist
    /// (creating them where this identity may, else waiting for them).
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        Self::open(url, PRESENCE_TTL, &NatsAuth::Anonymous, None).await
    }

    /// As [`connect`](Self::connect), with presence entries expiring after `presence_ttl` when this
    /// connection creates the bucket (an existing bucket keeps its own `max_age`).
    pub async fn connect_with_ttl(url: &str, presence_ttl: Duration) -> Result<Self, BusError> {
        Self::open(url, presence_ttl, &NatsAuth::Anonymous, None).await
    }

    /// Connects as `identity` (its name on the server, and the inbox only it may read) with `auth`.
    pub async fn connect_as(
        url: &str,
        auth: &NatsAuth,
        identity: Option<&str>,
    ) -> Result<Self, BusError> {
        Self::open(url, PRESENCE_TTL, auth, identity).await
    }

    async fn open(
        url: &str,
        presence_ttl: Duration,
        auth: &NatsAuth,
        identity: Option<&str>,
    ) -> Result<Self, BusError> {
        let signer = super::signing::Signer::of(auth).map_err(|e| nats_error(url, e))?;
        let mut options = async_nats::ConnectOptions::new();
        options = match auth {
            NatsAuth::Anonymous => options,
            NatsAuth::Nkey { seed } => options.nkey(seed.clone()),
            NatsAuth::Creds { path } => options
                .credentials_file(path)
                .await
                .map_err(|e| nats_error(&format!("NATS credentials file {}", path.display()), e))?,
            NatsAuth::Password { user, password } => {
                options.user_and_password(user.clone(), password.clone())
            }
        };
        if let Some(identity) = identity {
            options = options.custom_inbox_prefix(super::auth::inbox_prefix(identity));
        }
        let name = identity.unwrap_or("ia-agents");
        let (start_tx, start) = tokio::sync::watch::channel(Start::Pending);
        let (server, who) = (crate::store::redact(url), name.to_string());
        let client = options
            .name(name)
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .event_callback(move |event| {
                start_tx.send_if_modified(|start| start.after(&event));
                if let Some(said) = credentials_expired(&event) {
                    crate::shutdown::fail(format!(
                        "NATS server {server} ended the session of {who}: {said:?}; renew its \
                         credentials (the credentials file, or the Secret it is mounted from) \
                         and start it again"
                    ));
                }
                async move {
                    tracing::info!(%event, "NATS connection event");
                }
            })
            .connect(url)
            .await
            .map_err(|e| nats_error(url, e))?;
        let jetstream = async_nats::jetstream::new(client.clone());
        let streams = async {
            stream(&client, &jetstream, decision_stream()).await?;
            stream(&client, &jetstream, protocol::streams::audit_stream()).await?;
            stream(&client, &jetstream, presence_stream(presence_ttl)).await
        };
        let presence = tokio::select! {
            presence = streams => presence?,
            reason = refused(start) => {
                return Err(BusError::Refused {
                    server: crate::store::redact(url),
                    identity: name.to_string(),
                    reason,
                })
            }
        };
        Ok(Self {
            client,
            jetstream,
            presence,
            reading_presence: Default::default(),
            signer,
        })
    }

    /// The underlying NATS connection, for what the [`Bus`] trait does not cover.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context, for the services' consumers.
    pub(super) fn jetstream(&self) -> &async_nats::jetstream::Context {
        &self.jetstream
    }

    /// One request with an encoded payload: the decoded reply, `None` on a timeout or when nobody
    /// serves the subject (an undecodable reply is counted and treated as missing).
    async fn send(
        &self,
        subject: &str,
        payload: bytes::Bytes,
        timeout: Duration,
    ) -> Result<Option<Message>, BusError> {
        let request = async_nats::Request::new()
            .payload(payload)
            .timeout(Some(timeout));
        match self.client.send_request(subject.to_string(), request).await {
            Ok(reply) => Ok(decoded(subject, &reply.payload)),
            Err(e) => match e.kind() {
                async_nats::RequestErrorKind::TimedOut
                | async_nats::RequestErrorKind::NoResponders => Ok(None),
                _ => Err(nats_error(subject, e)),
            },
        }
    }
}

impl Bus for NatsBus {
    async fn request(
        &self,
        subject: &str,
        message: &Message,
        timeout: Duration,
    ) -> Result<Option<Message>, BusError> {
        self.send(subject, encode(message).into(), timeout).await
    }

    async fn request_all(
        &self,
        subjects: &[String],
        message: &Message,
        timeout: Duration,
    ) -> Vec<Result<Option<Message>, BusError>> {
        // encoded once for the whole round
        let payload: bytes::Bytes = encode(message).into();
        let asks = subjects
            .iter()
            .map(|subject| self.send(subject, payload.clone(), timeout));
        futures::future::join_all(asks).await
    }

    async fn serve(&self, subject: &str, queue: &str) -> Result<Requests, BusError> {
        let subscriber = self
            .client
            .queue_subscribe(subject.to_string(), queue.to_string())
            .await
            .map_err(|e| nats_error(subject, e))?;
        Ok(Requests::nats(subscriber, self.client.clone(), subject))
    }

    async fn publish(&self, subject: &str, message: &Message) -> Result<(), BusError> {
        self.client
            .publish(subject.to_string(), encode(message).into())
            .await
            .map_err(|e| nats_error(subject, e))
    }

    async fn subscribe(&self, subject: &str) -> Result<mpsc::Receiver<Message>, BusError> {
        let mut subscriber = self
            .client
            .subscribe(subject.to_string())
            .await
            .map_err(|e| nats_error(subject, e))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let subject = subject.to_string();
        tokio::spawn(async move {
            while let Some(m) = subscriber.next().await {
                if let Some(message) = decoded(&subject, &m.payload) {
                    if tx.send(message).await.is_err() {
                        break;
                    }
                }
            }
        });
        Ok(rx)
    }

    async fn publish_durable(
        &self,
        subject: &str,
        id: &str,
        message: &Message,
    ) -> Result<bool, BusError> {
        // the stream deduplicates by message id across all its subjects; the subject carries the
        // namespace and the Strategy, so two teams' equal ids never shadow each other
        let payload = encode(message);
        let id = format!("{subject}/{id}");
        let mut publish = async_nats::jetstream::message::PublishMessage::build();
        if let Some(signer) = &self.signer {
            let signature = signer.sign(subject, &id, &payload);
            publish = publish.header(super::signing::SIGNATURE_HEADER, signature.as_str());
        }
        let publish = publish.payload(payload.into()).message_id(id);
        let ack = self
            .jetstream
            .send_publish(subject.to_string(), publish)
            .await
            .map_err(|e| nats_error(subject, e))?
            .await
            .map_err(|e| nats_error(subject, e))?;
        Ok(!ack.duplicate)
    }

    async fn read_durable(&self, subject: &str) -> Result<mpsc::Receiver<Message>, BusError> {
        use async_nats::jetstream::consumer;
        let stream = self
            .jetstream
            .get_stream(stream_for(subject))
            .await
            .map_err(|e| nats_error(subject, e))?;
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                filter_subject: subject.to_string(),
                deliver_policy: consumer::DeliverPolicy::All,
                ack_policy: consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .map_err(|e| nats_error(subject, e))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| nats_error(subject, e))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let subject = subject.to_string();
        tokio::spawn(async move {
            while let Some(m) = messages.next().await {
                let Ok(m) = m else { continue };
                if let Some(message) = decoded(&subject, &m.payload) {
                    if tx.send(message).await.is_err() {
                        break;
                    }
                }
            }
        });
        Ok(rx)
    }

    async fn last_durable(&self, subject: &str) -> Result<Option<Message>, BusError> {
        use async_nats::jetstream::stream::DirectGetErrorKind;
        // a direct get with the subject in the request's subject (the only form a grant can hold
        // to one team's subject), on a stream handle made without a look-up
        let stream = self
            .jetstream
            .get_stream_no_info(stream_for(subject))
            .await
            .map_err(|e| nats_error(subject, e))?;
        match stream.direct_get_last_for_subject(subject).await {
            Ok(m) => Ok(decoded(subject, &m.payload)),
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(None),
            Err(e) => Err(nats_error(
                subject,
                format!("{e} (a direct get: the stream must allow them, and this identity's grant name the subject)"),
            )),
        }
    }

    async fn announce(&self, key: &str, heartbeat: &Heartbeat) -> Result<(), BusError> {
        let subject = presence_subject(key);
        self.jetstream
            .publish(
                subject.clone(),
                encode(&Message::Heartbeat(heartbeat.clone())).into(),
            )
            .await
            .map_err(|e| nats_error(&subject, e))?
            .await
            .map(|_| ())
            .map_err(|e| nats_error(&subject, e))
    }

    async fn present(&self, scope: &str) -> Result<Vec<Heartbeat>, BusError> {
        use async_nats::jetstream::consumer;
        // the team's own consumer of the shared bucket, by name and with its filter in the
        // subject, so that a grant can hold a coordinator to its own team's heartbeats: made anew
        // for each read (from each key's last heartbeat), one read at a time
        let _one_at_a_time = self.reading_presence.lock().await;
        let name = protocol::subjects::presence_consumer(scope);
        let _ = self.presence.delete_consumer(&name).await; // none yet, or the last read's
        let consumer = self
            .presence
            .create_consumer(consumer::pull::Config {
                name: Some(name),
                deliver_policy: consumer::DeliverPolicy::LastPerSubject,
                filter_subject: format!("{PRESENCE_BUCKET}.{scope}.>"),
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(5),
                ..Default::default()
            })
            .await
            .map_err(|e| nats_error(PRESENCE_BUCKET, e))?;
        let pending = consumer.cached_info().num_pending;
        let mut beats = Vec::new();
        if pending > 0 {
            let mut messages = consumer
                .fetch()
                .max_messages(pending as usize)
                .messages()
                .await
                .map_err(|e| nats_error(PRESENCE_BUCKET, e))?;
            while let Some(m) = messages.next().await {
                let Ok(m) = m else { continue };
                if let Some(Message::Heartbeat(h)) = decoded(&m.subject, &m.payload) {
                    beats.push(h);
                }
            }
        }
        beats.sort_by(|a, b| a.instance.cmp(&b.instance));
        Ok(beats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_nats::{Event, ServerError};

    #[test]
    fn expired_credentials_are_told_from_other_server_errors() {
        let expired = Event::ServerError(ServerError::Other("User Authentication Expired".into()));
        assert_eq!(
            credentials_expired(&expired),
            Some("User Authentication Expired")
        );
        let account =
            Event::ServerError(ServerError::Other("Account Authentication Expired".into()));
        assert!(credentials_expired(&account).is_some());
        for other in [
            Event::ServerError(ServerError::AuthorizationViolation),
            Event::ServerError(ServerError::Other("Permissions Violation".into())),
            Event::Disconnected,
        ] {
            assert_eq!(credentials_expired(&other), None, "{other}");
        }
    }

    #[test]
    fn a_refusal_counts_only_before_the_first_connection() {
        let refusal = Event::ClientError(async_nats::ClientError::Other(
            "authorization violation".into(),
        ));
        let mut start = Start::Pending;
        assert!(start.after(&refusal));
        assert_eq!(start, Start::Refused("authorization violation".into()));

        let mut start = Start::Pending;
        assert!(start.after(&Event::Connected));
        assert!(!start.after(&refusal), "after a connection it is retried");
        assert_eq!(start, Start::Connected);
    }
}
