//! The shared API of ia-agents.
//!
//! Both the operator and the agent depend on this crate (and the operator on nothing else of ours):
//! - [`crd`]: the custom resources `TradingAssistant`, `ConsensusPolicy` and `Strategy`, from which the
//!   CRD manifests in `crds/` are generated;
//! - [`roles`]: the vocabulary both sides speak: assistant roles and trade actions;
//! - [`subjects`]: the NATS subjects of a team (`ia.<namespace>.<strategy>.…`);
//! - [`nats_auth`]: who each component of a team is on NATS and which of those subjects it may
//!   publish and subscribe to;
//! - [`messages`]: the versioned messages on those subjects and their never-panicking decoder.

pub mod crd;
pub mod env;
pub mod ids;
pub mod messages;
pub mod nats_auth;
pub mod roles;
#[cfg(feature = "streams")]
pub mod streams;
pub mod subjects;
#[cfg(feature = "validate")]
pub mod yaml;

pub use roles::{Action, Role};
