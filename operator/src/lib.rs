//! The ia-agents operator: turns `TradingAssistant`, `ConsensusPolicy` and `Strategy` resources into
//! running, observable agents.
//!
//! - [`crdgen`]: renders the CRD manifests committed in `crds/`.

pub mod crdgen;
