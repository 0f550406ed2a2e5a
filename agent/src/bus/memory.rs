//! The bus in one process: queue groups served round-robin, core pub/sub, a durable log per subject
//! deduplicated by id, and presence with a TTL. Exact subjects only (the team needs no wildcards).

use super::{Bus, BusError, Incoming, Replier, Requests, PRESENCE_TTL};
use protocol::messages::{Heartbeat, Message};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Capacity of each server's and subscriber's queue.
const QUEUE: usize = 1024;

/// A [`Bus`] inside one process, for the local team and tests; clones share the same bus.
#[derive(Clone, Default)]
pub struct MemoryBus {
    inner: Arc<Mutex<Inner>>,
    ttl: Option<Duration>,
}

#[derive(Default)]
struct Inner {
    /// subject → queue groups → members, with the next member to use
    groups: HashMap<String, Vec<Group>>,
    subscribers: HashMap<String, Vec<mpsc::Sender<Message>>>,
    durable: HashMap<String, Durable>,
    presence: HashMap<String, (Instant, Heartbeat)>,
}

struct Group {
    name: String,
    members: Vec<mpsc::Sender<Incoming>>,
    next: usize,
}

#[derive(Default)]
struct Durable {
    ids: HashSet<String>,
    log: Vec<Message>,
    readers: Vec<mpsc::UnboundedSender<Message>>,
}

impl MemoryBus {
    /// An empty bus whose presence entries expire after [`PRESENCE_TTL`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A bus whose presence entries expire after `ttl` (default [`PRESENCE_TTL`]).
    pub fn with_presence_ttl(ttl: Duration) -> Self {
        Self {
            ttl: Some(ttl),
            ..Self::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request whose message is shared with the other recipients of its round.
    async fn request_shared(
        &self,
        subject: &str,
        message: Arc<Message>,
        timeout: Duration,
    ) -> Result<Option<Message>, BusError> {
        let Some(member) = self.pick(subject) else {
            return Ok(None); // no responders
        };
        let (tx, rx) = oneshot::channel();
        let incoming = Incoming {
            message,
            reply: Replier::Memory(tx),
        };
        if member.send(incoming).await.is_err() {
            return Ok(None);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(Some(reply)),
            _ => Ok(None),
        }
    }

    /// One live member of the first queue group of `subject`, round-robin.
    fn pick(&self, subject: &str) -> Option<mpsc::Sender<Incoming>> {
        let mut inner = self.lock();
        let group = inner.groups.get_mut(subject)?.first_mut()?;
        group.members.retain(|m| !m.is_closed());
        if group.members.is_empty() {
            return None;
        }
        group.next = (group.next + 1) % group.members.len();
        Some(group.members[group.next].clone())
    }
}

impl Bus for MemoryBus {
    async fn request(
        &self,
        subject: &str,
        message: &Message,
        timeout: Duration,
    ) -> Result<Option<Message>, BusError> {
        self.request_shared(subject, Arc::new(message.clone()), timeout)
            .await
    }

    async fn request_all(
        &self,
        subjects: &[String],
        message: &Message,
        timeout: Duration,
    ) -> Vec<Result<Option<Message>, BusError>> {
        let shared = Arc::new(message.clone());
        let asks = subjects
            .iter()
            .map(|s| self.request_shared(s, shared.clone(), timeout));
        futures::future::join_all(asks).await
    }

    async fn serve(&self, subject: &str, queue: &str) -> Result<Requests, BusError> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut inner = self.lock();
        let groups = inner.groups.entry(subject.to_string()).or_default();
        match groups.iter_mut().find(|g| g.name == queue) {
            Some(group) => group.members.push(tx),
            None => groups.push(Group {
                name: queue.to_string(),
                members: vec![tx],
                next: 0,
            }),
        }
        Ok(Requests::channel(rx))
    }

    async fn publish(&self, subject: &str, message: &Message) -> Result<(), BusError> {
        let subscribers: Vec<_> = {
            let mut inner = self.lock();
            let Some(subs) = inner.subscribers.get_mut(subject) else {
                return Ok(());
            };
            subs.retain(|s| !s.is_closed());
            subs.clone()
        };
        for s in subscribers {
            // a slow subscriber drops messages rather than stalling the publisher, as core NATS does
            let _ = s.try_send(message.clone());
        }
        Ok(())
    }

    async fn subscribe(&self, subject: &str) -> Result<mpsc::Receiver<Message>, BusError> {
        let (tx, rx) = mpsc::channel(QUEUE);
        self.lock()
            .subscribers
            .entry(subject.to_string())
            .or_default()
            .push(tx);
        Ok(rx)
    }

    async fn publish_durable(
        &self,
        subject: &str,
        id: &str,
        message: &Message,
    ) -> Result<bool, BusError> {
        let mut inner = self.lock();
        let durable = inner.durable.entry(subject.to_string()).or_default();
        if !durable.ids.insert(id.to_string()) {
            return Ok(false);
        }
        durable.log.push(message.clone());
        durable.readers.retain(|r| r.send(message.clone()).is_ok());
        Ok(true)
    }

    async fn read_durable(&self, subject: &str) -> Result<mpsc::Receiver<Message>, BusError> {
        let (tx, mut unbounded) = mpsc::unbounded_channel();
        {
            let mut inner = self.lock();
            let durable = inner.durable.entry(subject.to_string()).or_default();
            for m in &durable.log {
                let _ = tx.send(m.clone());
            }
            durable.readers.push(tx);
        }
        // hand out a bounded receiver like the NATS side
        let (out, rx) = mpsc::channel(QUEUE);
        tokio::spawn(async move {
            while let Some(m) = unbounded.recv().await {
                if out.send(m).await.is_err() {
                    break;
                }
            }
        });
        Ok(rx)
    }

    async fn last_durable(&self, subject: &str) -> Result<Option<Message>, BusError> {
        Ok(self
            .lock()
            .durable
            .get(subject)
            .and_then(|d| d.log.last().cloned()))
    }

    async fn announce(&self, key: &str, heartbeat: &Heartbeat) -> Result<(), BusError> {
        self.lock()
            .presence
            .insert(key.to_string(), (Instant::now(), heartbeat.clone()));
        Ok(())
    }

    async fn present(&self, scope: &str) -> Result<Vec<Heartbeat>, BusError> {
        let ttl = self.ttl.unwrap_or(PRESENCE_TTL);
        let mut inner = self.lock();
        inner.presence.retain(|_, (at, _)| at.elapsed() < ttl);
        let prefix = format!("{scope}.");
        let mut beats: Vec<Heartbeat> = inner
            .presence
            .iter()
            .filter(|(key, _)| key.starts_with(&prefix))
            .map(|(_, (_, h))| h.clone())
            .collect();
        beats.sort_by(|a, b| a.instance.cmp(&b.instance));
        Ok(beats)
    }
}
