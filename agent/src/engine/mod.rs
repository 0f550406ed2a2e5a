//! The trading engine of every mode (docs/architecture.md, "The engine"): the backtest, `run
//! --local` and the coordinator process all drive a [`Session`] over a feed of candles.
//!
//! - [`feed`]: the candles, loaded then live, step by step;
//! - [`session`]: the candle loop: indicators, schedules, the team's cycles, escalations held per
//!   symbol, learned weights;
//! - [`desk`]: the executor's orders on a [`venue::Venue`] (paper or Binance spot), resting
//!   orders, stops and targets, booked in the ledger;
//! - [`record`]: every store write, metric and notification, on one path;
//! - [`figures`]: return, Sharpe, Sortino, drawdown of an equity curve.
//!
//! Time runs candle by candle over every symbol (candles of the same open time together). On each
//! candle: indicators update, a held position's stop-loss / take-profit is checked against the
//! candle's range, then a cycle runs for the symbol if the Strategy's analysis schedule fires at the
//! candle's close or the market monitor raises an alert. Decisions execute at the close (± slippage).

pub mod desk;
pub mod feed;
pub mod figures;
pub mod record;
pub mod session;
pub mod venue;
pub mod writer;

pub use feed::{fresh, timeline};
pub use record::PortfolioSender;
pub use writer::{AnchorSender, AuditHead};

use crate::config::TeamConfig;
use crate::consensus::{EscalationResolver, Resolution, Voter};
use crate::exchange::ClosedTrade;
use crate::market::Candle;
use crate::roles::{analyst_for, Params};
use crate::store::Store;
use crate::team::{LocalAssistant, LocalTeam};
use figures::Figures;
use protocol::messages::{Decision, Escalation, Fill};
use protocol::Role;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The candles of one symbol, ascending.
#[derive(Debug, Clone)]
pub struct Series {
    /// The Binance symbol, e.g. `BTCUSDT`.
    pub symbol: String,
    /// Its candles, by open time, one interval apart (gaps allowed).
    pub candles: Vec<Candle>,
}

/// One assistant of an in-process team.
#[derive(Debug, Clone)]
pub struct Member {
    /// The assistant's name, as its opinions and learned weight carry it.
    pub name: String,
    /// Its specialty.
    pub role: Role,
    /// Its declared vote weight (the TradingAssistant's `spec.weight`).
    pub weight: f64,
    /// Its role params (the TradingAssistant's `spec.params`).
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

/// Everything a session needs: the team, its configuration, the candles and where it trades.
pub struct Session {
    /// The Strategy and ConsensusPolicy the team runs, validated as a cluster would.
    pub team_config: TeamConfig,
    /// The assistants; those the policy names vote.
    pub team: Vec<Member>,
    /// The candles, one series per symbol.
    pub series: Vec<Series>,
    /// The candles' interval, ms.
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
    /// A replay's decisions are written in batches; with this, a batch is also written once its
    /// first decision is this old (the coordinator: 1 s, so the store and the API keep up).
    /// `None`: full batches only (a backtest, for speed).
    pub record_within: Option<std::time::Duration>,
    /// The coordinator's unpublished decisions: before each step the loop waits while they are at
    /// their bound (NATS away), so memory stays bounded and nothing is dropped. `None`: no stream.
    pub backlog: Option<std::sync::Arc<crate::bus::publisher::Backlog>>,
    /// Where the book goes after each step (the coordinator publishes it on `….portfolio`).
    pub portfolio: Option<record::PortfolioSender>,
    /// The executor and auditor run as services of their own (docs/architecture.md, "The executor
    /// and auditor services"): each scored candle goes to `candles_out` ahead of its decision, the
    /// desk is only the team's view of the book (paper; its orders are neither sent, counted nor
    /// stored), and the record writes no decision, order or audit row (the book and weights still).
    pub services: Option<CandleSender>,
    /// The book a live run starts from: the one it last wrote (`OpeningBook::load`), so that a
    /// restarted coordinator resumes with its cash and positions. `None`: the Strategy's capital.
    pub opening_book: Option<OpeningBook>,
    /// With services on a live feed: the executor's latest book (`….book`). Before each scored
    /// candle the desk's view takes it when a newer one came, so that the team sizes and limits
    /// against what the exchange filled and the account holds, not its own paper simulation.
    /// `None`: the view is the desk's own (a replay, whose paper view the executor's book equals).
    pub executor_book: Option<ExecutorBookFeed>,
}

/// The executor's latest book, as the coordinator receives it.
pub type ExecutorBookFeed = tokio::sync::watch::Receiver<Option<protocol::messages::ExecutorBook>>;

/// Cash and positions a session starts from instead of the Strategy's capital.
#[derive(Debug, Clone, PartialEq)]
pub struct OpeningBook {
    /// Cash, in the quote asset.
    pub cash: Decimal,
    /// Each position: symbol, quantity, entry price.
    pub positions: Vec<(String, Decimal, Decimal)>,
}

impl OpeningBook {
    /// The book `strategy` last wrote to `store`; `None` when it never wrote one. A stored
    /// number that is not a decimal is an error naming it.
    pub async fn load(
        store: &Store,
        strategy: &str,
    ) -> Result<Option<Self>, crate::store::StoreError> {
        let stored = store.portfolio(strategy).await?;
        let Some(latest) = stored.latest else {
            return Ok(None);
        };
        let number = |what: &str, value: &str| {
            value.parse::<Decimal>().map_err(|e| {
                crate::store::StoreError::Corrupt(format!(
                    "Strategy {strategy}'s stored book: {what} {value:?} is not a decimal: {e}"
                ))
            })
        };
        let mut positions = Vec::new();
        for p in &stored.positions {
            let quantity = number("quantity", &p.quantity)?;
            let entry = number("entry price", &p.entry_price)?;
            positions.push((p.symbol.clone(), quantity, entry));
        }
        Ok(Some(Self {
            cash: number("cash", &latest.cash)?,
            positions,
        }))
    }
}

/// Where a session with executor and auditor services sends each scored candle (the coordinator
/// puts it on the decision stream, ahead of the decision taken on it).
pub type CandleSender = Box<dyn Fn(protocol::messages::MarketCandle) + Send + Sync>;

/// Order books shared between the book stream's task and the replay.
pub type SharedBooks =
    std::sync::Arc<std::sync::Mutex<HashMap<String, (crate::market::book::Depth, i64)>>>;

/// Why a session could not run.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A schedule of the Strategy is not a valid cron expression.
    #[error("Strategy {strategy}: {error}")]
    Schedule {
        /// The Strategy's name.
        strategy: String,
        /// What is wrong, naming the field.
        error: crate::schedule::ScheduleError,
    },
    /// An assistant's role params are invalid.
    #[error("TradingAssistant {assistant}: {error}")]
    Params {
        /// The assistant's name.
        assistant: String,
        /// The param at fault.
        error: crate::roles::ParamError,
    },
    /// Nothing to trade or score.
    #[error("no candles to replay (check the symbols, the data files and the date range)")]
    NoCandles,
    /// The record could not be written.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Decisions by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct DecisionCounts {
    /// Every decision.
    pub total: u64,
    /// Decided by the policy's threshold being met.
    pub consensus: u64,
    /// Escalated to a human (answered, timed out or rejected).
    pub escalated: u64,
    /// Stopped by a veto role.
    pub vetoed: u64,
    /// Cycles dropped by `escalation.action: Reject` or a human's reject.
    pub rejected: u64,
    /// Decided HOLD.
    pub hold: u64,
    /// Decided BUY.
    pub buy: u64,
    /// Decided SELL.
    pub sell: u64,
}

/// Why a cycle ran; the last part of its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// The Strategy's analysis schedule fired at the candle's close.
    Schedule,
    /// The market monitor's detector alerted on the candle.
    Alert,
}

impl Trigger {
    /// `schedule` or `alert`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Alert => "alert",
        }
    }
}

/// What the executor did with a decision, for the log.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionRecord {
    /// The decision, with its debate.
    pub decision: Decision,
    /// Why the cycle ran.
    pub trigger: Trigger,
    /// What the desk did, in words (the fill, why nothing, or the refusal).
    pub execution: String,
    /// The order's fill, when it filled at once.
    pub fill: Option<Fill>,
}

/// Everything a session produced.
pub struct Outcome {
    /// Return, Sharpe, drawdown… of the equity curve.
    pub figures: Figures,
    /// Decisions by outcome and action.
    pub decisions: DecisionCounts,
    /// Candles scored (over every symbol).
    pub candles: u64,
    /// Cycles the team ran (scored candles only).
    pub cycles: u64,
    /// Open time of the first scored candle, ms.
    pub first_open_time: i64,
    /// Open time of the last scored candle, ms.
    pub last_open_time: i64,
    /// Equity after each scored step: (open time ms, equity in quote currency).
    pub curve: Vec<(i64, f64)>,
    /// The latest [`RECORDS_KEPT`] notable decisions (traded, escalated, vetoed or not HOLD), for the
    /// report's log; the store holds every decision.
    pub records: std::collections::VecDeque<DecisionRecord>,
    /// How many notable decisions there were in all.
    pub notable: u64,
    /// Round trips closed, with their PnL.
    pub trades: Vec<ClosedTrade>,
    /// Fees paid over the run, quote currency.
    pub fees_paid: Decimal,
    /// Vote weights at the end (learned, or as declared).
    pub weights: BTreeMap<String, f64>,
    /// How many times the learned weights were updated (`spec.schedule.learning`).
    pub learning_updates: u64,
    /// Mean share of equity held in positions over the scored candles.
    pub exposure: f64,
    /// Traded notional over the mean equity of the scored candles (2.0 = one full round trip).
    pub turnover: f64,
    /// The audit chain's head after the run (with a store).
    pub audit: Option<AuditHead>,
}

/// The typical absolute daily move of a crypto pair, scaling the learning rewards (√time for other
/// horizons); a constant rather than an estimate from the data, so a replay never looks ahead.
const TYPICAL_DAILY_MOVE: f64 = 0.035;

/// Who decides in a replay: the transport to the voters, where escalations go, and the voters.
pub struct ReplayTeam<'a, T, E> {
    /// How the voters are asked (in process, or over the bus).
    pub transport: &'a T,
    /// Who answers escalations.
    pub escalations: &'a E,
    /// The voters and their starting weights.
    pub voters: Vec<Voter>,
}

/// No human watches a backtest: escalations time out at once (the policy's default action applies).
pub struct EscalationsTimeOut;
impl EscalationResolver for EscalationsTimeOut {
    async fn resolve(&self, _: &Escalation) -> Resolution {
        Resolution::TimedOut
    }
}

impl Session {
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
            record_within: None,
            backlog: None,
            portfolio: None,
            services: None,
            opening_book: None,
            executor_book: None,
        }
    }

    /// The local team of [`Session::team`]: its voting analysts in process, and its voters.
    pub fn local_team(&self) -> Result<(LocalTeam, Vec<Voter>), SessionError> {
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
                SessionError::Params {
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
    ) -> Result<Outcome, SessionError> {
        let (team, voters) = self.local_team()?;
        let team = ReplayTeam {
            transport: &team,
            escalations: &EscalationsTimeOut,
            voters,
        };
        self.replay(None, team, store, |_| {}, progress).await
    }
}

/// Candles a position is held before the team's SELL closes it (two days of hourly candles; chosen
/// walk-forward on the BTCUSDT/ETHUSDT 2018–2020 hourly windows: 24 → 48 raised the team's median
/// Sharpe there from 1.48 to 1.73 and cut its trades by a fifth; docs/architecture.md, "How the
/// team decides").
pub const MIN_HOLD_CANDLES: i64 = 48;

/// Notable decisions kept in memory for the report (memory stays bounded on long runs).
pub const RECORDS_KEPT: usize = 300;

#[cfg(test)]
mod tests {
    use super::*;

    /// With services on a live feed, the coordinator's view of the book is the executor's, once
    /// the executor's book covers the last decision the coordinator made; an older book is not
    /// followed (it would drop that decision's fill from the view).
    #[tokio::test]
    async fn the_view_follows_the_executors_book_once_it_covers_the_last_decision() {
        use protocol::messages::{BookPosition, ExecutorBook};
        let candles: Vec<Candle> = (0..48)
            .map(|i| Candle {
                open_time: i * 3_600_000,
                open: 100.0,
                high: 101.0,
                low: 99.0,
                close: 100.0,
                volume: 1.0,
            })
            .collect();
        let series = Series {
            symbol: "BTCUSDT".into(),
            candles,
        };
        let book = |decision: &str| ExecutorBook {
            strategy: "btc-eth-paper".into(),
            at: 0,
            decision: Some(decision.into()),
            cash: Decimal::from(1_000),
            positions: vec![BookPosition {
                symbol: "BTCUSDT".into(),
                quantity: Decimal::from(2),
                entry_price: Decimal::from(90),
                opened_at: 0,
            }],
        };
        // the equity curve, and the decisions, of a services session told `told`
        let run = |told: Option<ExecutorBook>| {
            let (_tell, executor_book) = tokio::sync::watch::channel(told.clone());
            let session = Session {
                services: Some(Box::new(|_| {})),
                executor_book: told.map(|_| executor_book),
                ..Session::new(
                    crate::config::TeamConfig::builtin().unwrap(),
                    vec![series.clone()],
                    3_600_000,
                )
            };
            async move {
                let (team, voters) = session.local_team().unwrap();
                let team = ReplayTeam {
                    transport: &team,
                    escalations: &EscalationsTimeOut,
                    voters,
                };
                let mut ids = Vec::new();
                let outcome = session
                    .replay(None, team, None, |d| ids.push(d.id.clone()), |_, _| {})
                    .await
                    .unwrap();
                let curve: Vec<f64> = outcome.curve.iter().map(|(_, e)| *e).collect();
                (curve, ids)
            }
        };
        let (own, ids) = run(None).await;
        assert!(
            own.iter().all(|e| (e - 10_000.0).abs() < 10.0),
            "its own paper view: {own:?}"
        );
        // a book that covers the first decision: followed from the next candle on
        let (followed, _) = run(Some(book(ids[0].as_str()))).await;
        assert!(
            (followed[0] - own[0]).abs() < 1e-9,
            "not before the decision it covers"
        );
        assert!(
            (followed[1] - 1_200.0).abs() < 1.0,
            "1,000 in cash and 2 BTCUSDT at 100, not the Strategy's capital: {followed:?}"
        );
        // one that predates the run's decisions: never
        let (stale, _) = run(Some(book("an-older-decision"))).await;
        assert_eq!(stale, own);
    }

    #[tokio::test]
    async fn a_live_run_starts_from_the_book_it_last_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create_output_file(&dir.path().join("book.db"))
            .await
            .unwrap();
        assert_eq!(OpeningBook::load(&store, "s").await.unwrap(), None);
        let positions = [("BTCUSDT".into(), "0.25".into(), "40000".into())];
        store
            .save_portfolio("s", 1, "12000", "2000", &positions)
            .await
            .unwrap();
        let book = OpeningBook::load(&store, "s").await.unwrap().unwrap();
        let held = (
            "BTCUSDT".to_string(),
            Decimal::new(25, 2),
            Decimal::from(40_000),
        );
        assert_eq!(book.cash, Decimal::from(2000));
        assert_eq!(book.positions, [held]);

        let config = crate::config::TeamConfig::builtin().unwrap();
        let session = Session {
            opening_book: Some(book),
            ..Session::new(config, Vec::new(), 3_600_000)
        };
        let desk = session.desk("s");
        let ledger = desk.ledger();
        assert_eq!(ledger.cash(), Decimal::from(2000));
        let position = ledger.position("BTCUSDT").expect("the position resumed");
        assert_eq!(position.quantity, Decimal::new(25, 2));
        assert_eq!(
            ledger.equity(),
            Decimal::from(12_000),
            "marked at its entry"
        );
    }
}
