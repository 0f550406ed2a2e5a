//! What the integration tests of `agent` and `operator` share (docs/architecture.md,
//! "Conventions"): [`nats`], a real nats-server per test on a free port of 127.0.0.1, restartable
//! on the same port and state, and [`binance`], Binance's REST and WebSocket APIs served locally.

pub mod binance;
pub mod nats;

pub use nats::{output_within, NatsServer};
