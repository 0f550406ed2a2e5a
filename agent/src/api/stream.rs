//! `GET /api/v1/stream`: the WebSocket of decisions and fills. It takes the API token (an
//! `Authorization: Bearer` header, or for browsers the `ia-agents.bearer` subprotocol next to the
//! token), accepts only its own or listed origins, holds at most [`MAX_SOCKETS`] connections, and
//! refuses frames over [`MAX_FRAME`] (the stream only sends; a client has nothing large to say).

use super::guard::{self, Access, WS_BEARER_PROTOCOL};
use super::{error, ApiState};
use futures::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::broadcast;
use warp::http::StatusCode;
use warp::{Filter, Reply};

/// Open WebSockets at once, across clients.
pub const MAX_SOCKETS: usize = 32;

/// The largest frame or message a client may send.
pub const MAX_FRAME: usize = 4 * 1024;

/// What a stream request presents.
struct Upgrade {
    client: Option<std::net::SocketAddr>,
    authorization: Option<String>,
    protocols: Option<String>,
    origin: Option<String>,
    host: Option<String>,
}

/// The stream's route.
pub fn route(
    state: ApiState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let with = warp::any().map(move || state.clone());
    warp::path!("api" / "v1" / "stream")
        .and(warp::ws())
        .and(warp::addr::remote())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("sec-websocket-protocol"))
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>("host"))
        .and(with)
        .map(
            |ws, client, authorization, protocols, origin, host, s: ApiState| {
                let request = Upgrade {
                    client,
                    authorization,
                    protocols,
                    origin,
                    host,
                };
                open(ws, request, s)
            },
        )
}

/// Admits the upgrade or answers why not.
fn open(ws: warp::ws::Ws, request: Upgrade, s: ApiState) -> warp::reply::Response {
    let header_token = guard::bearer(request.authorization.as_deref());
    let protocol_token = guard::subprotocol_token(request.protocols.as_deref());
    if let Err(refused) = s.admit(
        request.client,
        Access::Read,
        header_token.or(protocol_token),
        true,
    ) {
        return refused.response();
    }
    if !guard::origin_allowed(
        request.origin.as_deref(),
        request.host.as_deref(),
        &s.allowed_origins,
    ) {
        return error(
            StatusCode::FORBIDDEN,
            Some("origin"),
            "origin: this origin may not open the stream (see --api-allowed-origin)",
        );
    }
    let Some(slot) = Slot::take(&s.sockets) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            format!("the stream holds its {MAX_SOCKETS} connections already: try later"),
        );
    };
    let events = s.events.subscribe();
    let reply = ws
        .max_frame_size(MAX_FRAME)
        .max_message_size(MAX_FRAME)
        .on_upgrade(move |socket| forward(socket, events, slot));
    if protocol_token.is_some() {
        warp::reply::with_header(reply, "sec-websocket-protocol", WS_BEARER_PROTOCOL)
            .into_response()
    } else {
        reply.into_response()
    }
}

/// Sends every event until either side closes.
async fn forward(
    socket: warp::ws::WebSocket,
    mut events: broadcast::Receiver<serde_json::Value>,
    _slot: Slot,
) {
    let (mut tx, mut rx) = socket.split();
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
            incoming = rx.next() => match incoming {
                Some(Ok(_)) => continue,
                // closed, or a frame over the limit
                _ => break,
            },
        }
    }
}

/// One of the [`MAX_SOCKETS`] connections, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(open: &Arc<AtomicUsize>) -> Option<Self> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < MAX_SOCKETS).then_some(n + 1)
        })
        .ok()
        .map(|_| Slot(open.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
