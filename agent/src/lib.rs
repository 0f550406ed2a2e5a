//! The ia-agents agent: one binary, one role per pod (or the whole team in one process locally).
//!
//! - [`config`]: loads the Strategy and ConsensusPolicy manifests an agent runs with, validated
//!   exactly as the cluster validates them.
//! - [`market`]: candles and where they come from (files, Binance).
//! - [`indicators`]: streaming technical indicators with TA-Lib's definitions.

pub mod config;
pub mod indicators;
pub mod market;
