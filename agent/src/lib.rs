//! The ia-agents agent: one binary, one role per pod (or the whole team in one process locally).
//!
//! - [`config`]: loads the Strategy and ConsensusPolicy manifests an agent runs with, validated
//!   exactly as the cluster validates them.
//! - [`market`]: candles and where they come from (files, Binance).
//! - [`indicators`]: streaming technical indicators with TA-Lib's definitions.
//! - [`roles`]: the voting roles' deterministic reasoning and the debate rule.
//! - [`consensus`]: tally, cycle state machine and coordinator (transport-agnostic).
//! - [`team`]: the whole team in one process (the local transport).

pub mod config;
pub mod consensus;
pub mod indicators;
pub mod market;
pub mod roles;
pub mod team;
