//! The coordinator process (docs/architecture.md, "The coordinator process"): the engine driven by
//! the voters on the bus. It waits for the declared team, resumes its learned weights, serves the
//! API and console, watches the team's health, publishes every decision to the durable stream
//! in order, and stops cleanly when asked. `trading-agent coordinator` only parses its arguments,
//! builds the [`Session`] and calls [`run`].
//!
//! - [`voters`]: who votes, and with what weight;
//! - [`publish`]: decisions onto the stream and the terminal;
//! - [`anchor`]: the audit chain's head onto `….audit` once stored, the anchor outside the database;
//! - [`api`]: the HTTP API and console, with the escalation relay.

pub mod anchor;
pub mod api;
pub mod executor_book;
pub mod portfolio;
pub mod publish;
pub mod voters;

use crate::api::escalations::Watched;
use crate::bus::nats::NatsBus;
use crate::bus::publisher::PublishError;
use crate::bus::BusError;
use crate::consensus::bus_transport::{BusEscalations, BusTransport};
use crate::consensus::Voter;
use crate::engine::{AuditHead, ReplayTeam, Session, SessionError};
use crate::market::stream::SymbolCandle;
use crate::store::{Store, StoreError};
use protocol::subjects::Subjects;
use serde_json::json;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::Receiver;
use tokio::task::JoinHandle;

pub use api::ApiOptions;

/// Why the coordinator stopped before its run was over.
#[derive(Debug, thiserror::Error)]
pub enum CoordinationError {
    /// Nobody of the team announced itself in time.
    #[error("no assistant of Strategy {strategy} is present on {server} after {waited_s} s")]
    NoVoters {
        /// The Strategy's name.
        strategy: String,
        /// The NATS server waited on.
        server: String,
        /// How long it waited, s.
        waited_s: u64,
    },
    /// The API's address cannot be bound.
    #[error("--listen {addr}: {error}")]
    Listen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why it cannot be bound.
        error: std::io::Error,
    },
    /// The publisher's task panicked or was cancelled.
    #[error("the decision publisher stopped: {0}")]
    PublisherGone(String),
    /// Decisions were left unpublished when the process had to stop.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The bus failed (reading the presence).
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine failed.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// Live candles after the loaded ones, and the task that streams them (stopped with the run).
#[derive(Default)]
pub struct LiveFeed {
    /// Closed live candles, as they come; `None` for a replay.
    pub candles: Option<Receiver<SymbolCandle>>,
    /// The task reading the kline streams.
    pub task: Option<JoinHandle<()>>,
}

/// How the coordinator runs besides its session.
pub struct Options {
    /// The declared team (`--team-file`); `None`: whoever announces itself votes, at weight 1.
    pub declared: Option<Vec<Voter>>,
    /// How long to wait for the policy's voters before starting with those present.
    pub wait_for_voters: Duration,
    /// The record's database.
    pub store: Option<Store>,
    /// The HTTP API and console (served with a store only).
    pub api: ApiOptions,
    /// Print each decision as one JSON line.
    pub json_lines: bool,
    /// Decisions that may wait for the stream before the team stops deciding (`--max-unpublished`).
    pub max_unpublished: usize,
    /// The executor and auditor run as services of their own (`--services`): the coordinator puts
    /// candles and decisions on the stream, places no order and writes no decision, order or audit
    /// row (the auditor does, and anchors the chain).
    pub services: bool,
}

/// What a run did.
pub struct Summary {
    /// Cycles the team ran.
    pub cycles: u64,
    /// Candles decided on (history excluded).
    pub candles: u64,
    /// Decisions on the stream.
    pub published: u64,
    /// The audit chain's head, the anchor for `audit verify --expect-head` (with a store).
    pub audit: Option<AuditHead>,
    /// The last anchor published on `….audit` (none without a store, or when withheld).
    pub anchored: Option<protocol::messages::AuditHead>,
}

/// The decision publisher of `session`, whose loop waits while `--max-unpublished` decisions wait
/// for the stream (the backlog it counts them in).
#[allow(clippy::type_complexity)]
fn publisher(
    session: &mut Session,
    bus: &NatsBus,
    subjects: &Subjects,
    ready: &Arc<AtomicBool>,
    options: &Options,
) -> (
    tokio::sync::mpsc::UnboundedSender<publish::Outgoing>,
    tokio::task::JoinHandle<Result<u64, crate::bus::publisher::PublishError>>,
    Arc<crate::bus::publisher::Backlog>,
) {
    let backlog = crate::bus::publisher::Backlog::new(options.max_unpublished);
    session.backlog = Some(backlog.clone());
    let strategy = session
        .team_config
        .strategy
        .metadata
        .name
        .clone()
        .unwrap_or_default();
    let (decisions, task) = publish::spawn_publisher(
        bus.clone(),
        subjects.clone(),
        strategy,
        (ready.clone(), backlog.clone()),
        options.json_lines,
    );
    if options.services {
        // each scored candle goes out ahead of its decision, for the executor service's desk
        let (out, backlog) = (decisions.clone(), backlog.clone());
        session.services = Some(Box::new(move |candle| {
            backlog.added();
            let _ = out.send(publish::Outgoing::Candle(candle));
        }));
    }
    (decisions, task, backlog)
}

/// Runs `session` with the voters on `bus` (the server at `server`), its decisions to the stream
/// of `subjects`, until the feed ends or the process is asked to stop.
pub async fn run(
    mut session: Session,
    feed: LiveFeed,
    bus: NatsBus,
    subjects: Subjects,
    server: &str,
    options: Options,
) -> Result<Summary, CoordinationError> {
    let strategy = session
        .team_config
        .strategy
        .metadata
        .name
        .clone()
        .unwrap_or_default();
    let policy = session.team_config.policy.spec.clone();
    let expected = voters::Expected {
        strategy: &strategy,
        roles: &policy.voters,
        declared: options.declared.as_deref(),
        patience: options.wait_for_voters,
        server,
    };
    let mut voters = voters::wait_for_voters(&bus, subjects.presence_scope(), &expected).await?;
    tracing::info!(voters = voters.len(), %strategy, "coordinating");
    // ready while every decision made is on the stream; the API's /readyz reads it
    let ready = Arc::new(AtomicBool::new(true));
    let (book, book_task) = portfolio::start(bus.clone(), subjects.portfolio());
    session.portfolio = Some(book);
    let (decisions, publisher, backlog) =
        publisher(&mut session, &bus, &subjects, &ready, &options);
    let live = feed.candles.is_some();
    if options.services && live {
        // the view of the book follows the executor's, which the exchange fills
        session.executor_book = Some(executor_book::follow(&bus, &subjects, &strategy).await?);
    }
    let mut anchoring = match &options.store {
        Some(store) => {
            let how = (options.services, live);
            resume(store, &mut session, &bus, &subjects, &mut voters, how).await?
        }
        None => anchor::Anchoring::default(),
    };
    let api = match (options.api.listen, &options.store) {
        (Some(addr), Some(store)) => {
            Some(api::serve(&options.api, addr, store, &strategy, &bus, &subjects, ready).await?)
        }
        _ => None,
    };
    let counted = voters::counted(&policy.voters, &voters);
    watch_health(&bus, &subjects, &session, counted, api.as_ref());
    let transport = BusTransport {
        bus: bus.clone(),
        subjects: subjects.clone(),
        round_timeout: Duration::from_secs(u64::from(policy.round_timeout_seconds)),
    };
    let escalations = escalations(&session, &bus, &subjects, api.as_ref());
    // decided, stored and published before a stop lets the process go (crate::shutdown)
    let in_flight = crate::shutdown::busy();
    let team = ReplayTeam {
        transport: &transport,
        escalations: &escalations,
        voters,
    };
    let on_decision = |d: &protocol::messages::Decision| {
        if let Some(state) = &api {
            let _ = state
                .events
                .send(json!({"type": "decision", "decision": d}));
        }
        backlog.added();
        if decisions
            .send(publish::Outgoing::Decision(d.clone()))
            .is_err()
        {
            tracing::error!(id = %d.id, "the publisher has stopped: decision stored, not published");
        }
    };
    let outcome = session
        .replay_anchored(
            feed.candles,
            team,
            options.store.as_ref(),
            anchoring.sender.take(),
            on_decision,
            |_, _| {},
        )
        .await?;
    // the publisher ends once every sender is gone: the decisions' and the candles'
    drop(decisions);
    drop(session.services.take());
    if let Some(task) = feed.task {
        task.abort();
    }
    let published = drain(publisher, &bus).await?;
    // the run's record is gone; with the session's sender dropped too, the last book goes out
    drop(session.portfolio.take());
    let _ = book_task.await;
    let anchored = anchoring.finish().await;
    drop(in_flight);
    Ok(summary(outcome, published, anchored))
}

fn summary(
    outcome: crate::engine::Outcome,
    published: u64,
    anchored: Option<protocol::messages::AuditHead>,
) -> Summary {
    Summary {
        cycles: outcome.cycles,
        candles: outcome.candles,
        published,
        audit: outcome.audit,
        anchored,
    }
}

/// Watches the presence of the team's `counted` voters (`team_health`), telling the API and the
/// notification targets.
fn watch_health(
    bus: &NatsBus,
    subjects: &Subjects,
    session: &Session,
    counted: Vec<protocol::Role>,
    api: Option<&crate::api::ApiState>,
) {
    tokio::spawn(crate::team_health::watch(
        bus.clone(),
        subjects.presence_scope().to_string(),
        session
            .team_config
            .strategy
            .metadata
            .name
            .clone()
            .unwrap_or_default(),
        counted,
        api.map(|state| state.presence.clone()),
        session.notifier.clone(),
    ));
}

/// A coordinator with a store resumes from the weights its team had learned, says whether its
/// audit chain is keyed, and anchors the chain on `….audit` as it is stored.
async fn resume(
    store: &Store,
    session: &mut Session,
    bus: &NatsBus,
    subjects: &Subjects,
    voters: &mut [Voter],
    (services, live): (bool, bool),
) -> Result<anchor::Anchoring, CoordinationError> {
    if live {
        resume_book(store, session).await?;
    }
    let strategy = session.team_config.strategy.metadata.name.as_deref();
    let strategy = strategy.unwrap_or_default();
    let resumed = voters::resume_weights(store, strategy, voters).await?;
    if resumed > 0 {
        tracing::info!(resumed, "resuming the learned vote weights from the store");
    }
    if services {
        // the auditor service keeps the chain and its anchor
        return Ok(anchor::Anchoring::default());
    }
    warn_if_unkeyed(&session.audit_key);
    Ok(anchor::start(bus, subjects, strategy, store).await?)
}

/// A live coordinator starts from the book it last wrote (a replay decides its history again and
/// needs none): its cash and positions, so a restart does not forget what it holds. Live trading
/// then reconciles the positions with the account.
async fn resume_book(store: &Store, session: &mut Session) -> Result<(), CoordinationError> {
    let strategy = session.team_config.strategy.metadata.name.clone();
    let book =
        crate::engine::OpeningBook::load(store, strategy.as_deref().unwrap_or_default()).await?;
    if let Some(book) = &book {
        tracing::info!(cash = %book.cash, positions = book.positions.len(),
            "resuming the book from the store");
    }
    session.opening_book = book;
    Ok(())
}

/// Where escalations go: to the bus (answered by the operator's relay or the API), listed in the
/// API while open and told to the Strategy's notification targets.
fn escalations(
    session: &Session,
    bus: &NatsBus,
    subjects: &Subjects,
    api: Option<&crate::api::ApiState>,
) -> Watched<BusEscalations<NatsBus>> {
    let notifications = session.team_config.strategy.spec.notifications.as_ref();
    Watched {
        inner: BusEscalations {
            bus: bus.clone(),
            subjects: subjects.clone(),
        },
        pending: api.map(|state| state.escalations.clone()),
        notifier: session.notifier.clone(),
        console_url: notifications.and_then(|n| n.console_url.clone()),
    }
}

/// Waits until the publisher has put every decision on the stream, then flushes the bus (a
/// client that lost its server flushes only once it is back: at most 2 s). How many it published.
async fn drain(
    publisher: JoinHandle<Result<u64, PublishError>>,
    bus: &NatsBus,
) -> Result<u64, CoordinationError> {
    let published = publisher
        .await
        .map_err(|e| CoordinationError::PublisherGone(e.to_string()))??;
    if tokio::time::timeout(Duration::from_secs(2), bus.client().flush())
        .await
        .is_err()
    {
        tracing::warn!("the bus did not flush within 2 s (NATS away?)");
    }
    Ok(published)
}

/// Says loudly that the audit chain is not keyed (`IA_AUDIT_KEY` unset).
fn warn_if_unkeyed(key: &crate::audit::AuditKey) {
    if !key.is_keyed() {
        tracing::warn!(
            "IA_AUDIT_KEY is not set: the audit chain is UNKEYED, so anyone who can write the database can rewrite it undetected"
        );
    }
}
