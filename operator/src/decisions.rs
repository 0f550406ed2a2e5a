//! Consensus outcomes as Strategy conditions (docs/architecture.md, "From a Strategy to running
//! pods and back"): one consumer per Strategy reads its team's decision stream (JetStream),
//! escalation subjects (core NATS) and audit anchor (JetStream, `IA_AUDIT`) and writes
//! `status.lastDecision`, `status.pendingEscalations`, `status.audit`, `ConsensusReached` and
//! `EscalationPending` under a field manager of its own, so the reconciler's conditions are never
//! overwritten.
//! The same connection relays a human's approve/reject (from the Strategy's annotations).

use crate::status::{apply_status, condition};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::Api;
use protocol::crd::conditions::{CONSENSUS_REACHED, ESCALATION_PENDING};
use protocol::crd::{
    set_condition, AuditAnchor, DecisionSummary, PendingEscalation, PortfolioSummary, Strategy,
};
use protocol::messages::{
    decode, encode, AuditHead, Decision, Escalation, EscalationResolution, Message,
};
use protocol::nats_auth::{operator_audit_consumer, operator_consumer};
use protocol::subjects::{Subjects, STREAM_AUDIT, STREAM_DECISIONS};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The field manager of the outcome fields of a Strategy's status.
pub const FIELD_MANAGER: &str = "trading-operator-decisions";

/// Why a consumer or the relay could not talk to a team's NATS.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// Connecting, subscribing, consuming or publishing failed.
    #[error("Strategy {strategy}: NATS at {url}: {reason}")]
    Nats {
        /// The Strategy whose team it is, `namespace/name`.
        strategy: String,
        /// The NATS server's URL.
        url: String,
        /// The client's error.
        reason: String,
    },
}

/// The outcome fields of a Strategy's status, as this consumer owns them.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// `status.lastDecision`: the newest decision seen (an older one never replaces it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<DecisionSummary>,
    /// `status.pendingEscalations`: escalations raised and not yet decided or answered.
    pub pending_escalations: Vec<PendingEscalation>,
    /// `ConsensusReached` and `EscalationPending`, the conditions this consumer owns.
    pub conditions: Vec<Condition>,
    /// `status.audit`: the last audit anchor the coordinator published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditAnchor>,
    /// `status.portfolio`: the team's book as the coordinator last published it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub portfolio: Option<PortfolioSummary>,
}

/// How long the server keeps one of the operator's consumers once nobody pulls from it.
///
/// Both are ephemeral consumers with a name, one per team and stream ([`operator_consumer`],
/// [`operator_audit_consumer`]), so that the operator's grant names them and nothing else of the
/// streams'. Not durables: they keep nothing worth keeping (they acknowledge nothing, the status is
/// rebuilt from the team's last message, and each start of the team's consumer makes them anew,
/// [`fresh_consumer`]), and the server removes an ephemeral one by itself this long after the
/// operator stopped pulling (the Strategy deleted, the operator gone or no longer the leader, its
/// NATS changed), with nothing for the operator to clean up.
const CONSUMER_INACTIVE: Duration = Duration::from_secs(300);

/// The least time between two status writes for the book alone (a replaying coordinator publishes
/// it every second); a decision, an escalation or an anchor writes it at once.
const BOOK_WRITE_EVERY: Duration = Duration::from_secs(10);

fn rfc3339(ms: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl Outcome {
    /// Folds one message of the team into the outcome; returns whether the status changed.
    pub fn observe(&mut self, message: &Message, now: Time, generation: Option<i64>) -> bool {
        let before = self.clone();
        match message {
            Message::AuditHead(a) => return self.anchored(a),
            Message::Portfolio(p) => {
                let cents = |x: f64| (x * 100.0).round() / 100.0;
                let book = Some(PortfolioSummary {
                    equity: cents(p.equity),
                    pnl: cents(p.pnl),
                    open_positions: p.open_positions,
                });
                return std::mem::replace(&mut self.portfolio, book) != self.portfolio;
            }
            Message::Decision(d) => self.decided(d, now.clone(), generation),
            Message::Escalation(e) => self.escalated(e),
            Message::EscalationResolution(r) => self.pending_escalations.retain(|p| p.id != r.id),
            _ => return false,
        }
        let pending = match self.pending_escalations.as_slice() {
            [] => condition(
                ESCALATION_PENDING,
                false,
                "NoneOpen",
                "no decision waits for a human",
                generation,
            ),
            open => condition(
                ESCALATION_PENDING,
                true,
                "AwaitingHuman",
                format!(
                    "decision {} ({}) waits for a human: annotate the Strategy with \
                     trading.ia-agents.dev/approve={} or trading.ia-agents.dev/reject={}{}",
                    open[0].id,
                    open[0].symbol,
                    open[0].id,
                    open[0].id,
                    if open.len() > 1 {
                        format!(" ({} more open)", open.len() - 1)
                    } else {
                        String::new()
                    }
                ),
                generation,
            ),
        };
        set_condition(&mut self.conditions, pending, now);
        *self != before
    }

    fn decided(&mut self, d: &Decision, now: Time, generation: Option<i64>) {
        // a replayed older decision (consumer restart) must not move the status back in time
        if let Some(last) = &self.last_decision {
            // compared as instants: RFC 3339 strings with and without fractions do not sort
            let last_ms = last
                .at
                .parse::<k8s_openapi::jiff::Timestamp>()
                .map(|t| t.as_millisecond());
            if last.id == d.id || last_ms.is_ok_and(|ms| ms > d.decided_at) {
                self.pending_escalations.retain(|p| p.id != d.id);
                return;
            }
        }
        let votes = d
            .rounds
            .last()
            .map(|r| {
                r.scores
                    .iter()
                    .map(|(a, s)| (a.to_string(), (s * 1000.0).round() / 1000.0))
                    .collect::<BTreeMap<_, _>>()
            })
            .unwrap_or_default();
        self.last_decision = Some(DecisionSummary {
            id: d.id.to_string(),
            symbol: d.symbol.to_string(),
            action: d.action,
            confidence: (d.confidence * 1000.0).round() / 1000.0,
            consensus_reached: d.consensus_reached,
            vetoed: d.vetoed,
            rounds: d.rounds.len() as u32,
            votes,
            at: rfc3339(d.decided_at),
        });
        let (status, reason) = if d.vetoed {
            (false, "Vetoed")
        } else if d.rejected {
            (false, "Rejected")
        } else if d.consensus_reached {
            (true, "Consensus")
        } else {
            (false, "NoConsensus")
        };
        let message = format!(
            "decision {}: {} {} at {:.0}% after {} round(s){}",
            d.id,
            d.action,
            d.symbol,
            d.confidence * 100.0,
            d.rounds.len(),
            if d.escalated { ", escalated" } else { "" }
        );
        set_condition(
            &mut self.conditions,
            condition(CONSENSUS_REACHED, status, reason, message, generation),
            now,
        );
        self.pending_escalations.retain(|p| p.id != d.id);
    }

    /// The audit anchor as the stream has it (it keeps one, the last); whether it changed.
    fn anchored(&mut self, a: &AuditHead) -> bool {
        let anchor = AuditAnchor {
            head: a.head.clone(),
            entries: a.entries,
            at: rfc3339(a.at),
            keyed: a.keyed,
        };
        if let Some(shown) = self.audit.as_ref().filter(|s| s.entries > a.entries) {
            // only a coordinator whose chain reaches the anchor replaces it: a shorter chain
            // means its database was restored or the anchor purged by hand
            tracing::warn!(strategy = %a.strategy, shown = shown.entries, anchored = a.entries,
                "the audit anchor went back: check the database with `trading-agent audit verify`");
        }
        let changed = self.audit.as_ref() != Some(&anchor);
        self.audit = Some(anchor);
        changed
    }

    fn escalated(&mut self, e: &Escalation) {
        if !self.pending_escalations.iter().any(|p| p.id == e.id) {
            self.pending_escalations.push(PendingEscalation {
                id: e.id.to_string(),
                symbol: e.symbol.to_string(),
                since: rfc3339(e.raised_at),
            });
        }
    }
}

/// How the operator reaches a team's NATS: the server's URL and, where the server checks
/// identities, the seed of the team's `operator` identity ([`protocol::nats_auth::OPERATOR`]).
#[derive(Clone, PartialEq, Eq)]
pub struct TeamNats {
    /// The server (`nats://host:port`).
    pub url: String,
    seed: Option<String>,
}

impl TeamNats {
    /// A server that checks no identity.
    pub fn anonymous(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            seed: None,
        }
    }

    /// A server on which the operator is the team's `operator` identity, with its nkey `seed`.
    pub fn with_nkey(url: impl Into<String>, seed: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            seed: Some(seed.into().trim().to_string()),
        }
    }

    /// The connection options: the seed (if any), and the operator's own inbox, the only one its
    /// identity may read.
    fn options(&self) -> async_nats::ConnectOptions {
        let options = match &self.seed {
            Some(seed) => async_nats::ConnectOptions::with_nkey(seed.clone()),
            None => async_nats::ConnectOptions::new(),
        };
        options.custom_inbox_prefix(protocol::nats_auth::inbox_prefix(
            protocol::nats_auth::OPERATOR,
        ))
    }
}

impl std::fmt::Debug for TeamNats {
    /// Never shows the seed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let identity = if self.seed.is_some() {
            "nkey"
        } else {
            "anonymous"
        };
        write!(f, "TeamNats({}, {identity})", self.url)
    }
}

struct Watcher {
    nats: TeamNats,
    task: JoinHandle<()>,
}

/// One decision consumer per Strategy, started by the Strategy reconciler and stopped by its
/// finalizer; plus the relay of escalation answers.
pub struct DecisionWatchers {
    kube: Option<kube::Client>,
    watchers: Mutex<HashMap<String, Watcher>>,
    now: fn() -> Time,
}

impl DecisionWatchers {
    /// Consumers that write outcomes through `kube`.
    pub fn new(kube: kube::Client) -> Self {
        Self {
            kube: Some(kube),
            watchers: Mutex::default(),
            now: || Time(k8s_openapi::jiff::Timestamp::now()),
        }
    }

    /// No consumers (`trading-operator run --no-decisions`, and reconciler tests): the outcome
    /// conditions are not written; relaying an answer still works.
    pub fn disabled() -> Self {
        Self {
            kube: None,
            watchers: Mutex::default(),
            now: || Time(k8s_openapi::jiff::Timestamp::now()),
        }
    }

    /// The Strategies whose decision stream is being consumed (`namespace/name`).
    pub fn watched(&self) -> Vec<String> {
        let mut keys: Vec<_> = self
            .watchers
            .lock()
            .expect("lock")
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    /// Starts the consumer of a Strategy (again, if its NATS URL or credentials changed).
    pub fn ensure(&self, namespace: &str, strategy: &str, nats: &TeamNats) {
        let Some(kube) = &self.kube else { return };
        let key = format!("{namespace}/{strategy}");
        let mut watchers = self.watchers.lock().expect("lock");
        if let Some(w) = watchers.get(&key) {
            if w.nats == *nats && !w.task.is_finished() {
                return;
            }
            w.task.abort();
        }
        let task = tokio::spawn(consume(
            kube.clone(),
            namespace.to_string(),
            strategy.to_string(),
            nats.clone(),
            self.now,
        ));
        watchers.insert(
            key,
            Watcher {
                nats: nats.clone(),
                task,
            },
        );
    }

    /// Stops the consumer of a deleted Strategy.
    pub fn stop(&self, namespace: &str, strategy: &str) {
        if let Some(w) = self
            .watchers
            .lock()
            .expect("lock")
            .remove(&format!("{namespace}/{strategy}"))
        {
            w.task.abort();
        }
    }

    /// Publishes a human's answer to an escalation on the team's NATS, where the coordinator waits
    /// for it. Returns once the server has it (flushed).
    pub async fn relay(
        &self,
        namespace: &str,
        strategy: &str,
        nats: &TeamNats,
        answer: &EscalationResolution,
    ) -> Result<(), NatsError> {
        let team = Team {
            namespace,
            strategy,
            nats,
        };
        let error = |e: &dyn std::fmt::Display| team.error(e);
        let (subjects, client) = team.connect("trading-operator-relay").await?;
        let subject = subjects.escalation(&answer.id).map_err(|e| error(&e))?;
        client
            .publish(
                subject,
                encode(&Message::EscalationResolution(answer.clone())).into(),
            )
            .await
            .map_err(|e| error(&e))?;
        client.flush().await.map_err(|e| error(&e))?;
        Ok(())
    }
}

/// One team's NATS, as the consumer and the relay reach it.
struct Team<'a> {
    namespace: &'a str,
    strategy: &'a str,
    nats: &'a TeamNats,
}

impl Team<'_> {
    /// An error naming the Strategy and the server.
    fn error(&self, reason: &dyn std::fmt::Display) -> NatsError {
        NatsError::Nats {
            strategy: format!("{}/{}", self.namespace, self.strategy),
            url: self.nats.url.clone(),
            reason: reason.to_string(),
        }
    }

    /// The team's subjects and a connection, named `name` on the server.
    async fn connect(&self, name: &str) -> Result<(Subjects, async_nats::Client), NatsError> {
        let subjects = Subjects::new(self.namespace, self.strategy).map_err(|e| self.error(&e))?;
        let client = self
            .nats
            .options()
            .name(name)
            .connection_timeout(Duration::from_secs(5))
            .connect(&self.nats.url)
            .await
            .map_err(|e| self.error(&e))?;
        Ok((subjects, client))
    }
}

impl Drop for DecisionWatchers {
    fn drop(&mut self) {
        for w in self.watchers.lock().expect("lock").values() {
            w.task.abort();
        }
    }
}

/// Consumes one team's outcomes until aborted, reconnecting with backoff.
async fn consume(
    kube: kube::Client,
    namespace: String,
    strategy: String,
    nats: TeamNats,
    now: fn() -> Time,
) {
    let mut delay = Duration::from_secs(1);
    loop {
        match consume_once(&kube, &namespace, &strategy, &nats, now).await {
            Ok(()) => delay = Duration::from_secs(1),
            Err(error) => {
                tracing::warn!(strategy = %format!("{namespace}/{strategy}"), %error,
                    retry_in_s = delay.as_secs(), "decision stream unavailable");
                delay = (delay * 2).min(Duration::from_secs(60));
            }
        }
        tokio::time::sleep(delay).await;
    }
}

async fn consume_once(
    kube: &kube::Client,
    namespace: &str,
    strategy: &str,
    nats: &TeamNats,
    now: fn() -> Time,
) -> Result<(), NatsError> {
    use async_nats::jetstream::consumer;
    let team = Team {
        namespace,
        strategy,
        nats,
    };
    let url = &nats.url;
    let error = |reason: String| team.error(&reason);
    let (subjects, client) = team.connect("trading-operator").await?;
    // escalations are core NATS: subscribe first so none raised meanwhile is missed
    let mut escalations = client
        .subscribe(subjects.all_escalations())
        .await
        .map_err(|e| error(e.to_string()))?;
    let mut books = client
        .subscribe(subjects.portfolio())
        .await
        .map_err(|e| error(e.to_string()))?;
    let jetstream = async_nats::jetstream::new(client.clone());
    // the coordinator creates the stream; until it has, there is nothing to consume
    let stream = jetstream
        .get_stream(STREAM_DECISIONS)
        .await
        .map_err(|e| error(format!("stream {STREAM_DECISIONS}: {e}")))?;
    let strategies: Api<Strategy> = Api::namespaced(kube.clone(), namespace);
    let (mut outcome, mut generation) = current_outcome(&strategies, strategy).await;
    let consumer = fresh_consumer(
        &stream,
        consumer::pull::Config {
            // by its name, which the operator's grant names (nothing else of the stream's)
            name: Some(operator_consumer(&subjects)),
            // `….decision` carries the coordinator's candles too (with executor and auditor
            // services): `Outcome::observe` passes them by
            filter_subject: subjects.decision(),
            deliver_policy: resume_from(outcome.last_decision.as_ref(), nats_now()),
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: CONSUMER_INACTIVE,
            ..Default::default()
        },
    )
    .await
    .map_err(error)?;
    let mut decisions = consumer
        .messages()
        .await
        .map_err(|e| error(e.to_string()))?;
    let mut anchors = audit_anchors(&jetstream, &subjects)
        .await
        .map_err(|e| error(format!("stream {STREAM_AUDIT}: {e}")))?;
    tracing::info!(strategy = %format!("{namespace}/{strategy}"), %url, "consuming the decision stream");

    let mut book_written = std::time::Instant::now() - BOOK_WRITE_EVERY;
    loop {
        let message = tokio::select! {
            m = decisions.next() => match m {
                Some(Ok(m)) => decode(&m.payload),
                Some(Err(e)) => return Err(error(e.to_string())),
                None => return Err(error("the decision consumer ended".into())),
            },
            m = escalations.next() => match m {
                Some(m) => decode(&m.payload),
                None => return Err(error("the escalation subscription ended".into())),
            },
            m = anchors.next() => match m {
                Some(Ok(m)) => decode(&m.payload),
                Some(Err(e)) => return Err(error(e.to_string())),
                None => return Err(error("the audit anchor consumer ended".into())),
            },
            m = books.next() => match m {
                Some(m) => decode(&m.payload),
                None => return Err(error("the portfolio subscription ended".into())),
            },
        };
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(strategy, kind = e.kind(), error = %e, "rejected a malformed message");
                continue;
            }
        };
        // conditions are stamped with the generation read at the last write: the Strategy is read
        // only when there is something to write, not for every candle and book on the stream
        let changed = outcome.observe(&message, now(), generation);
        let book_only = matches!(message, Message::Portfolio(_));
        if !changed || (book_only && book_written.elapsed() < BOOK_WRITE_EVERY) {
            continue; // a change is kept in the outcome: written with the next write
        }
        let Some(current) = strategies
            .get_opt(strategy)
            .await
            .map_err(|e| error(format!("reading the Strategy: {e}")))?
        else {
            return Ok(());
        };
        generation = current.metadata.generation;
        book_written = std::time::Instant::now();
        apply_status(&strategies, &current, &outcome, FIELD_MANAGER)
            .await
            .map_err(|e| error(e.to_string()))?;
        written(kube, namespace, strategy, &message).await;
    }
}

/// After `message` reached the Strategy's status: a decision's voters get theirs, and the log says
/// what was written.
async fn written(kube: &kube::Client, namespace: &str, strategy: &str, message: &Message) {
    match message {
        Message::Decision(d) => {
            tracing::info!(strategy, id = %d.id, action = %d.action, consensus = d.consensus_reached,
                "decision written to the Strategy's status");
            assistants_voted(kube, namespace, d).await;
        }
        Message::AuditHead(a) => {
            tracing::debug!(strategy, entries = a.entries, head = %a.head,
                "audit anchor written to the Strategy's status");
        }
        _ => {}
    }
}

/// The team's audit anchors, the last one first: from the `IA_AUDIT` stream, created here as the
/// agents create it when the team's coordinator has not yet (one from before the anchor), so that
/// the decisions are consumed all the same.
async fn audit_anchors(
    jetstream: &async_nats::jetstream::Context,
    subjects: &Subjects,
) -> Result<async_nats::jetstream::consumer::pull::Stream, String> {
    use async_nats::jetstream::consumer;
    let stream = jetstream
        .get_or_create_stream(protocol::streams::audit_stream())
        .await
        .map_err(|e| e.to_string())?;
    let config = consumer::pull::Config {
        name: Some(operator_audit_consumer(subjects)),
        filter_subject: subjects.audit(),
        deliver_policy: consumer::DeliverPolicy::LastPerSubject,
        ack_policy: consumer::AckPolicy::None,
        inactive_threshold: CONSUMER_INACTIVE,
        ..Default::default()
    };
    fresh_consumer(&stream, config)
        .await?
        .messages()
        .await
        .map_err(|e| e.to_string())
}

/// Where the operator's decision consumer starts: at the decision the status last showed, when it
/// shows one, so that every decision made while the operator was away is seen (the newest wins);
/// otherwise at the subject's last message.
///
/// Not simply the last message: with executor and auditor services the coordinator's candles share
/// `….decision`, and the last message may be a candle published after a decision the status never
/// showed, which would leave the status on the decision before it until the next one.
///
/// Never more than [`CATCH_UP`] before `now`: a replay's decisions carry their candles' (past)
/// times, and starting there would read the whole stream again at every reconnection.
fn resume_from(
    shown: Option<&DecisionSummary>,
    now: async_nats::datetime::DateTime,
) -> async_nats::jetstream::consumer::DeliverPolicy {
    use async_nats::jetstream::consumer::DeliverPolicy;
    match shown.and_then(|d| async_nats::datetime::parse_rfc3339(&d.at).ok()) {
        // the stream stores a decision after it is made, at or after `at` by the server's clock;
        // a minute earlier allows for the two clocks' skew (older decisions are passed by)
        Some(at) => DeliverPolicy::ByStartTime {
            start_time: (at - std::time::Duration::from_secs(60)).max(now - CATCH_UP),
        },
        None => DeliverPolicy::LastPerSubject,
    }
}

/// How far back a restarted operator reads the decision stream at most: longer than any analysis
/// schedule's gap between two decisions, short enough that a reconnection reads a bounded part of
/// the stream.
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// Now, in the type JetStream's start times take.
fn nats_now() -> async_nats::datetime::DateTime {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    async_nats::datetime::from_nanos(nanos as i128).expect("now is a representable time")
}

/// The operator's consumer `config` (named) of `stream`, made anew: one left by an earlier start
/// (a reconnection, the operator restarted within [`CONSUMER_INACTIVE`]) is deleted first, so that
/// the consumer starts again from the team's last message, as the status is rebuilt from it (a
/// Strategy made again under the same name has an empty status).
async fn fresh_consumer(
    stream: &async_nats::jetstream::stream::Stream,
    config: async_nats::jetstream::consumer::pull::Config,
) -> Result<async_nats::jetstream::consumer::PullConsumer, String> {
    use async_nats::jetstream::{stream::ConsumerErrorKind, ErrorCode};
    let name = config.name.clone().unwrap_or_default();
    if let Err(e) = stream.delete_consumer(&name).await {
        let gone = matches!(e.kind(), ConsumerErrorKind::JetStream(j)
            if j.error_code() == ErrorCode::CONSUMER_NOT_FOUND);
        if !gone {
            // an older grant without the delete (an external NATS configured by an older
            // `trading-agent nats-config`): the consumer goes on where it was
            tracing::warn!(consumer = %name, error = %e,
                "cannot make the operator's consumer anew; regenerate the NATS authorization");
        }
    }
    stream
        .create_consumer(config)
        .await
        .map_err(|e| format!("consumer {name}: {e}"))
}

/// Each voter's weight (learned, or its spec.weight) and latest opinion, into its TradingAssistant's
/// status. A vote from an assistant that is not a TradingAssistant here (a process outside the
/// cluster) is skipped.
async fn assistants_voted(kube: &kube::Client, namespace: &str, d: &Decision) {
    let Some(last) = d.rounds.last() else { return };
    let assistants: Api<protocol::crd::TradingAssistant> = Api::namespaced(kube.clone(), namespace);
    let at = rfc3339(d.decided_at);
    for vote in &last.votes {
        let Ok(Some(ta)) = assistants.get_opt(&vote.assistant).await else {
            continue;
        };
        let status = serde_json::json!({
            "weight": (vote.weight * 1000.0).round() / 1000.0,
            "lastOpinion": {
                "symbol": d.symbol,
                "action": vote.action,
                "confidence": (vote.confidence * 1000.0).round() / 1000.0,
                "at": at,
            },
        });
        if let Err(error) = apply_status(&assistants, &ta, &status, FIELD_MANAGER).await {
            tracing::debug!(assistant = %vote.assistant, %error, "cannot write the assistant's vote");
        }
    }
}

/// The outcome fields already in the status (a restarted consumer keeps transition times), and
/// the Strategy's generation they are stamped with until the next write reads it again.
async fn current_outcome(strategies: &Api<Strategy>, strategy: &str) -> (Outcome, Option<i64>) {
    let Ok(Some(s)) = strategies.get_opt(strategy).await else {
        return (Outcome::default(), None);
    };
    let status = s.status.unwrap_or_default();
    let outcome = Outcome {
        last_decision: status.last_decision,
        pending_escalations: status.pending_escalations,
        conditions: status
            .conditions
            .into_iter()
            .filter(|c| c.type_ == CONSENSUS_REACHED || c.type_ == ESCALATION_PENDING)
            .collect(),
        audit: status.audit,
        portfolio: status.portfolio,
    };
    (outcome, s.metadata.generation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::messages::RoundTally;
    use protocol::Action;

    fn shown_at(at: &str) -> DecisionSummary {
        DecisionSummary {
            id: "d".into(),
            symbol: "BTCUSDT".into(),
            action: Action::Hold,
            confidence: 0.5,
            consensus_reached: true,
            vetoed: false,
            rounds: 1,
            votes: Default::default(),
            at: at.into(),
        }
    }

    #[test]
    fn a_restart_reads_back_from_the_shown_decision_but_never_more_than_the_catch_up() {
        use async_nats::jetstream::consumer::DeliverPolicy;
        let at = |s: &str| async_nats::datetime::parse_rfc3339(s).unwrap();
        let now = at("2026-12-05T12:00:00Z");
        let start = |shown: Option<&DecisionSummary>| match resume_from(shown, now) {
            DeliverPolicy::ByStartTime { start_time } => Some(start_time),
            _ => None,
        };
        // a live decision of ten minutes ago: from a minute before it (clock skew)
        let recent = shown_at("2026-12-05T11:50:00Z");
        assert_eq!(start(Some(&recent)), Some(at("2026-12-05T11:49:00Z")));
        // a replay's decision on a 2020 candle: not the whole stream since 2020
        let replayed = shown_at("2020-06-01T00:00:00Z");
        assert_eq!(start(Some(&replayed)), Some(at("2026-12-05T06:00:00Z")));
        // nothing shown: the subject's last message
        assert!(matches!(
            resume_from(None, now),
            DeliverPolicy::LastPerSubject
        ));
    }

    fn time(s: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap())
    }

    fn decision(id: &str, consensus: bool, vetoed: bool, at: i64) -> Message {
        Message::Decision(Decision {
            id: id.into(),
            strategy: "s".into(),
            symbol: "BTCUSDT".into(),
            action: Action::Buy,
            confidence: 0.7234,
            consensus_reached: consensus,
            escalated: false,
            vetoed,
            rejected: false,
            resolved_by: None,
            rounds: vec![RoundTally {
                round: 1,
                votes: vec![],
                scores: [(Action::Buy, 1.5), (Action::Hold, 0.5)].into(),
                answered_weight: 2.0,
                total_weight: 2.0,
            }],
            transcript: vec![],
            price: 1.0,
            decided_at: at,
        })
    }

    fn cond<'a>(o: &'a Outcome, t: &str) -> &'a Condition {
        o.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn the_book_becomes_the_status_portfolio_in_cents() {
        let mut o = Outcome::default();
        let book = |equity: f64| {
            Message::Portfolio(protocol::messages::PortfolioSnapshot {
                strategy: "s".into(),
                equity,
                pnl: equity - 10_000.0,
                open_positions: 1,
                at: 0,
            })
        };
        assert!(o.observe(&book(10_234.504_9), time(1), Some(1)));
        let p = o.portfolio.clone().unwrap();
        assert_eq!((p.equity, p.pnl, p.open_positions), (10_234.5, 234.5, 1));
        assert!(
            !o.observe(&book(10_234.501_2), time(2), Some(1)),
            "same cents: no write"
        );
        let status = serde_json::to_value(&o).unwrap();
        assert_eq!(status["portfolio"]["openPositions"], 1);
    }

    #[test]
    fn decisions_become_conditions_and_a_summary() {
        let mut o = Outcome::default();
        assert!(o.observe(&decision("a", true, false, 1_000), time(10), Some(3)));
        let c = cond(&o, CONSENSUS_REACHED);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "Consensus")
        );
        assert!(c.message.contains("BUY BTCUSDT at 72%"), "{}", c.message);
        let last = o.last_decision.clone().unwrap();
        assert_eq!(
            (last.id.as_str(), last.rounds, last.confidence),
            ("a", 1, 0.723)
        );
        assert_eq!(last.votes["BUY"], 1.5);
        assert_eq!(last.at, "1970-01-01T00:00:01Z");

        assert!(o.observe(&decision("b", false, false, 2_000), time(20), Some(3)));
        assert_eq!(cond(&o, CONSENSUS_REACHED).reason, "NoConsensus");
        assert_eq!(cond(&o, CONSENSUS_REACHED).last_transition_time, time(20));
        // same status, new reason: the transition time stays
        assert!(o.observe(&decision("c", false, true, 3_000), time(30), Some(3)));
        assert_eq!(cond(&o, CONSENSUS_REACHED).reason, "Vetoed");
        assert_eq!(cond(&o, CONSENSUS_REACHED).last_transition_time, time(20));
        assert!(
            o.last_decision.as_ref().unwrap().vetoed,
            "the summary says it too"
        );
        // a replay of an older decision changes nothing, even a fraction of a second older
        assert!(!o.observe(&decision("b", false, false, 2_000), time(40), Some(3)));
        assert_eq!(o.last_decision.as_ref().unwrap().id, "c");
        assert!(o.observe(&decision("d", true, false, 3_500), time(50), Some(3)));
        assert!(!o.observe(&decision("e", true, false, 3_400), time(60), Some(3)));
        assert_eq!(o.last_decision.as_ref().unwrap().id, "d");
    }

    #[test]
    fn the_audit_anchor_is_shown_as_the_stream_has_it() {
        let anchor = |entries: u64, head: &str| {
            Message::AuditHead(AuditHead {
                strategy: "s".into(),
                head: head.repeat(64),
                entries,
                at: 1_000,
                keyed: true,
            })
        };
        let mut o = Outcome::default();
        assert!(o.observe(&anchor(3, "a"), time(1), None));
        let shown = o.audit.clone().unwrap();
        assert_eq!(
            (
                shown.entries,
                shown.head.len(),
                shown.at.as_str(),
                shown.keyed
            ),
            (3, 64, "1970-01-01T00:00:01Z", true)
        );
        assert!(!o.observe(&anchor(3, "a"), time(2), None), "unchanged");
        assert!(o.observe(&anchor(5, "b"), time(3), None));
        assert_eq!(o.audit.as_ref().unwrap().entries, 5);
        assert!(o.conditions.is_empty(), "an anchor sets no condition");
        let status = serde_json::to_value(&o).unwrap();
        assert_eq!(status["audit"]["entries"], 5);
    }

    #[test]
    fn escalations_are_pending_until_answered_or_decided() {
        let mut o = Outcome::default();
        let escalation = |id: &str| {
            Message::Escalation(Escalation {
                id: id.into(),
                strategy: "s".into(),
                symbol: "ETHUSDT".into(),
                proposed: Action::Sell,
                scores: Default::default(),
                timeout_seconds: 60,
                raised_at: 5_000,
            })
        };
        assert!(o.observe(&escalation("e1"), time(1), None));
        assert!(o.observe(&escalation("e2"), time(2), None));
        let c = cond(&o, ESCALATION_PENDING);
        assert_eq!(c.status, "True");
        assert!(
            c.message.contains("approve=e1") && c.message.contains("1 more open"),
            "{}",
            c.message
        );
        let answer = Message::EscalationResolution(EscalationResolution {
            id: "e1".into(),
            approved: true,
            by: "annotation".into(),
            at: 6_000,
        });
        assert!(o.observe(&answer, time(3), None));
        assert_eq!(o.pending_escalations.len(), 1);
        assert!(o.observe(&decision("e2", false, false, 7_000), time(4), None));
        let c = cond(&o, ESCALATION_PENDING);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "NoneOpen")
        );
        assert_eq!(c.last_transition_time, time(4));
    }
}
