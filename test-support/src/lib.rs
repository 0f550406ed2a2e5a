//! What the tests of `protocol`, `agent` and `operator` share (docs/architecture.md,
//! "Conventions"): [`nats`], a real nats-server per test on a free port of 127.0.0.1, restartable
//! on the same port and state; [`postgres`], a private PostgreSQL a test may stop and restart;
//! [`processes`], the sample team's voters as processes and a child's output line by line;
//! [`binance`], Binance's REST and WebSocket APIs served locally;
//! [`webhook`], a notification target; [`arbitrary`], the property tests' JSON generators.

pub mod arbitrary;
pub mod binance;
pub mod nats;
pub mod postgres;
pub mod processes;
pub mod webhook;

pub use nats::{output_within, NatsServer};
pub use postgres::PgServer;
