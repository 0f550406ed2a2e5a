//! The shared API of ia-agents.
//!
//! Both the operator and the agent depend on this crate (and the operator on nothing else of ours):
//! - [`crd`]: the custom resources `TradingAssistant`, `ConsensusPolicy` and `Strategy`, from which the
//!   CRD manifests in `crds/` are generated;
//! - [`roles`]: the vocabulary both sides speak: assistant roles and trade actions.

pub mod crd;
pub mod roles;

pub use roles::{Action, Role};
