//! The shared API of ia-agents.
//!
//! Both the operator and the agent depend on this crate (and the operator on nothing else of ours):
//! - [`crd`]: the custom resources `TradingAssistant`, `ConsensusPolicy` and `Strategy`, from which the
//!   CRD manifests in `crds/` are generated;
//! - [`roles`]: the vocabulary both sides speak: assistant roles and trade actions;
//! - [`subjects`]: the NATS subjects of a team (`ia.<namespace>.<strategy>.…`);
//! - [`messages`]: the versioned messages on those subjects and their never-panicking decoder.

pub mod crd;
pub mod env;
pub mod messages;
pub mod roles;
pub mod subjects;
#[cfg(feature = "validate")]
pub mod yaml;

pub use roles::{Action, Role};
