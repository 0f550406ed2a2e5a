//! The ia-agents operator: turns `TradingAssistant`, `ConsensusPolicy` and `Strategy` resources into
//! running, observable agents.
//!
//! - [`crdgen`]: renders the CRD manifests committed in `crds/`;
//! - [`manifests`]: reads YAML manifests (for `validate` and `render`);
//! - [`resources`]: the objects the operator creates, as pure functions;
//! - [`render`]: `trading-operator render`, those objects for files instead of a cluster;
//! - [`controllers`]: the three reconcilers and their wiring (`trading-operator run`);
//! - [`decisions`]: consensus outcomes from NATS into Strategy conditions, and the escalation relay;
//! - [`status`]: conditions and status writes, shared by `controllers` and `decisions` (which
//!   therefore do not import each other both ways);
//! - `fake_api` (feature `testing`): an in-memory API server behind kube-rs's mocked client.

pub mod controllers;
pub mod crdgen;
pub mod decisions;
#[cfg(any(test, feature = "testing"))]
pub mod fake_api;
pub mod manifests;
pub mod plugin;
pub mod render;
pub mod resources;
pub mod status;
