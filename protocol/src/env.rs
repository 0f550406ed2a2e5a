//! The environment contract between the operator and the agent's processes: every variable the
//! operator sets in a pod, and that `trading-agent` reads (its flags' `env`), named once
//! (docs/architecture.md, "Conventions").

/// The NATS server (`nats://host:port`); credentials never go in it.
pub const NATS_URL: &str = "IA_NATS_URL";
/// A file holding the process's NATS nkey seed (`SU…`): its identity on a NATS server that checks
/// them (a managed NATS always does). The operator mounts it from a Secret.
pub const NATS_NKEY_FILE: &str = "IA_NATS_NKEY_FILE";
/// The team's namespace: the first token of its NATS subjects.
pub const NAMESPACE: &str = "IA_NAMESPACE";
/// The Strategy an assistant serves.
pub const STRATEGY: &str = "IA_STRATEGY";
/// An assistant's role (`marketMonitor`, …).
pub const ROLE: &str = "IA_ROLE";
/// An assistant's name (its TradingAssistant), as its opinions carry it.
pub const ASSISTANT: &str = "IA_ASSISTANT";
/// An assistant's declared vote weight (`spec.weight`).
pub const WEIGHT: &str = "IA_WEIGHT";
/// The pod's name: one presence key per replica.
pub const INSTANCE: &str = "IA_INSTANCE";
/// `json` for JSON logs.
pub const LOG_FORMAT: &str = "IA_LOG_FORMAT";
/// Where a process serves health, metrics and (the coordinator) its API.
pub const LISTEN: &str = "IA_LISTEN";
/// The Strategy manifest a process reads.
pub const STRATEGY_FILE: &str = "IA_STRATEGY_FILE";
/// The ConsensusPolicy manifest the coordinator reads.
pub const POLICY_FILE: &str = "IA_POLICY_FILE";
/// The TradingAssistant manifests that declare who votes.
pub const TEAM_FILE: &str = "IA_TEAM_FILE";
/// An assistant's role params, as a JSON object of strings.
pub const PARAMS: &str = "IA_PARAMS";
/// The Ollama model a reasoning assistant asks.
pub const MODEL: &str = "IA_MODEL";
/// The model's sampling temperature.
pub const MODEL_TEMPERATURE: &str = "IA_MODEL_TEMPERATURE";
/// Seconds an opinion may wait for the model before the rule answers alone.
pub const MODEL_TIMEOUT: &str = "IA_MODEL_TIMEOUT";
/// The Ollama server.
pub const OLLAMA_URL: &str = "IA_OLLAMA_URL";
/// A coordinator whose replay ended keeps serving until SIGTERM.
pub const HOLD_AFTER_REPLAY: &str = "IA_HOLD_AFTER_REPLAY";
/// The coordinator API's bearer token (a Secret).
pub const API_TOKEN: &str = "IA_API_TOKEN";
/// The API's listings need the token too.
pub const API_READ_AUTH: &str = "IA_API_READ_AUTH";
/// The audit chain's HMAC key (a Secret).
pub const AUDIT_KEY: &str = "IA_AUDIT_KEY";
/// The record's database URL (its password from a Secret).
pub const DB: &str = "IA_DB";
/// The coordinator retrains the strategist's ensemble into the database (`--retrain`).
pub const RETRAIN: &str = "IA_RETRAIN";
/// The coordinator's `--services`: the executor and auditor run as services of their own.
pub const SERVICES: &str = "IA_SERVICES";
/// The coordinator's nkey public key (`U…`, not a secret): the executor and the auditor take only
/// candles and decisions it signed.
pub const COORDINATOR_KEY: &str = "IA_COORDINATOR_KEY";
/// The executor's nkey public key: the auditor records only order reports it signed.
pub const EXECUTOR_KEY: &str = "IA_EXECUTOR_KEY";
/// The label that names an assistant pod's role (`trading.ia-agents.dev/role`), for the
/// NetworkPolicies that admit one role only (Postgres admits the strategist, which reads its model).
pub const ROLE_LABEL: &str = "trading.ia-agents.dev/role";
/// Binance API key of a live Strategy (a Secret).
pub const EXCHANGE_API_KEY: &str = "IA_EXCHANGE_API_KEY";
/// Binance API secret of a live Strategy (a Secret).
pub const EXCHANGE_API_SECRET: &str = "IA_EXCHANGE_API_SECRET";
/// The operator's default image for the agents' pods.
pub const AGENT_IMAGE: &str = "IA_AGENT_IMAGE";
/// The prefix of a notification target's address: `IA_NOTIFY_<NAME>` (see
/// `crd::NotificationTarget::env_name`).
pub const NOTIFY_PREFIX: &str = "IA_NOTIFY_";
