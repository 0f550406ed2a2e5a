//! The consensus engine (docs/architecture.md, "The consensus cycle"), ours and
//! transport-agnostic:
//! - [`tally`]: counting one round (weights × confidences, quorum, threshold, veto);
//! - [`cycle`]: one cycle's rounds as a state machine;
//! - [`bus_transport`]: the coordinator's side of the bus (voters, presence, escalations);
//! - [`coordinator`]: drives cycles over a [`coordinator::Transport`] (the in-process team, or the
//!   bus), applies the policy's escalation, and produces the [`protocol::messages::Decision`].

pub mod bus_transport;
pub mod coordinator;
pub mod cycle;
pub mod tally;

pub use coordinator::{Coordinator, EscalationResolver, Resolution, Transport};
pub use cycle::{Acceptance, Cycle, Outcome, Step, Voter};
