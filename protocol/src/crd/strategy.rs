//! `Strategy` (`strat`): what to trade, with which team, under which limits.

use super::{LocalObjectRef, SecretKeyRef};
use crate::Action;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Pattern of a spot symbol as Binance writes it: base asset then quote asset, upper case (`BTCUSDT`).
pub const SYMBOL_PATTERN: &str =
    r"^[A-Z0-9]{2,12}(USDT|USDC|FDUSD|BUSD|TUSD|DAI|BTC|ETH|BNB|EUR|GBP|TRY|BRL|JPY)$";

/// What to trade and with which team: symbols, candle interval, paper or live mode, capital, risk
/// limits, the consensus policy, schedules, the market-data source, the exchange, and the
/// dependencies (NATS, Postgres, Ollama) the team runs on.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "trading.ia-agents.dev",
    version = "v1alpha1",
    kind = "Strategy",
    plural = "strategies",
    namespaced,
    status = "StrategyStatus",
    shortname = "strat",
    category = "ia-agents",
    doc = "What a team of trading assistants trades, under which limits, and on which dependencies.",
    printcolumn(name = "Symbols", type_ = "string", json_path = ".spec.symbols"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Last Decision",
        type_ = "string",
        json_path = ".status.lastDecision.action"
    ),
    printcolumn(
        name = "Confidence",
        type_ = "number",
        json_path = ".status.lastDecision.confidence"
    ),
    printcolumn(
        name = "Equity",
        type_ = "number",
        json_path = ".status.portfolio.equity",
        priority = 1
    ),
    printcolumn(
        name = "Audited",
        type_ = "integer",
        json_path = ".status.audit.entries",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("self.mode != 'live' || (has(self.exchange) && has(self.exchange.credentialsSecretRef))")
    .message("mode: live requires exchange.credentialsSecretRef (a Secret holding the exchange API key and secret)")
    .field_path(".exchange.credentialsSecretRef")
    .reason(Reason::FieldValueRequired))]
#[serde(rename_all = "camelCase")]
pub struct StrategySpec {
    /// Spot symbols to trade, as the exchange writes them (e.g. BTCUSDT, ETHUSDT).
    #[schemars(length(min = 1, max = 100), inner(regex(pattern = SYMBOL_PATTERN)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub symbols: Vec<String>,

    /// Candle interval the team analyses.
    #[serde(default)]
    pub interval: Interval,

    /// `paper` simulates fills on a paper exchange (the default); `live` sends real orders and
    /// requires exchange.credentialsSecretRef.
    #[serde(default)]
    pub mode: TradingMode,

    /// Starting capital in the quote asset (e.g. USDT), at most 10^12: larger amounts would overflow
    /// the exact decimal arithmetic of orders and fills.
    #[serde(default = "default_capital")]
    #[schemars(extend("minimum" = 0.0, "exclusiveMinimum" = true, "maximum" = 1.0e12))]
    pub capital: f64,

    /// Risk limits; the risk manager vetoes and the executor refuses anything that breaks them.
    #[serde(default)]
    pub risk: RiskSpec,

    /// The ConsensusPolicy (same namespace) this team decides by.
    pub consensus_policy_ref: LocalObjectRef,

    /// When the team analyses and when it learns from outcomes.
    #[serde(default)]
    pub schedule: ScheduleSpec,

    /// Where market data comes from.
    #[serde(default)]
    pub market_data: MarketDataSpec,

    /// The exchange orders go to, fees, slippage and (for live mode) credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<ExchangeSpec>,

    /// Kill switch: true stops all trading and scales the team to zero.
    #[serde(default)]
    pub paused: bool,

    /// The services the team runs on, each provisioned by the operator or referenced.
    #[serde(default)]
    pub dependencies: DependenciesSpec,

    /// Where people are told of escalations, the kill switch and risk limits, fills and a degraded
    /// team (Slack, Discord, Telegram or a JSON webhook; addresses from Secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<super::NotificationsSpec>,
}

fn default_capital() -> f64 {
    10_000.0
}

/// Candle interval, as Binance names it: `1m`, `3m`, `5m`, `15m`, `30m`, `1h` (the default), `2h`,
/// `4h`, `6h`, `8h`, `12h` or `1d`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Interval {
    /// One minute (`1m`).
    #[serde(rename = "1m")]
    M1,
    /// Three minutes (`3m`).
    #[serde(rename = "3m")]
    M3,
    /// Five minutes (`5m`).
    #[serde(rename = "5m")]
    M5,
    /// Fifteen minutes (`15m`).
    #[serde(rename = "15m")]
    M15,
    /// Thirty minutes (`30m`).
    #[serde(rename = "30m")]
    M30,
    /// One hour (`1h`), the default.
    #[default]
    #[serde(rename = "1h")]
    H1,
    /// Two hours (`2h`).
    #[serde(rename = "2h")]
    H2,
    /// Four hours (`4h`).
    #[serde(rename = "4h")]
    H4,
    /// Six hours (`6h`).
    #[serde(rename = "6h")]
    H6,
    /// Eight hours (`8h`).
    #[serde(rename = "8h")]
    H8,
    /// Twelve hours (`12h`).
    #[serde(rename = "12h")]
    H12,
    /// One day (`1d`).
    #[serde(rename = "1d")]
    D1,
}

impl Interval {
    /// Every interval, shortest first.
    pub const ALL: [Interval; 12] = [
        Interval::M1,
        Interval::M3,
        Interval::M5,
        Interval::M15,
        Interval::M30,
        Interval::H1,
        Interval::H2,
        Interval::H4,
        Interval::H6,
        Interval::H8,
        Interval::H12,
        Interval::D1,
    ];

    /// Binance's name of the interval (`1h`).
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::M1 => "1m",
            Interval::M3 => "3m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::M30 => "30m",
            Interval::H1 => "1h",
            Interval::H2 => "2h",
            Interval::H4 => "4h",
            Interval::H6 => "6h",
            Interval::H8 => "8h",
            Interval::H12 => "12h",
            Interval::D1 => "1d",
        }
    }

    /// Length of one candle in milliseconds.
    pub fn millis(self) -> i64 {
        const MIN: i64 = 60_000;
        match self {
            Interval::M1 => MIN,
            Interval::M3 => 3 * MIN,
            Interval::M5 => 5 * MIN,
            Interval::M15 => 15 * MIN,
            Interval::M30 => 30 * MIN,
            Interval::H1 => 60 * MIN,
            Interval::H2 => 120 * MIN,
            Interval::H4 => 240 * MIN,
            Interval::H6 => 360 * MIN,
            Interval::H8 => 480 * MIN,
            Interval::H12 => 720 * MIN,
            Interval::D1 => 1440 * MIN,
        }
    }
}

impl std::str::FromStr for Interval {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Interval::ALL
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| format!("unknown interval {s:?}: expected one of 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d"))
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Paper or live trading.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum TradingMode {
    /// Simulated fills; no exchange account needed.
    #[default]
    Paper,
    /// Real orders on the exchange; needs exchange.credentialsSecretRef.
    Live,
}

/// Risk limits, as fractions of equity unless stated otherwise (0.05 = 5%).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RiskSpec {
    /// Largest share of equity one position may take, in (0, 1].
    #[serde(default = "default_max_position_fraction")]
    #[schemars(extend("minimum" = 0.0, "exclusiveMinimum" = true, "maximum" = 1.0))]
    pub max_position_fraction: f64,
    /// Stop-loss distance from the entry price, in (0, 1): 0.05 closes a long 5% below entry.
    #[serde(default = "default_stop_loss")]
    #[schemars(extend("minimum" = 0.0, "exclusiveMinimum" = true, "maximum" = 1.0, "exclusiveMaximum" = true))]
    pub stop_loss: f64,
    /// Take-profit distance from the entry price, in (0, 10]: 0.1 closes a long 10% above entry.
    #[serde(default = "default_take_profit")]
    #[schemars(extend("minimum" = 0.0, "exclusiveMinimum" = true, "maximum" = 10.0))]
    pub take_profit: f64,
    /// Most positions open at once, across all symbols.
    #[serde(default = "default_max_open_positions")]
    #[schemars(range(min = 1, max = 100))]
    pub max_open_positions: u32,
    /// Loss within one UTC day, as a share of the day's opening equity, that stops new entries.
    #[serde(default = "default_daily_loss_limit")]
    #[schemars(extend("minimum" = 0.0, "exclusiveMinimum" = true, "maximum" = 1.0))]
    pub daily_loss_limit: f64,
    /// Drawdown from the equity peak that stops new entries.
    #[serde(default = "default_max_drawdown")]
    #[schemars(extend("minimum" = 0.0, "exclusiveMinimum" = true, "maximum" = 1.0))]
    pub max_drawdown: f64,
}

fn default_max_position_fraction() -> f64 {
    0.25
}
fn default_stop_loss() -> f64 {
    0.05
}
fn default_take_profit() -> f64 {
    0.10
}
fn default_max_open_positions() -> u32 {
    3
}
fn default_daily_loss_limit() -> f64 {
    0.05
}
fn default_max_drawdown() -> f64 {
    0.25
}

impl Default for RiskSpec {
    fn default() -> Self {
        Self {
            max_position_fraction: default_max_position_fraction(),
            stop_loss: default_stop_loss(),
            take_profit: default_take_profit(),
            max_open_positions: default_max_open_positions(),
            daily_loss_limit: default_daily_loss_limit(),
            max_drawdown: default_max_drawdown(),
        }
    }
}

/// CEL: a dependency is managed (`managed: true`) or external (`url` or `secretRef`), exactly one.
const MANAGED_OR_EXTERNAL: &str =
    "(has(self.managed) && self.managed) != (has(self.url) || has(self.secretRef))";
/// Its message.
const MANAGED_OR_EXTERNAL_MESSAGE: &str =
    "a dependency is either managed: true or external (url or secretRef), not both and not neither";

/// Message of the rule that keeps credentials out of dependency URLs (they belong in a Secret).
/// CEL: no user-info (`user:pass@`) and no credential-like query parameter (`?password=`,
/// `&sslpassword=`, `?token=`, ...) in a dependency URL, which lands in a ConfigMap and in logs.
const URL_WITHOUT_CREDENTIALS: &str =
    "!self.contains('@') && !self.matches('(?i)[?&;][a-z_]*(pass|pwd|token|secret|key|auth|credential)[a-z_]*=')";

const NO_CREDENTIALS_IN_URL: &str =
    "url must not embed credentials; put a URL with credentials in a Secret and reference it with secretRef";

/// Five- or six-field cron expression (`min hour dom month dow`, optional seconds first).
const CRON_PATTERN: &str = r"^(\S+\s+){4,5}\S+$";

/// Schedules, as cron expressions in UTC.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    /// When a consensus cycle runs for every symbol (market-monitor alerts start extra cycles).
    #[serde(default = "default_analysis_schedule")]
    #[schemars(regex(pattern = CRON_PATTERN))]
    pub analysis: String,
    /// When opinions are scored against realised returns and weights and models are updated.
    #[serde(default = "default_learning_schedule")]
    #[schemars(regex(pattern = CRON_PATTERN))]
    pub learning: String,
}

fn default_analysis_schedule() -> String {
    "0 * * * *".into()
}
fn default_learning_schedule() -> String {
    "30 0 * * *".into()
}

impl Default for ScheduleSpec {
    fn default() -> Self {
        Self {
            analysis: default_analysis_schedule(),
            learning: default_learning_schedule(),
        }
    }
}

/// Where candles come from.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MarketDataSpec {
    /// `binance`: live REST + WebSocket; `replay`: a recorded candle file (bundled data by default).
    #[serde(default)]
    pub source: MarketDataSource,
    /// Base URL of the Binance REST API (default https://api.binance.com; a testnet or mirror works too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^\s@]+$"))]
    pub base_url: Option<String>,
    /// For `replay`: path of the candle file inside the agent image (default: the bundled dataset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub replay_file: Option<String>,
}

/// Where the candles come from: `binance` (the default, live) or `replay` (a recorded file).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum MarketDataSource {
    /// Binance's public market data: REST for the warm-up, then a WebSocket of closed candles.
    #[default]
    Binance,
    /// A recorded candle file (`replayFile`, or the bundled dataset), read candle by candle.
    Replay,
}

/// The exchange, its costs, and where its credentials are.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExchangeSpec {
    /// Base URL of the exchange's trading API for live mode (default: Binance's spot testnet,
    /// https://testnet.binance.vision; set https://api.binance.com to trade for real).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^\s@]+$"))]
    pub base_url: Option<String>,
    /// Fee per fill as a fraction of its notional (0.001 = 0.1%).
    #[serde(default = "default_fee_rate")]
    #[schemars(range(min = 0.0, max = 0.1))]
    pub fee_rate: f64,
    /// Slippage applied to paper market orders, in basis points.
    #[serde(default = "default_slippage_bps")]
    #[schemars(range(min = 0.0, max = 1000.0))]
    pub slippage_bps: f64,
    /// `market` orders fill at the next price (± slippage); `limit` orders rest at
    /// `limitOffsetBps` better than the decision's price and fill only if a candle reaches them.
    #[serde(default)]
    pub order_type: OrderType,
    /// For `limit` orders: how far below (buys) or above (sells) the decision's price, in basis points.
    #[serde(default = "default_limit_offset_bps")]
    #[schemars(range(min = 0.0, max = 1000.0))]
    pub limit_offset_bps: f64,
    /// For `limit` orders: candles an unfilled order rests before it expires.
    #[serde(default = "default_limit_ttl_candles")]
    #[schemars(range(min = 1, max = 1000))]
    pub limit_ttl_candles: u32,
    /// Secret with the exchange API key and secret (keys `apiKey` and `apiSecret`). Required for live mode;
    /// credentials never appear in the spec itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<LocalObjectRef>,
}

/// How the executor's orders are priced: `market` (the default) or `limit`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum OrderType {
    /// Fill at the next price, ± `slippageBps` on paper.
    #[default]
    Market,
    /// Rest `limitOffsetBps` better than the decision's price for up to `limitTtlCandles` candles.
    Limit,
}

fn default_limit_offset_bps() -> f64 {
    10.0
}
fn default_limit_ttl_candles() -> u32 {
    3
}
fn default_fee_rate() -> f64 {
    0.001
}
fn default_slippage_bps() -> f64 {
    5.0
}

impl Default for ExchangeSpec {
    fn default() -> Self {
        Self {
            base_url: None,
            fee_rate: default_fee_rate(),
            slippage_bps: default_slippage_bps(),
            order_type: OrderType::default(),
            limit_offset_bps: default_limit_offset_bps(),
            limit_ttl_candles: default_limit_ttl_candles(),
            credentials_secret_ref: None,
        }
    }
}

/// The services a team runs on.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DependenciesSpec {
    /// The message bus (NATS with JetStream). A managed one checks every component's identity
    /// (an nkey the operator generates into Secret `<strategy>-nats-credentials`); an external one
    /// takes the identities' seeds from `credentialsSecretRef`.
    #[serde(default = "NatsDependency::managed")]
    pub nats: NatsDependency,
    /// The database (PostgreSQL). An external one is referenced by a Secret holding its URL.
    #[serde(default = "Dependency::managed")]
    pub postgres: Dependency,
    /// The LLM server (Ollama). Absent: every assistant reasons deterministically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ollama: Option<OllamaDependency>,
}

impl Default for DependenciesSpec {
    fn default() -> Self {
        Self {
            nats: NatsDependency::managed(),
            postgres: Dependency::managed(),
            ollama: None,
        }
    }
}

/// A dependency the operator either provisions (`managed: true`) or references (`url` or `secretRef`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new(MANAGED_OR_EXTERNAL)
    .message(MANAGED_OR_EXTERNAL_MESSAGE)
    .reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// true: the operator creates and runs it for this Strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<bool>,
    /// URL of an external instance, without credentials (e.g. nats://nats.infra:4222).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z][a-z0-9+.-]*://\S+$"))]
    #[x_kube(validation = Rule::new(URL_WITHOUT_CREDENTIALS).message(NO_CREDENTIALS_IN_URL))]
    pub url: Option<String>,
    /// Secret key holding the URL of an external instance, credentials included (e.g. postgres://user:pass@host/db).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
    /// Size of the volume of a managed instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"))]
    pub storage: Option<String>,
}

impl Dependency {
    /// A dependency the operator provisions.
    pub fn managed() -> Self {
        Self {
            managed: Some(true),
            ..Default::default()
        }
    }

    /// Whether the operator provisions this dependency.
    pub fn is_managed(&self) -> bool {
        self.managed == Some(true)
    }
}

/// NATS, managed or external. Every component of the team has its own identity on it (an nkey),
/// allowed only its own subjects.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new(MANAGED_OR_EXTERNAL)
    .message(MANAGED_OR_EXTERNAL_MESSAGE)
    .reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new("!(has(self.managed) && self.managed) || !has(self.credentialsSecretRef)")
    .message("credentialsSecretRef is for an external NATS: a managed one gets generated credentials (Secret <strategy>-nats-credentials)")
    .field_path(".credentialsSecretRef")
    .reason(Reason::FieldValueForbidden))]
#[serde(rename_all = "camelCase")]
pub struct NatsDependency {
    /// true: the operator creates and runs NATS for this Strategy, with one generated nkey
    /// identity per component (Secret `<strategy>-nats-credentials`) and server-side permissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<bool>,
    /// URL of an external NATS, without credentials (e.g. nats://nats.infra:4222).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z][a-z0-9+.-]*://\S+$"))]
    #[x_kube(validation = Rule::new(URL_WITHOUT_CREDENTIALS).message(NO_CREDENTIALS_IN_URL))]
    pub url: Option<String>,
    /// Secret key holding the URL of an external NATS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
    /// An external NATS's credentials: a Secret (same namespace) holding one nkey seed (`SU…`) per
    /// identity, each under the identity's name: coordinator, operator, executor, auditor,
    /// marketMonitor, technicalAnalyst, fundamentalAnalyst, riskManager, strategist (`trading-agent
    /// nats-config` writes them, and the server's configuration). Each pod mounts its own key
    /// only; the operator connects with `operator`. Absent: the team connects without credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<LocalObjectRef>,
    /// Size of the volume of a managed instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"))]
    pub storage: Option<String>,
}

impl NatsDependency {
    /// A NATS the operator provisions.
    pub fn managed() -> Self {
        Self {
            managed: Some(true),
            ..Default::default()
        }
    }

    /// Whether the operator provisions this NATS.
    pub fn is_managed(&self) -> bool {
        self.managed == Some(true)
    }
}

/// Ollama, managed or external, and the models to have pulled.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new(MANAGED_OR_EXTERNAL)
    .message(MANAGED_OR_EXTERNAL_MESSAGE)
    .reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase")]
pub struct OllamaDependency {
    /// true: the operator creates and runs Ollama for this Strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<bool>,
    /// URL of an external Ollama (e.g. http://ollama.ai:11434).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://\S+$"))]
    #[x_kube(validation = Rule::new(URL_WITHOUT_CREDENTIALS).message(NO_CREDENTIALS_IN_URL))]
    pub url: Option<String>,
    /// Secret key holding the URL of an external Ollama.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
    /// Size of the model volume of a managed instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"))]
    pub storage: Option<String>,
    /// Models a managed Ollama pulls before the team starts (e.g. llama3.2:3b).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 10),
        inner(regex(pattern = r"^[a-zA-Z0-9][a-zA-Z0-9._:/-]*$"))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub models: Vec<String>,
}

/// Observed state of a Strategy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct StrategyStatus {
    /// The metadata.generation this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// DependenciesReady, AssistantsReady, Ready, ConsensusReached, EscalationPending, Paused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The most recent decision of the team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<DecisionSummary>,
    /// Escalations waiting for a human (approve or reject by annotation or the HTTP API).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["id".into()]))]
    pub pending_escalations: Vec<PendingEscalation>,
    /// Paper or live portfolio figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portfolio: Option<PortfolioSummary>,
    /// The TradingAssistants bound to this Strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistants: Option<AssistantCounts>,
    /// The Secret (key `token`) holding the bearer token of the coordinator's API, for approve,
    /// reject, the stream and the record: `kubectl get secret NAME -o jsonpath='{.data.token}' |
    /// base64 -d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token_secret: Option<String>,
    /// The head of the team's audit chain, as its coordinator last anchored it on NATS (`….audit`)
    /// once the entries were stored: a copy outside the database for `trading-agent audit verify
    /// --expect-head`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditAnchor>,
}

/// A decision of the team, as shown on the Strategy.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DecisionSummary {
    /// Decision id (unique per cycle).
    pub id: String,
    /// Symbol decided on.
    pub symbol: String,
    /// The action decided (HOLD when vetoed or rejected).
    pub action: Action,
    /// Winning share of the weighted vote, in [0, 1].
    pub confidence: f64,
    /// Whether a round reached the policy's quorum and threshold with no veto.
    pub consensus_reached: bool,
    /// Whether a veto role forced HOLD.
    #[serde(default)]
    pub vetoed: bool,
    /// Rounds the cycle took.
    pub rounds: u32,
    /// Weighted votes per action in the final round (e.g. BUY: 2.4).
    #[serde(default)]
    pub votes: std::collections::BTreeMap<String, f64>,
    /// When the decision was made (RFC 3339).
    pub at: String,
}

/// An escalation waiting for a human.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PendingEscalation {
    /// Escalation id (the cycle's decision id): the value of the approve or reject annotation.
    pub id: String,
    /// Symbol the undecided cycle is about.
    pub symbol: String,
    /// When it was raised (RFC 3339).
    pub since: String,
}

/// The anchored head of a Strategy's audit chain.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditAnchor {
    /// The hash of the chain's last stored entry (64 hex digits).
    pub head: String,
    /// Entries in the chain (the last entry's seq).
    pub entries: u64,
    /// When the entries were stored (RFC 3339).
    pub at: String,
    /// Whether the chain is HMAC-keyed (IA_AUDIT_KEY).
    #[serde(default)]
    pub keyed: bool,
}

/// Portfolio figures in the quote asset.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PortfolioSummary {
    /// Cash plus positions at market.
    pub equity: f64,
    /// Profit (negative: a loss) since the team started with spec.capital.
    pub pnl: f64,
    /// Symbols in which the team holds a position.
    pub open_positions: u32,
}

/// Counts of bound TradingAssistants.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
pub struct AssistantCounts {
    /// TradingAssistants whose spec.strategyRef names this Strategy.
    pub total: u32,
    /// Those of them whose own `Ready` condition is true.
    pub ready: u32,
}
