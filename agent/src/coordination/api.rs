//! The coordinator's HTTP API and console (docs/architecture.md, "The coordinator's API"), with
//! the relay that puts people's answers to escalations on the bus.

use super::CoordinationError;
use crate::api::ApiState;
use crate::bus::nats::NatsBus;
use crate::bus::Bus;
use crate::store::Store;
use protocol::messages::{EscalationResolution, Message};
use protocol::subjects::Subjects;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// How the API is served.
#[derive(Debug, Clone, Default)]
pub struct ApiOptions {
    /// Where to listen.
    pub listen: Option<SocketAddr>,
    /// The bearer token of mutating routes (and of reads with `read_auth`).
    pub token: Option<String>,
    /// The record's listings need the token too.
    pub read_auth: bool,
    /// Browser origins besides the API's own that may open the WebSocket stream.
    pub allowed_origins: Vec<String>,
}

/// Serves the API and console on `addr` until the process stops: escalation answers are relayed
/// to the bus (the assistants' heartbeats are refreshed into its state by
/// [`crate::team_health::watch`]). The state, for the stream's events.
pub async fn serve(
    options: &ApiOptions,
    addr: SocketAddr,
    store: &Store,
    strategy: &str,
    bus: &NatsBus,
    subjects: &Subjects,
    ready: Arc<AtomicBool>,
) -> Result<ApiState, CoordinationError> {
    let (resolutions, mut answers) = tokio::sync::mpsc::channel::<EscalationResolution>(64);
    let state = ApiState::new(store.clone(), strategy, options.token.clone(), resolutions)
        .with_ready(ready)
        .with_read_auth(options.read_auth)
        .with_allowed_origins(options.allowed_origins.clone());
    let bound = crate::api::serve(state.clone(), addr, crate::shutdown::stop_requested())
        .await
        .map_err(|error| CoordinationError::Listen { addr, error })?;
    tracing::info!(%bound, "HTTP API and console listening (http://{bound}/)");
    let (relay, relay_subjects) = (bus.clone(), subjects.clone());
    tokio::spawn(async move {
        while let Some(answer) = answers.recv().await {
            match relay_subjects.escalation(&answer.id) {
                Ok(subject) => {
                    if let Err(error) = relay
                        .publish(&subject, &Message::EscalationResolution(answer))
                        .await
                    {
                        tracing::error!(%error, "relaying an escalation answer failed");
                    }
                }
                Err(error) => tracing::warn!(%error, "ignored an escalation answer"),
            }
        }
    });
    Ok(state)
}
