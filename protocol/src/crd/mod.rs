//! The custom resources of ia-agents (group `trading.ia-agents.dev`, version `v1alpha1`).
//!
//! These Rust types are the single source of the API: the CRD manifests in `crds/` are generated from
//! them (`trading-operator crds`), so every doc comment here becomes a schema description that
//! `kubectl explain` shows, and every range, enum and CEL rule here is enforced by the API server.
//!
//! They live in the shared `protocol` crate (not in `operator/`) because the agent reads the very same
//! manifests from files when it runs outside Kubernetes (`--strategy-file`, `--policy-file`).

// kube's `printcolumn(name = .., type_ = ..)` repeats keys across columns by design; clippy's
// duplicated_attributes lint misreads the repetition as a mistake.
#![allow(clippy::duplicated_attributes)]

mod common;
mod consensus_policy;
mod notifications;
mod strategy;
mod trading_assistant;

pub use common::*;
pub use consensus_policy::*;
pub use notifications::*;
pub use strategy::*;
pub use trading_assistant::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// API group of every ia-agents resource.
pub const GROUP: &str = "trading.ia-agents.dev";
/// API version served and stored.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "trading.ia-agents.dev/v1alpha1";
/// The category that makes `kubectl get ia-agents` list all three kinds.
pub const CATEGORY: &str = "ia-agents";

/// The CRDs of all three kinds, in a stable order (by plural name).
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    vec![
        ConsensusPolicy::crd(),
        Strategy::crd(),
        TradingAssistant::crd(),
    ]
}

#[cfg(feature = "validate")]
pub mod validate;
