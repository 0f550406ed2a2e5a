//! The subcommands of `trading-agent` that need more than a few lines (errors via anyhow, at the edge).

pub mod audit;
pub mod backtest;
pub mod data;
pub mod evaluate;
pub mod live;
pub mod nats_config;
pub mod team;
pub mod train;
