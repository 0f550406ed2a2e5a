//! Telling people what needs them: an escalation waiting for an answer, the kill switch or a risk
//! limit, a fill, the team degraded (docs/architecture.md, "Notifications").
//!
//! A [`Notifier`] never blocks its caller: events go into a bounded queue that one task delivers
//! from, with retries and backoff; when the queue is full the event is dropped and counted
//! (`ia_notifications_total{outcome="dropped"}`), so a slow chat service never holds a decision.
//! Target addresses are credentials: no log line or error carries one.

mod channel;
mod deliver;
mod event;

pub use channel::{Target, TargetError};
pub use deliver::{deliver_once, from_env, Notifier, Retry, QUEUE};
pub use event::Event;
