//! The ia-agents operator: turns `TradingAssistant`, `ConsensusPolicy` and `Strategy` resources into
//! running, observable agents.
//!
//! - [`crdgen`]: renders the CRD manifests committed in `crds/`;
//! - [`manifests`]: reads YAML manifests (for `validate` and, later, `render`).

pub mod crdgen;
pub mod manifests;
pub mod render;
pub mod resources;
