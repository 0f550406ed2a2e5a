//! The HTTP API (warp), served by the coordinator: health, metrics, the team's record, escalation
//! answers for humans, and a WebSocket stream of decisions.
//!
//! - `GET /healthz`, `/readyz`, `/metrics` (Prometheus text);
//! - `GET /api/v1/decisions|orders|assistants|portfolio|positions` (paged with `limit` ≤ 1000 and
//!   `offset`, filtered by `symbol`, `from` and `to` in ms since the epoch);
//! - `POST /api/v1/escalations/{id}/approve|reject`: bearer token (401 without one, 403 for a wrong
//!   one, compared in constant time), 16 KiB body limit, rate-limited;
//! - `GET /api/v1/stream`: WebSocket of decisions and fills as JSON;
//! - `GET /api/v1/openapi.json`: the OpenAPI document.
//!
//! Bad input gets a 4xx JSON body `{"error": …, "field": …}` naming the field.

use crate::store::{PageQuery, Store};
use futures::{SinkExt, StreamExt};
use protocol::messages::EscalationResolution;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};
use warp::http::StatusCode;
use warp::{Filter, Reply};

/// What the API serves from.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub strategy: String,
    /// Bearer token for mutating routes (`IA_API_TOKEN`); without one they answer 403 to everyone.
    pub token: Option<String>,
    /// Where approve/reject answers go (the coordinator publishes them on the bus).
    pub resolutions: mpsc::Sender<EscalationResolution>,
    /// Decisions and fills as they happen, for the WebSocket stream.
    pub events: broadcast::Sender<Value>,
    pub ready: Arc<AtomicBool>,
    limiter: Arc<Mutex<Bucket>>,
}

/// A token bucket: `burst` requests, refilled at `per_second`.
struct Bucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.per_second)
            .min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl ApiState {
    pub fn new(
        store: Store,
        strategy: &str,
        token: Option<String>,
        resolutions: mpsc::Sender<EscalationResolution>,
    ) -> Self {
        Self {
            store,
            strategy: strategy.to_string(),
            token: token.filter(|t| !t.is_empty()),
            resolutions,
            events: broadcast::channel(1024).0,
            ready: Arc::new(AtomicBool::new(true)),
            limiter: Arc::new(Mutex::new(Bucket {
                tokens: 20.0,
                burst: 20.0,
                per_second: 5.0,
                at: Instant::now(),
            })),
        }
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

fn listing(items: Vec<Value>, q: &PageQuery) -> warp::reply::Response {
    warp::reply::json(
        &json!({"items": items, "limit": q.limit.unwrap_or(100), "offset": q.offset.unwrap_or(0)}),
    )
    .into_response()
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

/// `/metrics`: the default registry in Prometheus' text format.
fn metrics_reply() -> warp::reply::Response {
    let mut text = String::new();
    match prometheus::TextEncoder::new().encode_utf8(&prometheus::gather(), &mut text) {
        Ok(()) => warp::reply::with_header(text, "content-type", "text/plain; version=0.0.4")
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, None, e.to_string()),
    }
}

/// The paged records the API lists.
#[derive(Debug, Clone, Copy)]
enum Record {
    Decisions,
    Orders,
}

/// A paged listing of `record`, or the 4xx/5xx that explains why not.
async fn list(record: Record, raw: HashMap<String, String>, s: ApiState) -> warp::reply::Response {
    let q = match page(&raw) {
        Ok(q) => q,
        Err(bad) => return bad.response(),
    };
    let items = match record {
        Record::Decisions => s.store.decisions_page(&s.strategy, &q).await,
        Record::Orders => s.store.orders_page(&s.strategy, &q).await,
    };
    match items {
        Ok(items) => listing(items, &q),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, None, e.to_string()),
    }
}

/// The largest request body a mutating route accepts.
pub const MAX_BODY: u64 = 16 * 1024;

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
        .map(|s: ApiState| ready_reply(&s.ready));
    let metrics = warp::path!("metrics").and(warp::get()).map(metrics_reply);
    let query = warp::query::<HashMap<String, String>>();
    let decisions = warp::path!("api" / "v1" / "decisions")
        .and(warp::get())
        .and(query)
        .and(with.clone())
        .then(|raw, s| list(Record::Decisions, raw, s));
    let orders = warp::path!("api" / "v1" / "orders")
        .and(warp::get())
        .and(query)
        .and(with.clone())
        .then(|raw, s| list(Record::Orders, raw, s));
    let assistants = warp::path!("api" / "v1" / "assistants")
        .and(warp::get())
        .and(with.clone())
        .then(|s: ApiState| async move {
            match s.store.weights(&s.strategy).await {
                Ok(items) => warp::reply::json(&json!({"items": items})).into_response(),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, None, e.to_string()),
            }
        });
    let portfolio = warp::path!("api" / "v1" / String)
        .and(warp::get())
        .and(with.clone())
        .then(|what: String, s: ApiState| async move {
            if what != "portfolio" && what != "positions" {
                return error(StatusCode::NOT_FOUND, None, format!("no resource {what:?}"));
            }
            match s.store.portfolio(&s.strategy).await {
                Ok(p) if what == "positions" => {
                    warp::reply::json(&json!({"items": p["positions"]})).into_response()
                }
                Ok(p) => warp::reply::json(&p).into_response(),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, None, e.to_string()),
            }
        });
    let resolve =
        warp::path!("api" / "v1" / "escalations" / String / String)
            .and(warp::post())
            .and(warp::header::optional::<String>("authorization"))
            .and(warp::header::optional::<u64>("content-length"))
            .and(with.clone())
            .then(
                |id: String,
                 verb: String,
                 auth: Option<String>,
                 length: Option<u64>,
                 s: ApiState| async move {
                    // the body is never read; a large one is refused before anything else
                    if length.is_some_and(|n| n > MAX_BODY) {
                        return error(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            None,
                            format!("request body over {MAX_BODY} bytes"),
                        );
                    }
                    let approved = match verb.as_str() {
                        "approve" => true,
                        "reject" => false,
                        _ => {
                            return error(
                                StatusCode::NOT_FOUND,
                                None,
                                format!("no action {verb:?}: use approve or reject"),
                            )
                        }
                    };
                    let Some(presented) = auth.as_deref().and_then(|a| a.strip_prefix("Bearer "))
                    else {
                        return error(
                            StatusCode::UNAUTHORIZED,
                            Some("authorization"),
                            "authorization: a bearer token is required",
                        );
                    };
                    let allowed = s
                        .token
                        .as_deref()
                        .is_some_and(|t| constant_time_eq(t.as_bytes(), presented.as_bytes()));
                    if !allowed {
                        return error(
                            StatusCode::FORBIDDEN,
                            Some("authorization"),
                            "authorization: the token is not accepted",
                        );
                    }
                    if !s.limiter.lock().unwrap_or_else(|e| e.into_inner()).take() {
                        return error(
                            StatusCode::TOO_MANY_REQUESTS,
                            None,
                            "too many requests: slow down",
                        );
                    }
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
                        id: id.clone(),
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
                },
            );
    let stream = warp::path!("api" / "v1" / "stream")
        .and(warp::ws())
        .and(with.clone())
        .map(|ws: warp::ws::Ws, s: ApiState| {
            ws.on_upgrade(move |socket| async move {
            let (mut tx, mut rx) = socket.split();
            let mut events = s.events.subscribe();
            loop {
                tokio::select! {
                    event = events.recv() => match event {
                        Ok(event) => {
                            if tx.send(warp::ws::Message::text(event.to_string())).await.is_err() {
                                break;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    },
                    incoming = rx.next() => if incoming.is_none() { break },
                }
            }
        })
        .into_response()
        });
    let openapi = warp::path!("api" / "v1" / "openapi.json")
        .and(warp::get())
        .map(|| warp::reply::json(&openapi()).into_response());
    let not_found =
        warp::any().map(|| error(StatusCode::NOT_FOUND, None, "no such route or method"));
    healthz
        .or(readyz)
        .unify()
        .or(metrics)
        .unify()
        .or(openapi)
        .unify()
        .or(decisions)
        .unify()
        .or(orders)
        .unify()
        .or(assistants)
        .unify()
        .or(stream)
        .unify()
        .or(portfolio)
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

/// The OpenAPI 3 document of the routes.
pub fn openapi() -> Value {
    let page_params = json!([
        {"name": "symbol", "in": "query", "schema": {"type": "string", "pattern": "^[A-Z0-9]+$"}},
        {"name": "from", "in": "query", "schema": {"type": "integer", "format": "int64"}, "description": "ms since the epoch, inclusive"},
        {"name": "to", "in": "query", "schema": {"type": "integer", "format": "int64"}, "description": "ms since the epoch, inclusive"},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}}
    ]);
    let error = json!({"description": "bad input", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let list = |what: &str| json!({"get": {"summary": format!("List {what}, newest first"), "parameters": page_params, "responses": {"200": {"description": format!("a page of {what}")}, "400": error}}});
    json!({
        "openapi": "3.0.3",
        "info": {"title": "ia-agents coordinator API", "version": env!("CARGO_PKG_VERSION")},
        "paths": {
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}},
            "/readyz": {"get": {"summary": "Readiness", "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition format"}}}},
            "/api/v1/decisions": list("decisions"),
            "/api/v1/orders": list("orders"),
            "/api/v1/assistants": {"get": {"summary": "Assistants and their vote weights", "responses": {"200": {"description": "assistants"}}}},
            "/api/v1/portfolio": {"get": {"summary": "Positions and the latest equity", "responses": {"200": {"description": "portfolio"}}}},
            "/api/v1/positions": {"get": {"summary": "Open positions", "responses": {"200": {"description": "positions"}}}},
            "/api/v1/escalations/{id}/{action}": {"post": {
                "summary": "Approve or reject an escalated decision",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "action", "in": "path", "required": true, "schema": {"type": "string", "enum": ["approve", "reject"]}}
                ],
                "responses": {"202": {"description": "relayed to the coordinator"}, "401": error, "403": error, "429": error}
            }},
            "/api/v1/stream": {"get": {"summary": "WebSocket of decisions and fills (JSON text frames)", "responses": {"101": {"description": "switching protocols"}}}}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}, "field": {"type": "string", "nullable": true}}, "required": ["error"]}}
        }
    })
}

/// Keeps an idle WebSocket's peers honest.
pub const STREAM_IDLE: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_in_constant_time_and_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }

    #[test]
    fn the_bucket_refuses_bursts() {
        let mut b = Bucket {
            tokens: 2.0,
            burst: 2.0,
            per_second: 0.0,
            at: Instant::now(),
        };
        assert!(b.take() && b.take());
        assert!(!b.take());
    }
}
