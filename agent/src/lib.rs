//! The ia-agents agent: one binary, one role per pod (or the whole team in one process locally).
//!
//! - [`api`]: the HTTP API (warp): health, metrics, the record, escalations, a WebSocket stream.
//! - [`audit`]: the hash-chained audit log and its verification.
//! - [`backtest`]: the embedded default: the whole team over replayed candles, with a report.
//! - [`bus`]: the `Bus` trait over NATS (JetStream, KV presence) and in memory.
//! - [`evaluation`]: `evaluate`, the team walked forward out of sample against the baselines and
//!   each voter alone, with probabilistic and deflated Sharpe ratios.
//! - [`config`]: loads the Strategy and ConsensusPolicy manifests an agent runs with, validated
//!   exactly as the cluster validates them.
//! - [`learning`]: vote weights learned from realised returns (multiplicative weights).
//! - [`llm`]: Ollama reasoning with validation, fallback and bounded concurrency.
//! - [`market`]: candles and where they come from (files, Binance).
//! - [`indicators`]: streaming technical indicators with TA-Lib's definitions.
//! - [`metrics`]: the Prometheus metrics (decisions, cycle/round/opinion latency, orders, equity).
//! - [`ml`]: the smartcore ensemble (direction, magnitude, confidence, risk) and walk-forward evaluation.
//! - [`news`]: RSS/Atom feeds polled into the fundamental analyst's news book.
//! - [`roles`]: the voting roles' deterministic reasoning and the debate rule.
//! - [`consensus`]: tally, cycle state machine and coordinator (transport-agnostic).
//! - [`schedule`]: the Strategy's cron schedules, stepped through time.
//! - [`service`]: one assistant serving its role on the bus.
//! - [`services`]: the executor and the auditor as services following the decision stream.
//! - [`standing`]: drawdown and daily loss against the risk limits.
//! - [`store`]: Postgres / SQLite persistence with sqlx migrations.
//! - [`team`]: the whole team in one process (the local transport).
//! - [`exchange`]: the paper exchange (decimal money, idempotent by decision id).
//! - [`executor`]: decisions into orders, with the risk limits re-checked.

pub mod api;
pub mod audit;
pub mod backtest;
pub mod bus;
pub mod config;
pub mod consensus;
pub mod coordination;
pub mod decision_view;
pub mod engine;
pub mod evaluation;
pub mod exchange;
pub mod executor;
pub mod indicators;
pub mod learning;
pub mod llm;
pub mod market;
pub mod metrics;
pub mod ml;
pub mod news;
pub mod roles;
pub mod schedule;
pub mod service;
pub mod services;
pub mod shutdown;
pub mod standing;
pub mod store;
pub mod stored_model;
pub mod team;
pub mod team_health;
