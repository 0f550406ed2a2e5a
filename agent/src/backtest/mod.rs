//! The embedded default (docs/architecture.md, "The embedded default"): the coordinator and every
//! role in one process, over replayed candles, with the paper exchange, producing figures against
//! the baselines.
//!
//! - [`metrics`]: return, Sharpe, Sortino, drawdown, win rate of an equity curve;
//! - [`baselines`]: buy-and-hold, SMA crossover and MACD through the same exchange;
//! - [`report`]: `report.json`, `report.html` and the terminal table.
//!
//! Time runs candle by candle over every symbol (candles of the same open time together). On each
//! candle: indicators update, a held position's stop-loss / take-profit is checked against the
//! candle's range, then a cycle runs for the symbol if the Strategy's analysis schedule fires at the
//! candle's close or the market monitor raises an alert. Decisions execute at the close (± slippage).
//! Escalations find no human in a backtest: they time out at once and the policy's default applies.

pub mod baselines;
pub mod metrics;
pub mod report;
mod writer;

use crate::config::TeamConfig;
use crate::consensus::coordinator::cycle_id;
use crate::consensus::coordinator::{Deliberation, PendingDecision};
use crate::consensus::{Coordinator, EscalationResolver, Resolution, Transport, Voter};
use crate::exchange::paper::decimal;
use crate::exchange::{ClosedTrade, FeeModel, OrderRejection, PaperExchange, Placement};
use crate::executor::{Executor, Market, Plan};
use crate::indicators::IndicatorSet;
use crate::learning::WeightLearner;
use crate::market::Candle;
use crate::roles::monitor::AlertDetector;
use crate::roles::{analyst_for, Params};
use crate::schedule::Schedule;
use crate::standing::Standing;
use crate::store::{OrderRecord, Store};
use crate::team::{LocalAssistant, LocalTeam};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use metrics::{figures, Figures};
use protocol::crd::Weighting;
use protocol::messages::{Decision, Escalation, Fill, MarketSnapshot, PortfolioContext};
use protocol::{Action, Role};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;

/// The candles of one symbol, ascending.
#[derive(Debug, Clone)]
pub struct Series {
    pub symbol: String,
    pub candles: Vec<Candle>,
}

/// One assistant of the backtest team.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub role: Role,
    pub weight: f64,
    pub params: Params,
}

/// The seed's team of seven, as `config/samples/team.yaml` declares it.
pub fn default_team() -> Vec<Member> {
    [
        ("market-monitor", Role::MarketMonitor, 1.0),
        ("technical-analyst", Role::TechnicalAnalyst, 1.2),
        ("fundamental-analyst", Role::FundamentalAnalyst, 0.8),
        ("risk-manager", Role::RiskManager, 1.5),
        ("strategist", Role::Strategist, 1.2),
        ("executor", Role::Executor, 1.0),
        ("auditor", Role::Auditor, 1.0),
    ]
    .map(|(name, role, weight)| Member {
        name: name.into(),
        role,
        weight,
        params: Params::default(),
    })
    .to_vec()
}

/// Everything a backtest needs.
pub struct Backtest {
    pub team_config: TeamConfig,
    pub team: Vec<Member>,
    pub series: Vec<Series>,
    pub interval_ms: i64,
    /// Stop after this many cycles (all candles when `None`).
    pub max_cycles: Option<u64>,
    /// Candles that opened before this instant (ms) are history: they warm the indicators, the
    /// alert detectors, the learned weights (the team decides on them in the shadow, nothing is
    /// traded or stored) and the retrained forecaster, and they are not scored. `None`: every
    /// candle is traded and scored. On a live feed this is where the warm-up ends, so that no
    /// order is ever sent for a warm-up candle.
    pub trade_from: Option<i64>,
    /// Whether the team decides on history candles (in the shadow, to teach the learned weights).
    /// A coordinator over NATS does not: a year of cycles through the bus before its first candle
    /// would delay it by minutes.
    pub shadow_cycles: bool,
    /// Dated headlines for the fundamental analyst (`--news FILE`); without them it abstains.
    pub news: Option<std::sync::Arc<crate::roles::fundamental::DatedHeadlines>>,
    /// A model for the reasoning roles (the risk manager stays rule-bound), `--ollama-url`.
    pub llm: Option<crate::llm::LlmReasoner>,
    /// The strategist's ML forecast (`--forecaster FILE`).
    pub forecaster: Option<std::sync::Arc<dyn crate::roles::strategist::Forecaster>>,
    /// Retrains the strategist's ensemble on the learning schedule (`backtest --retrain`); the
    /// same object is the `forecaster`.
    pub retrainer: Option<std::sync::Arc<crate::ml::Retrainer>>,
    /// The latest streamed order books (symbol → book, arrival ms), live only: market orders of the
    /// paper exchange walk them while they are fresh.
    pub books: Option<SharedBooks>,
    /// `mode: live`: the decisions' orders go to this exchange and the paper book mirrors its
    /// fills (stops, targets and limit orders stay simulated). `None`: paper trading.
    pub live: Option<crate::exchange::binance::BinanceSpot>,
    /// The audit chain's key (`IA_AUDIT_KEY` by default; unkeyed without it).
    pub audit_key: crate::audit::AuditKey,
    /// Where fills and risk limits hit are told (`spec.notifications`; nobody by default).
    pub notifier: notify::Notifier,
}

/// Order books shared between the book stream's task and the replay.
pub type SharedBooks =
    std::sync::Arc<std::sync::Mutex<HashMap<String, (crate::market::book::Depth, i64)>>>;

/// Why a backtest could not run.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error("Strategy {strategy}: {error}")]
    Schedule {
        strategy: String,
        error: crate::schedule::ScheduleError,
    },
    #[error("TradingAssistant {assistant}: {error}")]
    Params {
        assistant: String,
        error: crate::roles::ParamError,
    },
    #[error("no candles to replay (check the symbols, the data files and the date range)")]
    NoCandles,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Decisions by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct DecisionCounts {
    pub total: u64,
    pub consensus: u64,
    pub escalated: u64,
    pub vetoed: u64,
    /// Cycles dropped by `escalation.action: Reject` or a human's reject.
    pub rejected: u64,
    pub hold: u64,
    pub buy: u64,
    pub sell: u64,
}

/// What the executor did with a decision, for the log.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionRecord {
    pub decision: Decision,
    pub trigger: &'static str,
    pub execution: String,
    pub fill: Option<Fill>,
}

/// Everything a backtest produced.
pub struct Outcome {
    pub figures: Figures,
    pub baselines: BTreeMap<&'static str, Figures>,
    /// The baselines' runs in full (curves, exposure, turnover, fees).
    pub baseline_runs: BTreeMap<&'static str, baselines::BaselineRun>,
    pub decisions: DecisionCounts,
    pub candles: u64,
    pub cycles: u64,
    pub first_open_time: i64,
    pub last_open_time: i64,
    pub curve: Vec<(i64, f64)>,
    pub buy_and_hold_curve: Vec<(i64, f64)>,
    /// The latest [`RECORDS_KEPT`] notable decisions (traded, escalated, vetoed or not HOLD), for the
    /// report's log; the store holds every decision.
    pub records: std::collections::VecDeque<DecisionRecord>,
    /// How many notable decisions there were in all.
    pub notable: u64,
    pub trades: Vec<ClosedTrade>,
    pub fees_paid: Decimal,
    /// Vote weights at the end (learned, or as declared).
    pub weights: BTreeMap<String, f64>,
    pub learning_updates: u64,
    /// Mean share of equity held in positions over the scored candles.
    pub exposure: f64,
    /// Traded notional over the mean equity of the scored candles (2.0 = one full round trip).
    pub turnover: f64,
    /// The audit chain's head after the run (with a store).
    pub audit: Option<writer::AuditHead>,
}

/// The typical absolute daily move of a crypto pair, scaling the learning rewards (√time for other
/// horizons); a constant rather than an estimate from the data, so a replay never looks ahead.
const TYPICAL_DAILY_MOVE: f64 = 0.035;

/// Writes the vote weights and the book (positions, equity, cash) as they are at `at`.
async fn save_state(
    store: &Store,
    strategy: &str,
    at: i64,
    voters: &[Voter],
    exchange: &PaperExchange,
) -> Result<(), crate::store::StoreError> {
    let weights: Vec<(String, f64)> = voters
        .iter()
        .map(|v| (v.assistant.clone(), v.weight))
        .collect();
    store.save_weights(strategy, at, &weights).await?;
    let positions: Vec<(String, String, String)> = exchange
        .positions()
        .map(|p| {
            (
                p.symbol.clone(),
                p.quantity.to_string(),
                p.entry_price.to_string(),
            )
        })
        .collect();
    store
        .save_portfolio(
            strategy,
            at,
            &exchange.equity().round_dp(8).to_string(),
            &exchange.cash().round_dp(8).to_string(),
            &positions,
        )
        .await
}

/// The answer to one open escalation, with its symbol.
type OpenAnswer<'a> = Pin<Box<dyn Future<Output = (String, Resolution)> + 'a>>;

/// Asks for the answer to `pending`'s escalation.
fn open_answer<'a, E: EscalationResolver>(
    escalations: &'a E,
    pending: &PendingDecision,
) -> OpenAnswer<'a> {
    let escalation = pending.escalation.clone();
    Box::pin(async move {
        let answer = escalations.resolve(&escalation).await;
        (escalation.symbol, answer)
    })
}

/// Who decides in a replay: the transport to the voters, where escalations go, and the voters.
pub struct ReplayTeam<'a, T, E> {
    pub transport: &'a T,
    pub escalations: &'a E,
    pub voters: Vec<Voter>,
}

/// No human watches a backtest: escalations time out at once (the policy's default action applies).
pub struct EscalationsTimeOut;
impl EscalationResolver for EscalationsTimeOut {
    async fn resolve(&self, _: &Escalation) -> Resolution {
        Resolution::TimedOut
    }
}

impl Backtest {
    /// A replay of `series` by the default team under `team_config`: every candle traded and scored,
    /// no cycle limit, no model, paper trading; callers set what differs.
    pub fn new(team_config: TeamConfig, series: Vec<Series>, interval_ms: i64) -> Self {
        Self {
            team_config,
            team: default_team(),
            series,
            interval_ms,
            max_cycles: None,
            trade_from: None,
            shadow_cycles: true,
            news: None,
            llm: None,
            forecaster: None,
            retrainer: None,
            books: None,
            live: None,
            audit_key: crate::audit::AuditKey::from_env(),
            notifier: notify::Notifier::none(),
        }
    }

    /// Retrains the strategist's model on the candles up to `t`, logs what changed and stores the
    /// model. A failure (too little history yet) keeps the model in use.
    async fn retrain(
        &self,
        retrainer: &crate::ml::Retrainer,
        t: i64,
        strategy: &str,
        store: Option<&Store>,
    ) {
        let history: Vec<&[crate::market::Candle]> = self
            .series
            .iter()
            .map(|s| &s.candles[..s.candles.partition_point(|c| c.open_time <= t)])
            .collect();
        match retrainer.retrain(&history) {
            Ok(report) => {
                tracing::info!(
                    version = report.version,
                    trained_on = report.trained_on,
                    held_out = report.held_out,
                    previous_accuracy = ?report.previous_accuracy,
                    accuracy = report.accuracy,
                    brier = report.brier,
                    "retrained the strategist's ensemble"
                );
                if let (Some(store), Some((version, model))) = (store, retrainer.current()) {
                    let metrics = serde_json::to_string(&report).unwrap_or_default();
                    if let Err(error) = store
                        .save_model(
                            strategy,
                            "ensemble",
                            version as i64,
                            t,
                            &metrics,
                            &model.to_bytes(),
                        )
                        .await
                    {
                        tracing::warn!(%error, "cannot store the retrained model");
                    }
                }
            }
            Err(error) => tracing::info!(%error, "not retrained yet"),
        }
    }

    /// The local team of [`Backtest::team`]: its voting analysts in process, and its voters.
    pub fn local_team(&self) -> Result<(LocalTeam, Vec<Voter>), BacktestError> {
        let risk = &self.team_config.strategy.spec.risk;
        let mut assistants = Vec::new();
        for member in &self.team {
            if let (Role::FundamentalAnalyst, Some(news)) = (member.role, &self.news) {
                assistants.push(LocalAssistant {
                    voter: Voter {
                        assistant: member.name.clone(),
                        role: member.role,
                        weight: member.weight,
                    },
                    analyst: Box::new(crate::roles::fundamental::FundamentalAnalyst {
                        news: Default::default(),
                        dated: Some(news.clone()),
                    }),
                    llm: self.llm.clone(),
                });
                continue;
            }
            if member.role == Role::Strategist {
                if let Some(forecaster) = &self.forecaster {
                    assistants.push(LocalAssistant {
                        voter: Voter {
                            assistant: member.name.clone(),
                            role: member.role,
                            weight: member.weight,
                        },
                        analyst: Box::new(crate::roles::strategist::Strategist {
                            forecaster: Some(forecaster.clone()),
                        }),
                        llm: self.llm.clone(),
                    });
                    continue;
                }
            }
            let analyst = analyst_for(member.role, &member.params, risk).map_err(|error| {
                BacktestError::Params {
                    assistant: member.name.clone(),
                    error,
                }
            })?;
            if let Some(analyst) = analyst {
                assistants.push(LocalAssistant {
                    voter: Voter {
                        assistant: member.name.clone(),
                        role: member.role,
                        weight: member.weight,
                    },
                    analyst,
                    llm: self
                        .llm
                        .as_ref()
                        .filter(|_| member.role != Role::RiskManager)
                        .cloned(),
                });
            }
        }
        let team = LocalTeam::new(assistants);
        let voters = team.voters();
        Ok((team, voters))
    }

    /// Runs the backtest with the whole team in process; `progress(done, total)` is called every few
    /// thousand candles. Every decision, opinion, order and audit entry goes to `store` when given.
    pub async fn run(
        &self,
        store: Option<&Store>,
        progress: impl FnMut(u64, u64),
    ) -> Result<Outcome, BacktestError> {
        let (team, voters) = self.local_team()?;
        let team = ReplayTeam {
            transport: &team,
            escalations: &EscalationsTimeOut,
            voters,
        };
        self.replay(None, team, store, |_| {}, progress).await
    }

    /// Replays the candles through any transport (the local team, or assistants over the bus):
    /// `voters` are asked each cycle (their weights learned on the way when the policy says so), and
    /// `on_decision` sees every decision as it is made.
    pub async fn replay<T: Transport, E: EscalationResolver>(
        &self,
        live: Option<tokio::sync::mpsc::Receiver<crate::market::stream::SymbolCandle>>,
        team: ReplayTeam<'_, T, E>,
        store: Option<&Store>,
        mut on_decision: impl FnMut(&Decision),
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Outcome, BacktestError> {
        let ReplayTeam {
            transport,
            escalations,
            mut voters,
        } = team;
        let strategy = &self.team_config.strategy;
        let name = strategy.metadata.name.clone().unwrap_or_default();
        for v in &voters {
            crate::metrics::WEIGHTS
                .with_label_values(&[&name, &v.assistant])
                .set(v.weight);
        }
        let spec = &strategy.spec;
        let mut analysis = Schedule::parse("spec.schedule.analysis", &spec.schedule.analysis)
            .map_err(|error| BacktestError::Schedule {
                strategy: name.clone(),
                error,
            })?;
        let mut learning_schedule =
            Schedule::parse("spec.schedule.learning", &spec.schedule.learning).map_err(
                |error| BacktestError::Schedule {
                    strategy: name.clone(),
                    error,
                },
            )?;
        let detector_params = self
            .team
            .iter()
            .find(|m| m.role == Role::MarketMonitor)
            .map(|m| m.params.clone())
            .unwrap_or_default();
        // learned weights (policy `weighting: learned`): opinions scored 12 candles later
        let horizon_ms = 12 * self.interval_ms;
        let (fee_rate, slippage_bps) = spec
            .exchange
            .as_ref()
            .map_or((0.001, 5.0), |e| (e.fee_rate, e.slippage_bps));
        let round_trip_cost = 2.0 * (fee_rate + slippage_bps / 10_000.0);
        let mut learner =
            (self.team_config.policy.spec.weighting == Weighting::Learned).then(|| {
                WeightLearner::new(
                    voters
                        .iter()
                        .map(|v| (v.assistant.clone(), v.weight))
                        .collect(),
                    horizon_ms,
                    TYPICAL_DAILY_MOVE * (horizon_ms as f64 / 86_400_000.0).sqrt(),
                )
                .with_cost(round_trip_cost)
            });
        let mut learning_updates = 0u64;
        let mut coordinator = Coordinator::new(name.clone(), self.team_config.policy.spec.clone());
        let exchange_spec = spec.exchange.clone().unwrap_or_default();
        let executor = Executor {
            strategy: name.clone(),
            limits: spec.risk.clone(),
            paused: spec.paused,
            order_type: exchange_spec.order_type,
            limit_offset_bps: exchange_spec.limit_offset_bps,
            min_hold_ms: MIN_HOLD_CANDLES * self.interval_ms,
        };
        let limit_ttl_ms = i64::from(exchange_spec.limit_ttl_candles) * self.interval_ms;
        let fees = FeeModel::new(fee_rate, slippage_bps);
        let capital = decimal(spec.capital);
        let mut exchange = PaperExchange::new(capital, fees);

        let timeline = timeline(&self.series);
        let first_scored = self
            .trade_from
            .map_or(0, |from| timeline.partition_point(|t| *t < from));
        // a live feed may bring every scored candle: the loaded ones are then its warm-up
        if timeline.len() <= first_scored && live.is_none() {
            return Err(BacktestError::NoCandles);
        }
        let total = self
            .series
            .iter()
            .map(|s| s.candles.len() as u64)
            .sum::<u64>();
        let mut indicators: Vec<IndicatorSet> =
            self.series.iter().map(|_| IndicatorSet::new()).collect();
        let mut detectors = Vec::new();
        for _ in &self.series {
            detectors.push(
                AlertDetector::from_params(&detector_params).map_err(|error| {
                    BacktestError::Params {
                        assistant: "market-monitor".into(),
                        error,
                    }
                })?,
            );
        }
        let mut curve = Vec::with_capacity(timeline.len());
        let mut records = std::collections::VecDeque::with_capacity(RECORDS_KEPT);
        let mut notable = 0u64;
        let mut counts = DecisionCounts::default();
        let mut cycles = 0u64;
        let mut done = 0u64;
        let mut standing = Standing::new();
        let mut writer = writer::RecordWriter::new(store, &name, &self.audit_key).await?;
        let mut pending_decisions: Vec<Decision> = Vec::with_capacity(FLUSH_EVERY);
        let mut pending_orders: Vec<OrderRecord> = Vec::new();
        // live decisions are written as they are made; a replay batches them
        let flush_every = if live.is_some() { 1 } else { FLUSH_EVERY };
        let mut feed = Feed {
            series: &self.series,
            timeline: &timeline,
            next: 0,
            cursors: vec![0usize; self.series.len()],
            live,
        };
        let mut first_t = timeline.get(first_scored).copied();
        let mut last_t = first_t.or(self.trade_from).unwrap_or_default();
        let mut scored_candles = 0u64;
        let mut trading = false;
        let mut holding = metrics::Holding::default();
        // asked to stop (SIGTERM), the loop ends at its next safe point and writes down what it has
        let _busy = crate::shutdown::busy();
        // open escalations hold only their own symbol: the answer is awaited beside the feed and
        // taken up at that symbol's next candle
        let mut waiting: HashMap<String, Box<PendingDecision>> = HashMap::new();
        let mut answers: FuturesUnordered<OpenAnswer<'_>> = FuturesUnordered::new();
        let mut answered: HashMap<String, Resolution> = HashMap::new();
        'candles: loop {
            // checked before waiting for the next candle: on a live feed that wait is up to a
            // whole interval, and the run is over as soon as its last cycle is
            if self.max_cycles.is_some_and(|max| cycles >= max) || crate::shutdown::requested() {
                break;
            }
            // a replay stands still while every symbol waits for a human (time passes only live)
            let all_held = feed.live.is_none() && answers.len() >= self.series.len();
            let next = tokio::select! {
                step = feed.next(), if !all_held => step,
                () = crate::shutdown::stop_requested() => None,
                Some((symbol, answer)) = answers.next(), if !answers.is_empty() => {
                    answered.insert(symbol, answer);
                    continue 'candles;
                }
            };
            let Some(Step {
                t,
                candles: step,
                live,
            }) = next
            else {
                break;
            };
            let scoring = self.trade_from.is_none_or(|from| t >= from);
            if scoring {
                first_t.get_or_insert(t);
                last_t = t;
                standing.record(t, exchange.equity().to_f64().unwrap_or(0.0));
            }
            let close_time = t + self.interval_ms;
            let scheduled = analysis.fires_within(t, close_time);
            // asked once per step: the schedule moves on when it fires
            let learning_due = learning_schedule.fires_within(t, close_time);
            if let Some(learner) = learner.as_mut() {
                if learning_due {
                    for (assistant, _, weight) in learner.update() {
                        crate::metrics::WEIGHTS
                            .with_label_values(&[&name, &assistant])
                            .set(weight);
                        if let Some(v) = voters.iter_mut().find(|v| v.assistant == assistant) {
                            v.weight = weight;
                        }
                    }
                    learning_updates += 1;
                }
            }
            // the forecaster trains on the history once, as trading starts, then on the schedule
            let first_traded = scoring && !trading;
            trading |= scoring;
            if let Some(retrainer) = &self.retrainer {
                if first_traded || (learning_due && scoring) {
                    self.retrain(retrainer, t, &name, store).await;
                }
            }
            let step_len = step.len() as u64;
            for (s, candle) in step {
                let candle = &candle;
                let series = &self.series[s];
                done += 1;
                let values = indicators[s].update(candle);
                let alert = detectors[s].update(candle).is_some();
                let symbol = &series.symbol;
                if !scoring {
                    if let Some(learner) = learner.as_mut() {
                        learner.settle(symbol, t, candle.close);
                        if self.shadow_cycles && (scheduled || alert) {
                            let decision = coordinator
                                .run_cycle(
                                    cycle_id(&name, symbol, t, "history"),
                                    history_snapshot(symbol, candle, values.indicators),
                                    voters.clone(),
                                    transport,
                                    // nobody is asked about the past
                                    &EscalationsTimeOut,
                                    || close_time,
                                )
                                .await;
                            learner.observe(t, symbol, candle.close, &decision.transcript);
                        }
                    }
                    continue;
                }
                // resting limit orders this candle reaches, then those whose time ran out
                for (resting, result) in exchange.fill_resting(
                    symbol,
                    decimal(candle.open),
                    decimal(candle.high),
                    decimal(candle.low),
                    t,
                ) {
                    crate::metrics::ordered(&name, resting.order.side, result.as_ref().ok());
                    pending_orders.push(self.told(order_record(
                        resting.order,
                        result,
                        &resting.reason,
                    )));
                }
                for expired in exchange.expire_resting(symbol, t) {
                    crate::metrics::ordered(&name, expired.order.side, None);
                    pending_orders.push(OrderRecord {
                        order: expired.order,
                        fill: None,
                        status: "EXPIRED",
                        reason: "limit not reached before spec.exchange.limitTtlCandles".into(),
                    });
                }
                // a held position's stop or target, inside this candle
                if let Some((price, reason)) = exchange.exit_on_candle(
                    symbol,
                    candle.open,
                    candle.high,
                    candle.low,
                    spec.risk.stop_loss,
                    spec.risk.take_profit,
                ) {
                    let quantity = exchange
                        .position(symbol)
                        .map(|p| p.quantity)
                        .unwrap_or_default();
                    let order = protocol::messages::Order {
                        decision_id: format!("{name}_{symbol}_{t}_{reason}"),
                        strategy: name.clone(),
                        symbol: symbol.clone(),
                        side: protocol::messages::Side::Sell,
                        kind: protocol::messages::OrderKind::Market,
                        quantity,
                        limit_price: None,
                        at: t,
                    };
                    // slippage applies to the level too; a refusal cannot happen for a held quantity
                    let result = exchange.execute(&order, price, reason);
                    self.notifier.send(|| {
                        notify::Event::risk_limit(&name, symbol, &order.decision_id, reason)
                    });
                    pending_orders.push(self.told(order_record(order, result, reason)));
                }
                exchange.mark(symbol, decimal(candle.close));
                if let Some(learner) = learner.as_mut() {
                    learner.settle(symbol, t, candle.close);
                }
                // an answered escalation is decided on this candle; an open one holds its symbol
                let mut concluded = None;
                if waiting.contains_key(symbol) {
                    match answered.remove(symbol) {
                        Some(answer) => {
                            let pending = waiting.remove(symbol).expect("waiting");
                            concluded = Some(pending.conclude(answer, close_time));
                        }
                        None => {
                            if scheduled || alert {
                                crate::metrics::HELD_FOR_ESCALATION
                                    .with_label_values(&[&name, symbol])
                                    .inc();
                            }
                            continue;
                        }
                    }
                }
                if concluded.is_none()
                    && (!(scheduled || alert) || self.max_cycles.is_some_and(|max| cycles >= max))
                {
                    continue;
                }
                let trigger = if scheduled { "schedule" } else { "alert" };
                let equity = exchange.equity().to_f64().unwrap_or(0.0);
                let position = exchange.position(symbol);
                let context = PortfolioContext {
                    equity,
                    position_fraction: position.map_or(0.0, |p| {
                        (p.quantity * decimal(candle.close)).to_f64().unwrap_or(0.0)
                            / equity.max(f64::MIN_POSITIVE)
                    }),
                    entry_price: position.and_then(|p| p.entry_price.to_f64()),
                    open_positions: exchange.positions().count() as u32,
                    drawdown: standing.drawdown(equity),
                    daily_loss: standing.daily_loss(equity),
                };
                let snapshot = MarketSnapshot {
                    symbol: symbol.clone(),
                    open_time: t,
                    open: candle.open,
                    high: candle.high,
                    low: candle.low,
                    close: candle.close,
                    volume: candle.volume,
                    indicators: values.indicators,
                    portfolio: context,
                };
                let decision = match concluded {
                    Some(decision) => decision,
                    None => {
                        cycles += 1;
                        // a stop drops the cycle in flight: it decided nothing, and a restarted
                        // replay decides it again under the same id
                        let stamp = || close_time;
                        let deliberation = tokio::select! {
                            deliberation = coordinator.deliberate(
                                cycle_id(&name, symbol, t, trigger),
                                snapshot,
                                voters.clone(),
                                transport,
                                &stamp,
                            ) => deliberation,
                            () = crate::shutdown::stop_requested() => break 'candles,
                        };
                        match deliberation {
                            Deliberation::Decided(decision) => decision,
                            Deliberation::Escalated(pending) => {
                                let mut answer = open_answer(escalations, &pending);
                                // nobody to ask (a backtest): decided at once, as before
                                match (&mut answer).now_or_never() {
                                    Some((_, answer)) => pending.conclude(answer, close_time),
                                    None => {
                                        answers.push(answer);
                                        waiting.insert(symbol.clone(), pending);
                                        // a human may take minutes: what was decided before the
                                        // question is written now, not at the next full batch
                                        writer
                                            .write(
                                                std::mem::take(&mut pending_decisions),
                                                std::mem::take(&mut pending_orders),
                                            )
                                            .await?;
                                        if let Some(store) = store {
                                            if let Err(error) =
                                                save_state(store, &name, t, &voters, &exchange)
                                                    .await
                                            {
                                                tracing::warn!(%error, "saving the book and weights failed; retried at the next flush");
                                            }
                                        }
                                        continue;
                                    }
                                }
                            }
                        }
                    }
                };
                if let Some(learner) = learner.as_mut() {
                    learner.observe(t, symbol, candle.close, &decision.transcript);
                }
                counts.total += 1;
                counts.consensus += u64::from(decision.consensus_reached);
                counts.escalated += u64::from(decision.escalated);
                counts.vetoed += u64::from(decision.vetoed);
                counts.rejected += u64::from(decision.rejected);
                match decision.action {
                    Action::Hold => counts.hold += 1,
                    Action::Buy => counts.buy += 1,
                    Action::Sell => counts.sell += 1,
                }
                let (execution, fill) = match executor.plan(
                    &decision,
                    &exchange,
                    &context,
                    Market {
                        volatility: values.indicators.volatility,
                    },
                ) {
                    Plan::Trade(order)
                        if live && !fresh(close_time, self.interval_ms, now_ms()) =>
                    {
                        let record = stale_order_record(order, now_ms() - close_time);
                        crate::metrics::ordered(&name, record.order.side, None);
                        tracing::warn!(
                            symbol = %symbol,
                            decision = %decision.id,
                            reason = %record.reason,
                            "not traded"
                        );
                        let execution = format!("expired: {}", record.reason);
                        pending_orders.push(record);
                        (execution, None)
                    }
                    Plan::Trade(order) => {
                        if let Some(books) = &self.books {
                            let book = books.lock().expect("books lock").get(symbol).cloned();
                            if let Some((depth, at)) = book {
                                exchange.update_book(depth, at);
                            }
                        }
                        let placed = match &self.live {
                            Some(live) => match live.place(&order, decimal(candle.close)).await {
                                Ok(fill) => {
                                    exchange.book_fill(&order, &fill).map(Placement::Filled)
                                }
                                Err(error) => {
                                    tracing::warn!(%error, "the live order did not go through");
                                    Err(OrderRejection::Exchange(error.to_string()))
                                }
                            },
                            None => exchange.place(
                                &order,
                                decimal(candle.close),
                                "decision",
                                t + limit_ttl_ms,
                            ),
                        };
                        let result = match placed {
                            Ok(Placement::Filled(fill)) => Some(Ok(fill)),
                            Err(rejection) => Some(Err(rejection)),
                            Ok(Placement::Resting) => None,
                        };
                        match result {
                            // a resting limit order is recorded when it fills or expires
                            None => (
                                format!(
                                    "limit {:?} {} @ {} resting",
                                    order.side,
                                    order.quantity,
                                    order.limit_price.unwrap_or_default()
                                ),
                                None,
                            ),
                            Some(result) => {
                                let record = order_record(order, result, "decision");
                                let execution = match &record.fill {
                                    Some(fill) => {
                                        format!(
                                            "{:?} {} @ {}",
                                            fill.side, fill.quantity, fill.price
                                        )
                                    }
                                    None => format!("rejected: {}", record.reason),
                                };
                                let fill = record.fill.clone();
                                crate::metrics::ordered(
                                    &name,
                                    record.order.side,
                                    record.fill.as_ref(),
                                );
                                pending_orders.push(self.told(record));
                                (execution, fill)
                            }
                        }
                    }
                    Plan::Nothing(why) => (why, None),
                    Plan::Refused(why) => {
                        self.notifier
                            .send(|| notify::Event::risk_limit(&name, symbol, &decision.id, &why));
                        (format!("refused: {why}"), None)
                    }
                };
                if decision.vetoed {
                    self.notifier.send(|| {
                        notify::Event::risk_limit(
                            &name,
                            symbol,
                            &decision.id,
                            &veto_reason(&decision),
                        )
                    });
                }
                if fill.is_some()
                    || decision.escalated
                    || decision.vetoed
                    || decision.rejected
                    || decision.action != Action::Hold
                {
                    notable += 1;
                    if records.len() == RECORDS_KEPT {
                        records.pop_front();
                    }
                    records.push_back(DecisionRecord {
                        decision: decision.clone(),
                        trigger,
                        execution,
                        fill,
                    });
                }
                on_decision(&decision);
                pending_decisions.push(decision);
                if pending_decisions.len() >= flush_every {
                    writer
                        .write(
                            std::mem::replace(
                                &mut pending_decisions,
                                Vec::with_capacity(flush_every),
                            ),
                            std::mem::take(&mut pending_orders),
                        )
                        .await?;
                    // the book and the weights as they are now: the API shows them during the
                    // run, and a restarted coordinator resumes from these weights
                    if let Some(store) = store {
                        if let Err(error) = save_state(store, &name, t, &voters, &exchange).await {
                            tracing::warn!(%error, "saving the book and weights failed; retried at the next flush");
                        }
                    }
                }
            }
            if !scoring {
                continue;
            }
            scored_candles += step_len;
            let equity = exchange.equity().to_f64().unwrap_or(0.0);
            holding.sample(equity, exchange.exposure());
            crate::metrics::portfolio(&name, equity, spec.capital);
            crate::metrics::risk(&name, standing.drawdown(equity), spec.risk.max_drawdown);
            curve.push((t, equity));
            if done % 4096 < self.series.len() as u64 {
                progress(done, total);
            }
        }
        progress(done, total);
        if !waiting.is_empty() {
            tracing::warn!(
                open = waiting.len(),
                "the run ended with escalations unanswered: those cycles were not decided"
            );
        }
        writer.write(pending_decisions, pending_orders).await?;
        writer.finish().await?;
        let audit = writer.head();
        if let Some(store) = store {
            save_state(store, &name, last_t, &voters, &exchange).await?;
        }
        let pnls: Vec<f64> = exchange
            .trades()
            .iter()
            .map(|t| t.pnl.to_f64().unwrap_or(0.0))
            .collect();
        let market = baselines::Market {
            series: &self.series,
            timeline: &timeline,
            first_scored,
            interval_ms: self.interval_ms,
            capital,
            fees,
        };
        let baseline_runs = baselines::run_all(&market);
        let hold_curve = baseline_runs["buy_and_hold"].curve.clone();
        let baseline_figures = baseline_runs
            .iter()
            .map(|(name, run)| (*name, run.figures))
            .collect();
        Ok(Outcome {
            audit,
            figures: figures(&curve, self.interval_ms, &pnls),
            baselines: baseline_figures,
            baseline_runs,
            decisions: counts,
            candles: scored_candles,
            cycles,
            first_open_time: first_t.unwrap_or(last_t),
            last_open_time: last_t,
            curve,
            buy_and_hold_curve: hold_curve,
            records,
            notable,
            trades: exchange.trades().to_vec(),
            fees_paid: exchange.fees_paid(),
            weights: voters
                .iter()
                .map(|v| (v.assistant.clone(), v.weight))
                .collect(),
            learning_updates,
            exposure: holding.exposure(),
            turnover: holding.turnover(exchange.traded_notional().to_f64().unwrap_or(0.0)),
        })
    }
}

/// The snapshot of a history candle: the team decides on it flat, with nothing at stake.
fn history_snapshot(
    symbol: &str,
    candle: &Candle,
    indicators: protocol::messages::Indicators,
) -> MarketSnapshot {
    MarketSnapshot {
        symbol: symbol.to_string(),
        open_time: candle.open_time,
        open: candle.open,
        high: candle.high,
        low: candle.low,
        close: candle.close,
        volume: candle.volume,
        indicators,
        portfolio: PortfolioContext {
            equity: 1.0,
            ..PortfolioContext::default()
        },
    }
}

/// Candles a position is held before the team's SELL closes it (a day of hourly candles; chosen
/// on the BTCUSDT/ETHUSDT 2017–2020 hourly candles).
pub const MIN_HOLD_CANDLES: i64 = 24;

/// Notable decisions kept in memory for the report (memory stays bounded on long runs).
pub const RECORDS_KEPT: usize = 300;

/// Decisions buffered before a write to the store.
const FLUSH_EVERY: usize = 2048;

/// The store's record of an order the paper exchange filled or refused.
fn order_record(
    order: protocol::messages::Order,
    result: Result<Fill, crate::exchange::OrderRejection>,
    reason: &str,
) -> OrderRecord {
    match result {
        Ok(fill) => OrderRecord {
            order,
            fill: Some(fill),
            status: "FILLED",
            reason: reason.to_string(),
        },
        Err(rejection) => OrderRecord {
            order,
            fill: None,
            status: "REJECTED",
            reason: rejection.to_string(),
        },
    }
}

/// A live candle is traded only while it is fresh: if it closed at most one interval before now.
/// An older one (a feed that lagged, a reconnect that caught up, a stalled cycle) is decided on
/// but never traded: its order would act on a market that has moved since (docs/architecture.md,
/// "Live safety").
pub fn fresh(close_time: i64, interval_ms: i64, now_ms: i64) -> bool {
    now_ms - close_time <= interval_ms
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The store's record of an order that was planned on a live candle closed `age_ms` ago, too
/// stale to trade on, and never sent.
/// Why a vetoed decision was stopped: the vetoing opinion's reasoning.
fn veto_reason(decision: &Decision) -> String {
    match decision.transcript.iter().rev().find(|o| o.veto) {
        Some(o) => format!("{} vetoed {:?}: {}", o.role, decision.action, o.reasoning),
        None => "vetoed".into(),
    }
}

impl Backtest {
    /// `record`, after telling its fill to the notification targets.
    fn told(&self, record: OrderRecord) -> OrderRecord {
        if let Some(fill) = &record.fill {
            self.notifier.send(|| notify::Event::fill(fill));
        }
        record
    }
}

fn stale_order_record(order: protocol::messages::Order, age_ms: i64) -> OrderRecord {
    let age_s = age_ms / 1000;
    OrderRecord {
        order,
        fill: None,
        status: "EXPIRED",
        reason: format!(
            "the candle closed {age_s} s ago, more than one interval: too old to trade on"
        ),
    }
}

/// One time step: an open time and the candles (by series index) that opened then; `live` when
/// they came from the live feed rather than the loaded history.
struct Step {
    t: i64,
    candles: Vec<(usize, Candle)>,
    live: bool,
}

/// Time steps to process: the loaded candles (grouped by open time), then live candles one by one.
struct Feed<'a> {
    series: &'a [Series],
    timeline: &'a [i64],
    next: usize,
    cursors: Vec<usize>,
    live: Option<tokio::sync::mpsc::Receiver<crate::market::stream::SymbolCandle>>,
}

impl Feed<'_> {
    /// The next open time and the candles (by series index) that opened then.
    async fn next(&mut self) -> Option<Step> {
        if let Some(&t) = self.timeline.get(self.next) {
            self.next += 1;
            let mut step = Vec::with_capacity(self.series.len());
            for (s, series) in self.series.iter().enumerate() {
                if let Some(c) = series
                    .candles
                    .get(self.cursors[s])
                    .filter(|c| c.open_time == t)
                {
                    self.cursors[s] += 1;
                    step.push((s, *c));
                }
            }
            return Some(Step {
                t,
                candles: step,
                live: false,
            });
        }
        let live = self.live.as_mut()?;
        loop {
            let sc = live.recv().await?;
            if let Some(s) = self
                .series
                .iter()
                .position(|series| series.symbol == sc.symbol)
            {
                return Some(Step {
                    t: sc.candle.open_time,
                    candles: vec![(s, sc.candle)],
                    live: true,
                });
            }
        }
    }
}

/// Every open time of every series, ascending, once.
pub fn timeline(series: &[Series]) -> Vec<i64> {
    let mut times: Vec<i64> = series
        .iter()
        .flat_map(|s| s.candles.iter().map(|c| c.open_time))
        .collect();
    times.sort_unstable();
    times.dedup();
    times
}
