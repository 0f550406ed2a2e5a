//! Escalations waiting for a human, as `GET /api/v1/escalations` and the console see them.
//!
//! [`Watched`] wraps the coordinator's resolver (the bus): an escalation is listed from the moment it
//! is raised until it is answered or times out, and both moments go to the WebSocket stream as
//! `{"type": "escalation", "escalation": …}` and `{"type": "resolution", "id", "outcome"}`.

use crate::consensus::{EscalationResolver, Resolution};
use protocol::messages::Escalation;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// The open escalations of one coordinator, shared with its API.
#[derive(Clone)]
pub struct PendingEscalations {
    open: Arc<Mutex<BTreeMap<String, Escalation>>>,
    events: broadcast::Sender<Value>,
}

impl PendingEscalations {
    /// An empty list whose changes go to `events`.
    pub fn new(events: broadcast::Sender<Value>) -> Self {
        Self {
            open: Arc::default(),
            events,
        }
    }

    /// Every open escalation, oldest first.
    pub fn list(&self) -> Vec<Escalation> {
        let mut open: Vec<_> = self.lock().values().cloned().collect();
        open.sort_by_key(|e| (e.raised_at, e.id.clone()));
        open
    }

    fn opened(&self, escalation: &Escalation) {
        self.lock()
            .insert(escalation.id.to_string(), escalation.clone());
        let _ = self
            .events
            .send(json!({"type": "escalation", "escalation": escalation}));
    }

    fn closed(&self, id: &str, resolution: &Resolution) {
        self.lock().remove(id);
        let mut event =
            json!({"type": "resolution", "id": id, "outcome": outcome_name(resolution)});
        if let Resolution::Approved { by } | Resolution::Rejected { by } = resolution {
            event["by"] = by.as_str().into();
        }
        let _ = self.events.send(event);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Escalation>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How the stream names a resolution.
pub fn outcome_name(resolution: &Resolution) -> &'static str {
    match resolution {
        Resolution::Approved { .. } => "approved",
        Resolution::Rejected { .. } => "rejected",
        Resolution::TimedOut => "timedOut",
    }
}

/// A resolver whose open escalations are listed in `pending` (when the API runs) and told to the
/// Strategy's notification targets, linked to the console at `console_url`.
pub struct Watched<R> {
    /// The resolver that actually answers (the bus, or a fixed answer in tests).
    pub inner: R,
    /// Where open escalations are listed; None when no API runs.
    pub pending: Option<PendingEscalations>,
    /// Who is told of each escalation as it is raised; nobody by default.
    pub notifier: notify::Notifier,
    /// The console's base URL, linked from notifications; None leaves the link out.
    pub console_url: Option<String>,
}

impl<R> Watched<R> {
    /// `inner`, listed in `pending`, told to nobody.
    pub fn new(inner: R, pending: Option<PendingEscalations>) -> Self {
        Self {
            inner,
            pending,
            notifier: notify::Notifier::none(),
            console_url: None,
        }
    }
}

impl<R: EscalationResolver> EscalationResolver for Watched<R> {
    async fn resolve(&self, escalation: &Escalation) -> Resolution {
        if let Some(pending) = &self.pending {
            pending.opened(escalation);
        }
        self.notifier
            .send(|| notify::Event::escalation(escalation, self.console_url.as_deref()));
        let resolution = self.inner.resolve(escalation).await;
        if let Some(pending) = &self.pending {
            pending.closed(&escalation.id, &resolution);
        }
        resolution
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Action;

    struct Answers(Resolution);

    impl EscalationResolver for Answers {
        async fn resolve(&self, _: &Escalation) -> Resolution {
            self.0.clone()
        }
    }

    fn escalation(id: &str, raised_at: i64) -> Escalation {
        Escalation {
            id: id.into(),
            strategy: "s".into(),
            symbol: "BTCUSDT".into(),
            proposed: Action::Buy,
            scores: BTreeMap::new(),
            timeout_seconds: 60,
            raised_at,
        }
    }

    #[tokio::test]
    async fn an_escalation_is_listed_until_it_is_answered_and_both_moments_are_streamed() {
        let (events, mut rx) = broadcast::channel(8);
        let pending = PendingEscalations::new(events);
        pending.opened(&escalation("late", 2));
        let watched = Watched::new(
            Answers(Resolution::Rejected {
                by: "http-api".into(),
            }),
            Some(pending.clone()),
        );
        assert_eq!(
            watched.resolve(&escalation("early", 1)).await,
            Resolution::Rejected {
                by: "http-api".into()
            }
        );
        assert_eq!(rx.recv().await.unwrap()["type"], "escalation");
        let opened = rx.recv().await.unwrap();
        assert_eq!(opened["escalation"]["id"], "early");
        let closed = rx.recv().await.unwrap();
        assert_eq!(
            (closed["type"].as_str(), closed["id"].as_str()),
            (Some("resolution"), Some("early"))
        );
        assert_eq!(closed["outcome"], "rejected");
        assert_eq!(closed["by"], "http-api", "who answered is streamed too");
        let ids: Vec<_> = pending.list().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["late"], "the answered one is gone, the other stays");
    }
}
