//! The HTTP API (warp), served by the coordinator: health, metrics, the team's record, escalation
//! answers for humans, and a WebSocket stream of decisions.
//!
//! - `GET /healthz`, `/readyz` (ready only while the coordinator says so and the store answers),
//!   `/metrics` (Prometheus text);
//! - `GET /api/v1/decisions|orders|assistants|portfolio|positions` (paged with `limit` ≤ 1000 and
//!   `offset`, filtered by `symbol`, `from` and `to` in ms since the epoch); behind the token too
//!   when reads are protected ([`ApiState::with_read_auth`]);
//! - `POST /api/v1/escalations/{id}/approve|reject`: bearer token (401 without one, 403 for a wrong
//!   one, compared in constant time), 16 KiB body limit (chunked bodies included);
//! - `GET /api/v1/decisions/{id}` (one decision and its debate), `/api/v1/escalations` (open ones),
//!   `/api/v1/equity` (the portfolio snapshots), `/api/v1/info`: what the console reads ([`views`]);
//! - `GET /api/v1/stream`: WebSocket of decisions, escalations and their resolutions as JSON
//!   ([`stream`], [`escalations`]);
//! - `GET /` and `/api`: the web console and the API's readable page ([`console`]);
//! - `GET /api/v1/openapi.json`: the OpenAPI document.
//!
//! Every route but the probes is rate-limited per client **before** the token is checked, and a
//! failed check costs more ([`guard`]). Bad input gets a 4xx JSON body `{"error": …, "field": …}`
//! naming the field; a 5xx body says only what failed, never why (the why goes to the log).

pub mod console;
pub mod escalations;
pub mod guard;
mod openapi;
pub mod schema;
pub mod stream;
mod views;

pub use escalations::{PendingEscalations, Watched};
pub use guard::constant_time_eq;
pub use openapi::openapi;

use crate::store::{PageQuery, Store};
use futures::StreamExt;
use guard::{Access, ClientLimits, Denied};
use protocol::messages::{EscalationResolution, Heartbeat};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use warp::http::StatusCode;
use warp::{Filter, Reply};

/// What the API serves from.
#[derive(Clone)]
pub struct ApiState {
    /// The record the listings, portfolio and weights are read from.
    pub store: Store,
    /// The Strategy whose record is served; other strategies' rows and heartbeats are left out.
    pub strategy: String,
    /// Bearer token for mutating routes and the stream (`IA_API_TOKEN`); without one they answer
    /// 403 to everyone.
    pub token: Option<String>,
    /// Whether the record's listings need the token too.
    pub read_auth: bool,
    /// Browser origins, besides the API's own, that may open the stream.
    pub allowed_origins: Vec<String>,
    /// Where approve/reject answers go (the coordinator publishes them on the bus).
    pub resolutions: mpsc::Sender<EscalationResolution>,
    /// Decisions and fills as they happen, for the WebSocket stream.
    pub events: broadcast::Sender<Value>,
    /// The coordinator's own readiness (connected, voters present, publishing).
    pub ready: Arc<AtomicBool>,
    /// Escalations waiting for a human.
    pub escalations: PendingEscalations,
    /// The assistants' latest heartbeats (the coordinator refreshes them), for their health.
    pub presence: Arc<RwLock<Vec<Heartbeat>>>,
    limits: Arc<Mutex<ClientLimits>>,
    sockets: Arc<AtomicUsize>,
}

impl ApiState {
    /// Serves `strategy` from `store`, answers to `resolutions`; an empty `token` counts as none.
    /// Ready, with no extra origins and the listings open to all.
    pub fn new(
        store: Store,
        strategy: &str,
        token: Option<String>,
        resolutions: mpsc::Sender<EscalationResolution>,
    ) -> Self {
        let events = broadcast::channel(1024).0;
        Self {
            store,
            strategy: strategy.to_string(),
            token: token.filter(|t| !t.is_empty()),
            read_auth: false,
            allowed_origins: Vec::new(),
            resolutions,
            escalations: PendingEscalations::new(events.clone()),
            events,
            ready: Arc::new(AtomicBool::new(true)),
            presence: Arc::default(),
            limits: Arc::default(),
            sockets: Arc::default(),
        }
    }

    /// Readiness from the coordinator (false while it is behind on the bus).
    pub fn with_ready(mut self, ready: Arc<AtomicBool>) -> Self {
        self.ready = ready;
        self
    }

    /// Listings need the token as well.
    pub fn with_read_auth(mut self, on: bool) -> Self {
        self.read_auth = on;
        self
    }

    /// Browser origins (`https://host[:port]`) that may open the stream besides the API's own.
    pub fn with_allowed_origins(mut self, origins: Vec<String>) -> Self {
        self.allowed_origins = origins;
        self
    }

    /// Each client's request rates (the defaults suit a person and a dashboard; a load test
    /// raises them).
    pub fn with_rates(self, rates: guard::Rates) -> Self {
        self.limits.lock().unwrap_or_else(|e| e.into_inner()).rates = rates;
        self
    }

    /// Rate-limits `client`, then (when `needs_token`) checks its token; the refusal otherwise.
    fn admit(
        &self,
        client: Option<SocketAddr>,
        access: Access,
        token: Option<&str>,
        needs_token: bool,
    ) -> Result<(), Refusal> {
        let ip = client.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        let mut limits = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        if !limits.take(ip, access, 1.0) {
            return Err(Refusal(
                StatusCode::TOO_MANY_REQUESTS,
                None,
                "too many requests: slow down",
            ));
        }
        if !needs_token {
            return Ok(());
        }
        let denied = match guard::check_token(self.token.as_deref(), token) {
            Ok(()) => return Ok(()),
            Err(denied) => denied,
        };
        limits.take(ip, access, guard::FAILED_AUTH_COST - 1.0);
        Err(match denied {
            Denied::Missing => Refusal(
                StatusCode::UNAUTHORIZED,
                Some("authorization"),
                "authorization: a bearer token is required",
            ),
            Denied::Wrong => Refusal(
                StatusCode::FORBIDDEN,
                Some("authorization"),
                "authorization: the token is not accepted",
            ),
        })
    }
}

/// Why a request was turned away before it was served: status, the field at fault, the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal(StatusCode, Option<&'static str>, &'static str);

impl Refusal {
    fn response(self) -> warp::reply::Response {
        error(self.0, self.1, self.2)
    }
}

fn error(
    status: StatusCode,
    field: Option<&str>,
    message: impl Into<String>,
) -> warp::reply::Response {
    warp::reply::with_status(
        warp::reply::json(&json!({"error": message.into(), "field": field})),
        status,
    )
    .into_response()
}

/// A 5xx that names what failed; the error itself (which may name the database) is only logged.
fn internal(doing: &str, cause: &dyn std::fmt::Display) -> warp::reply::Response {
    tracing::error!(error = %cause, "{doing} failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        format!("{doing} failed: the store is unavailable (see the coordinator's log)"),
    )
}

/// Bad query input, naming the field.
#[derive(Debug)]
struct BadInput {
    field: String,
    message: String,
}

impl BadInput {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn response(self) -> warp::reply::Response {
        error(StatusCode::BAD_REQUEST, Some(&self.field), self.message)
    }
}

/// Parses and checks the paging query, naming the field at fault.
fn page(raw: &HashMap<String, String>) -> Result<PageQuery, BadInput> {
    let int = |name: &str| -> Result<Option<i64>, BadInput> {
        raw.get(name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| BadInput::new(name, format!("{name}: {v:?} is not an integer")))
            })
            .transpose()
    };
    for key in raw.keys() {
        if !["symbol", "from", "to", "limit", "offset"].contains(&key.as_str()) {
            return Err(BadInput::new(
                key,
                format!("unknown query parameter {key:?}"),
            ));
        }
    }
    let q = PageQuery {
        symbol: raw.get("symbol").cloned(),
        from: int("from")?,
        to: int("to")?,
        limit: int("limit")?,
        offset: int("offset")?,
    };
    if let Some(symbol) = &q.symbol {
        if symbol.is_empty()
            || !symbol
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            return Err(BadInput::new(
                "symbol",
                format!("symbol: {symbol:?} is not like BTCUSDT"),
            ));
        }
    }
    if q.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
        return Err(BadInput::new("limit", "limit: must be between 1 and 1000"));
    }
    if q.offset.is_some_and(|o| o < 0) {
        return Err(BadInput::new("offset", "offset: must not be negative"));
    }
    if let (Some(from), Some(to)) = (q.from, q.to) {
        if from > to {
            return Err(BadInput::new("from", "from: must not be after to"));
        }
    }
    Ok(q)
}

/// A JSON reply of `body`.
fn reply(body: &impl serde::Serialize) -> warp::reply::Response {
    warp::reply::json(body).into_response()
}

/// A page of `rows` as the API shows them.
fn page_of<T: From<R> + schema::ToSchema + serde::Serialize, R>(
    rows: Vec<R>,
    q: &PageQuery,
) -> warp::reply::Response {
    reply(&schema::Page::<T> {
        items: rows.into_iter().map(Into::into).collect(),
        limit: q.limit.unwrap_or(100),
        offset: q.offset.unwrap_or(0),
    })
}

/// `/healthz`: the process is alive.
fn health_reply() -> warp::reply::Response {
    warp::reply::json(&json!({"status": "ok"})).into_response()
}

/// `/readyz`: 200 once ready, 503 before.
fn ready_reply(ready: &AtomicBool) -> warp::reply::Response {
    if ready.load(Ordering::Relaxed) {
        warp::reply::json(&json!({"status": "ready"})).into_response()
    } else {
        error(StatusCode::SERVICE_UNAVAILABLE, None, "not ready")
    }
}

/// The coordinator's `/readyz`: its own readiness, and a store that answers within a second.
async fn coordinator_ready(s: ApiState) -> warp::reply::Response {
    if !s.ready.load(Ordering::Relaxed) {
        return error(StatusCode::SERVICE_UNAVAILABLE, None, "not ready");
    }
    match tokio::time::timeout(Duration::from_secs(1), s.store.ping()).await {
        Ok(Ok(())) => ready_reply(&s.ready),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the store does not answer");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "not ready: the store does not answer",
            )
        }
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "not ready: the store is slow",
        ),
    }
}

/// `/metrics`: the default registry in Prometheus' text format.
fn metrics_reply() -> warp::reply::Response {
    let mut text = String::new();
    match prometheus::TextEncoder::new().encode_utf8(&prometheus::gather(), &mut text) {
        Ok(()) => warp::reply::with_header(text, "content-type", "text/plain; version=0.0.4")
            .into_response(),
        Err(e) => internal("encoding the metrics", &e),
    }
}

/// The paged records the API lists.
#[derive(Debug, Clone, Copy)]
enum Record {
    Decisions,
    Orders,
    Assistants,
    Portfolio,
    Positions,
    Escalations,
    Equity,
    Info,
}

impl Record {
    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "decisions" => Record::Decisions,
            "orders" => Record::Orders,
            "assistants" => Record::Assistants,
            "portfolio" => Record::Portfolio,
            "positions" => Record::Positions,
            "escalations" => Record::Escalations,
            "equity" => Record::Equity,
            "info" => Record::Info,
            _ => return None,
        })
    }
}

/// What a read request presents.
struct Read {
    what: String,
    query: HashMap<String, String>,
    client: Option<SocketAddr>,
    authorization: Option<String>,
}

/// A listing of the record, or the 4xx/5xx that explains why not.
async fn read(request: Read, s: ApiState) -> warp::reply::Response {
    let token = guard::bearer(request.authorization.as_deref());
    if let Err(refused) = s.admit(request.client, Access::Read, token, s.read_auth) {
        return refused.response();
    }
    let Some(record) = Record::named(&request.what) else {
        return error(
            StatusCode::NOT_FOUND,
            None,
            format!("no resource {:?}", request.what),
        );
    };
    let q = match record {
        Record::Decisions | Record::Orders => page(&request.query),
        Record::Equity => views::curve_query(&request.query),
        _ => views::no_query(&request.query),
    };
    let q = match q {
        Ok(q) => q,
        Err(bad) => return bad.response(),
    };
    let found = match record {
        Record::Decisions => s
            .store
            .decisions_page(&s.strategy, &q)
            .await
            .map(|rows| page_of::<schema::DecisionItem, _>(rows, &q)),
        Record::Orders => s
            .store
            .orders_page(&s.strategy, &q)
            .await
            .map(|rows| page_of::<schema::OrderItem, _>(rows, &q)),
        Record::Assistants => views::assistants(&s).await.map(|a| reply(&a)),
        Record::Portfolio => s
            .store
            .portfolio(&s.strategy)
            .await
            .map(|p| reply(&schema::PortfolioView::from(p))),
        Record::Positions => s.store.portfolio(&s.strategy).await.map(|p| {
            reply(&schema::Items::<schema::PositionItem> {
                items: p.positions.into_iter().map(Into::into).collect(),
            })
        }),
        Record::Escalations => Ok(reply(&json!({"items": s.escalations.list()}))),
        Record::Info => Ok(reply(&schema::Info {
            strategy: s.strategy.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            read_auth: s.read_auth,
            token_set: s.token.is_some(),
        })),
        Record::Equity => s
            .store
            .equity_curve(
                &s.strategy,
                q.limit.unwrap_or(crate::store::MAX_CURVE_POINTS),
            )
            .await
            .map(|rows| {
                reply(&schema::Items::<schema::SnapshotItem> {
                    items: rows.into_iter().map(Into::into).collect(),
                })
            }),
    };
    found.unwrap_or_else(|e| internal(&format!("reading the {}", request.what), &e))
}

/// The largest request body a mutating route accepts.
pub const MAX_BODY: u64 = 16 * 1024;

const TOO_LARGE: Refusal = Refusal(
    StatusCode::PAYLOAD_TOO_LARGE,
    None,
    "request body over 16384 bytes",
);

/// What an approve/reject request presents.
struct Answer {
    id: String,
    verb: String,
    client: Option<SocketAddr>,
    authorization: Option<String>,
    length: Option<u64>,
}

/// Reads at most [`MAX_BODY`] bytes of a body, whatever its framing (`Content-Length` or chunked).
async fn body_within_limit<S, B>(body: S) -> Result<(), Refusal>
where
    S: futures::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    let mut body = std::pin::pin!(body);
    let mut read = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|_| Refusal(StatusCode::BAD_REQUEST, None, "unreadable request body"))?;
        read += chunk.remaining() as u64;
        if read > MAX_BODY {
            return Err(TOO_LARGE);
        }
    }
    Ok(())
}

/// Approve or reject: rate limit, token, body limit, id, then the answer goes to the coordinator.
async fn answer<S, B>(request: Answer, body: S, s: ApiState) -> warp::reply::Response
where
    S: futures::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    // a declared large body is refused before anything else, unread
    if request.length.is_some_and(|n| n > MAX_BODY) {
        return TOO_LARGE.response();
    }
    let token = guard::bearer(request.authorization.as_deref());
    if let Err(refused) = s.admit(request.client, Access::Write, token, true) {
        return refused.response();
    }
    let approved = match request.verb.as_str() {
        "approve" => true,
        "reject" => false,
        verb => {
            return error(
                StatusCode::NOT_FOUND,
                None,
                format!("no action {verb:?}: use approve or reject"),
            )
        }
    };
    if let Err(refused) = body_within_limit(body).await {
        return refused.response();
    }
    let id = request.id;
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return error(
            StatusCode::BAD_REQUEST,
            Some("id"),
            format!("id: {id:?} is not an escalation id"),
        );
    }
    let resolution = EscalationResolution {
        id: id.clone().into(),
        approved,
        by: "http-api".into(),
        at: chrono::Utc::now().timestamp_millis(),
    };
    match s.resolutions.send(resolution).await {
        Ok(()) => warp::reply::with_status(
            warp::reply::json(&json!({"id": id, "approved": approved})),
            StatusCode::ACCEPTED,
        )
        .into_response(),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "the coordinator is not listening",
        ),
    }
}

/// Every route.
pub fn routes(
    state: ApiState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    let with = {
        let state = state.clone();
        warp::any().map(move || state.clone())
    };
    let healthz = warp::path!("healthz").and(warp::get()).map(health_reply);
    let readyz = warp::path!("readyz")
        .and(warp::get())
        .and(with.clone())
        .then(coordinator_ready);
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(warp::addr::remote())
        .and(with.clone())
        .map(
            |client, s: ApiState| match s.admit(client, Access::Read, None, false) {
                Ok(()) => metrics_reply(),
                Err(refused) => refused.response(),
            },
        );
    let openapi = warp::path!("api" / "v1" / "openapi.json")
        .and(warp::get())
        .map(|| warp::reply::json(&openapi()).into_response());
    let records = warp::path!("api" / "v1" / String)
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::addr::remote())
        .and(guard::authorization())
        .and(with.clone())
        .then(|what, query, client, authorization, s| {
            read(
                Read {
                    what,
                    query,
                    client,
                    authorization,
                },
                s,
            )
        });
    let decision = warp::path!("api" / "v1" / "decisions" / String)
        .and(warp::get())
        .and(warp::addr::remote())
        .and(guard::authorization())
        .and(with.clone())
        .then(|id, client, authorization, s| {
            views::decision(
                views::DecisionRequest {
                    id,
                    client,
                    authorization,
                },
                s,
            )
        });
    let resolve = warp::path!("api" / "v1" / "escalations" / String / String)
        .and(warp::post())
        .and(warp::addr::remote())
        .and(guard::authorization())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .and(with.clone())
        .then(|id, verb, client, authorization, length, body, s| {
            answer(
                Answer {
                    id,
                    verb,
                    client,
                    authorization,
                    length,
                },
                body,
                s,
            )
        });
    let not_found =
        warp::any().map(|| error(StatusCode::NOT_FOUND, None, "no such route or method"));
    healthz
        .or(readyz)
        .unify()
        .or(metrics)
        .unify()
        .or(openapi)
        .unify()
        .or(console::routes())
        .unify()
        .or(stream::route(state))
        .unify()
        .or(decision)
        .unify()
        .or(records)
        .unify()
        .or(resolve)
        .unify()
        .or(not_found)
        .unify()
}

/// Health and metrics only, for processes without the full API (assistants): `/healthz`, `/readyz`
/// (ready once `ready` is set) and `/metrics`.
pub async fn serve_health(
    addr: std::net::SocketAddr,
    ready: Arc<AtomicBool>,
) -> std::io::Result<std::net::SocketAddr> {
    let healthz = warp::path!("healthz").map(health_reply);
    let readyz = warp::path!("readyz").map(move || ready_reply(&ready));
    let metrics = warp::path!("metrics").map(metrics_reply);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(
        warp::serve(warp::get().and(healthz.or(readyz).unify().or(metrics).unify()))
            .incoming(listener)
            .run(),
    );
    Ok(bound)
}

/// Serves the API on `addr` until `shutdown`.
pub async fn serve(
    state: ApiState,
    addr: std::net::SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(
        warp::serve(routes(state))
            .incoming(listener)
            .graceful(shutdown)
            .run(),
    );
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn records_are_named_by_their_path() {
        assert!(matches!(
            Record::named("decisions"),
            Some(Record::Decisions)
        ));
        assert!(matches!(
            Record::named("positions"),
            Some(Record::Positions)
        ));
        assert!(Record::named("secrets").is_none());
    }

    #[test]
    fn the_size_refusal_states_the_limit() {
        assert!(TOO_LARGE.2.contains(&MAX_BODY.to_string()));
    }

    /// A decoded query string: the parameters the API knows and others, with values of every kind.
    pub(super) fn arb_query() -> impl Strategy<Value = HashMap<String, String>> {
        let key = prop_oneof![
            3 => prop::sample::select(vec!["symbol", "from", "to", "limit", "offset"])
                .prop_map(String::from),
            1 => ".{0,8}",
        ];
        let value = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            (-5i64..2000).prop_map(|n| n.to_string()),
            "[A-Z0-9]{0,10}",
            ".{0,10}",
            prop::sample::select(vec![
                " 1",
                "+1",
                "1.0",
                "",
                "0x10",
                "9223372036854775808",
                "1e3"
            ])
            .prop_map(String::from),
        ];
        prop::collection::hash_map(key, value, 0..6)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Any query: a page within the documented bounds, or a 400 naming a parameter it holds.
        #[test]
        fn any_paging_query_is_a_bounded_page_or_names_its_fault(raw in arb_query()) {
            match page(&raw) {
                Ok(q) => {
                    prop_assert!(raw.keys().all(|k| ["symbol", "from", "to", "limit", "offset"].contains(&k.as_str())));
                    prop_assert_eq!(&q.symbol, &raw.get("symbol").cloned());
                    prop_assert!(q.symbol.iter().all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())));
                    prop_assert!(q.limit.is_none_or(|l| (1..=1000).contains(&l)));
                    prop_assert!(q.offset.is_none_or(|o| o >= 0));
                    prop_assert!(q.from.zip(q.to).is_none_or(|(from, to)| from <= to));
                    for (name, value) in [("from", q.from), ("to", q.to), ("limit", q.limit), ("offset", q.offset)] {
                        prop_assert_eq!(value, raw.get(name).map(|v| v.parse::<i64>().unwrap()));
                    }
                }
                Err(bad) => {
                    prop_assert!(raw.contains_key(&bad.field), "{:?} names {:?}", raw, bad.field);
                    prop_assert!(!bad.message.is_empty());
                }
            }
        }
    }
}
