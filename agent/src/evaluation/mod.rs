//! `trading-agent evaluate`: the team as configured, walked forward out of sample.
//!
//! Each [`windows::Span`] of each symbol is one independent run: the team sees up to
//! [`HISTORY_MS`] of candles before the window as history (indicators warm up, the learned
//! weights learn from the shadow decisions they would have made; nothing is traded), then trades
//! the window with fresh capital and is scored on it alone. Nothing fitted ever sees a candle of the
//! window before it is decided: the learned weights keep learning inside the window only from
//! opinions whose horizon has passed, exactly as they would live. The same window is traded by
//! buy-and-hold, the SMA crossover and MACD (warmed up on the same history), and by each voter alone
//! (its signal, the same executor and risk rules).
//!
//! - [`windows`]: splitting a series into windows;
//! - [`stats`]: probabilistic and deflated Sharpe ratios;
//! - [`lookahead`]: the look-ahead and warm-up checks;
//! - [`report`]: the table, `evaluate.json` and `evaluate.html`.

pub mod lookahead;
pub mod report;
pub mod stats;
pub mod windows;

use crate::config::TeamConfig;
use crate::engine::figures::Figures;
use crate::engine::{Member, Series, Session, SessionError};
use protocol::crd::Weighting;
use protocol::Role;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// History kept before each window for warm-up and learning.
pub const HISTORY_MS: i64 = 365 * 86_400_000;
/// How long after the data's first candle the first window may start: the trend's longest horizon
/// (2,160 hourly candles) must have been seen.
pub const WARM_UP_MS: i64 = 90 * 86_400_000;

/// What one strategy did in one window, net of fees and slippage. Ratios are annualised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scores {
    /// Final over initial equity, minus one (0.12 = 12%).
    pub total_return: f64,
    /// Annualised Sharpe ratio of per-candle returns, zero risk-free rate.
    pub sharpe: f64,
    /// Annualised Sortino ratio (downside deviation only), zero risk-free rate.
    pub sortino: f64,
    /// Annualised return over max drawdown (0 without a drawdown).
    pub calmar: f64,
    /// Largest fall from a peak, as a fraction of the peak.
    pub max_drawdown: f64,
    /// Mean share of equity held in positions.
    pub exposure: f64,
    /// Traded notional over mean equity.
    pub turnover: f64,
    /// Fees paid, in the quote asset.
    pub fees: f64,
    /// Closed round trips.
    pub trades: u64,
}

impl Scores {
    fn new(f: &Figures, exposure: f64, turnover: f64, fees: f64) -> Self {
        Self {
            total_return: f.total_return,
            sharpe: f.sharpe,
            sortino: f.sortino,
            calmar: if f.max_drawdown > 0.0 {
                f.annualized_return / f.max_drawdown
            } else {
                0.0
            },
            max_drawdown: f.max_drawdown,
            exposure,
            turnover,
            fees,
            trades: f.trades,
        }
    }
}

/// One window's results.
#[derive(Debug, Clone, Serialize)]
pub struct WindowResult {
    /// The symbol traded in this window.
    pub symbol: String,
    /// First scored candle's day (UTC, YYYY-MM-DD).
    pub from: String,
    /// Last scored candle's day (UTC, YYYY-MM-DD).
    pub to: String,
    /// Candles scored in the window.
    pub candles: u64,
    /// The whole team's scores.
    pub team: Scores,
    /// Each baseline's scores, by name (`buy_and_hold`, `sma_crossover`, `macd`).
    pub baselines: BTreeMap<&'static str, Scores>,
    /// Each voter's scores trading its signal alone, by role name.
    pub voters: BTreeMap<String, Scores>,
    /// The team's per-candle returns, for the summary's PSR and DSR (not written out).
    #[serde(skip)]
    pub team_returns: Vec<f64>,
    /// The team's latest notable decisions of the window (at most [`DECISIONS_SHOWN`], newest
    /// first), with their debates, for `evaluate.html` (not written to `evaluate.json`).
    #[serde(skip)]
    pub decisions: Vec<crate::engine::DecisionRecord>,
}

/// Notable decisions of each window that `evaluate.html` shows.
pub const DECISIONS_SHOWN: usize = 50;

/// What to evaluate.
pub struct Evaluation {
    /// Dated headlines for the fundamental analyst, if any.
    pub news: Option<std::sync::Arc<crate::roles::fundamental::DatedHeadlines>>,
    /// The Strategy and policy; each window runs them on its one symbol.
    pub config: TeamConfig,
    /// The assistants; each voter among them is also run alone.
    pub team: Vec<Member>,
    /// One series per symbol, every file of it joined in time order.
    pub series: Vec<Series>,
    /// Candle length in ms.
    pub interval_ms: i64,
    /// How long each window is (`--window`).
    pub length: windows::WindowLength,
    /// Start of the scored range, ms since the epoch (inclusive, `--from`); None: no limit.
    pub from: Option<i64>,
    /// End of the scored range, ms since the epoch (exclusive, `--to`); None: the data's end.
    pub to: Option<i64>,
}

/// One window to run.
#[derive(Debug, Clone)]
pub struct Job {
    /// Index of the symbol's series in [`Evaluation::series`].
    pub series: usize,
    /// The scored range; the history before it comes along.
    pub span: windows::Span,
}

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("{symbol} window {from}: {error}")]
    /// One window's run failed.
    Window {
        /// The window's symbol.
        symbol: String,
        /// The window's start, `YYYY-MM-DD HH:MM` UTC.
        from: String,
        /// Why its session failed.
        error: Box<SessionError>,
    },
    #[error("no window to score: the data (after --from/--to and {warm_up} days of warm-up) is shorter than {min} days", warm_up = WARM_UP_MS / 86_400_000, min = windows::MIN_WINDOW_DAYS)]
    /// The data leaves no window of at least [`windows::MIN_WINDOW_DAYS`] days after the warm-up.
    NoWindows,
    /// A worker thread could not start its Tokio runtime, or a window never ran.
    #[error("{0}")]
    Runtime(String),
}

impl Evaluation {
    /// Every window of every series, in order.
    pub fn jobs(&self) -> Vec<Job> {
        let mut jobs = Vec::new();
        for (s, series) in self.series.iter().enumerate() {
            let (Some(first), Some(last)) = (series.candles.first(), series.candles.last()) else {
                continue;
            };
            let first = first.open_time.max(self.from.unwrap_or(i64::MIN));
            let last = last.open_time.min(self.to.map_or(i64::MAX, |t| t - 1));
            let scorable = series.candles[0].open_time + WARM_UP_MS;
            for span in windows::split(first, last, scorable, self.length) {
                jobs.push(Job { series: s, span });
            }
        }
        jobs
    }

    /// Runs every job on `threads` threads; `done()` is called after each.
    pub fn run(
        &self,
        jobs: &[Job],
        threads: usize,
        done: impl Fn() + Sync,
    ) -> Result<Vec<WindowResult>, EvaluateError> {
        if jobs.is_empty() {
            return Err(EvaluateError::NoWindows);
        }
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<WindowResult, EvaluateError>>>> =
            Mutex::new(jobs.iter().map(|_| None).collect());
        std::thread::scope(|scope| {
            for _ in 0..threads.clamp(1, jobs.len()) {
                scope.spawn(|| {
                    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
                        Ok(runtime) => runtime,
                        Err(e) => {
                            results.lock().expect("results lock")[0] =
                                Some(Err(EvaluateError::Runtime(e.to_string())));
                            return;
                        }
                    };
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        let result = runtime.block_on(self.window(job));
                        results.lock().expect("results lock")[i] = Some(result);
                        done();
                    }
                });
            }
        });
        results
            .into_inner()
            .expect("results lock")
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| Err(EvaluateError::Runtime("a window did not run".into())))
            })
            .collect()
    }

    /// The history and window candles of `job`'s series.
    fn window_series(&self, job: &Job) -> Series {
        let series = &self.series[job.series];
        let from = job.span.from - HISTORY_MS;
        let candles = series
            .candles
            .iter()
            .filter(|c| c.open_time >= from && c.open_time < job.span.to)
            .copied()
            .collect();
        Series {
            symbol: series.symbol.clone(),
            candles,
        }
    }

    fn backtest(
        &self,
        config: TeamConfig,
        team: Vec<Member>,
        series: Series,
        from: i64,
    ) -> Session {
        Session {
            team,
            trade_from: Some(from),
            news: self.news.clone(),
            ..Session::new(config, vec![series], self.interval_ms)
        }
    }

    /// Runs the team, the baselines and each voter alone over one window.
    async fn window(&self, job: &Job) -> Result<WindowResult, EvaluateError> {
        let series = self.window_series(job);
        let symbol = series.symbol.clone();
        let at_fault = |error| EvaluateError::Window {
            symbol: symbol.clone(),
            from: crate::backtest::report::utc(job.span.from),
            error: Box::new(error),
        };
        let mut config = self.config.clone();
        config.strategy.spec.symbols = vec![symbol.clone()];
        let team_run = self.backtest(
            config.clone(),
            self.team.clone(),
            series.clone(),
            job.span.from,
        );
        let outcome = team_run.run(None, |_, _| {}).await.map_err(at_fault)?;
        let fees = |d: rust_decimal::Decimal| d.to_f64().unwrap_or(0.0);
        let team = Scores::new(
            &outcome.figures,
            outcome.exposure,
            outcome.turnover,
            fees(outcome.fees_paid),
        );
        let baselines = crate::backtest::baseline_runs(&team_run)
            .iter()
            .map(|(name, run)| {
                (
                    *name,
                    Scores::new(&run.figures, run.exposure, run.turnover, run.fees),
                )
            })
            .collect();
        let mut voters = BTreeMap::new();
        for member in self
            .team
            .iter()
            .filter(|m| config.policy.spec.voters.contains(&m.role))
        {
            let alone = self.backtest(
                voter_alone(&config, member.role),
                vec![member.clone()],
                series.clone(),
                job.span.from,
            );
            let o = alone.run(None, |_, _| {}).await.map_err(at_fault)?;
            voters.insert(
                member.role.as_str().to_string(),
                Scores::new(&o.figures, o.exposure, o.turnover, fees(o.fees_paid)),
            );
        }
        let team_returns = outcome
            .curve
            .windows(2)
            .filter(|w| w[0].1 > 0.0)
            .map(|w| w[1].1 / w[0].1 - 1.0)
            .collect();
        Ok(WindowResult {
            symbol,
            from: day(outcome.first_open_time),
            to: day(outcome.last_open_time),
            candles: outcome.candles,
            team,
            baselines,
            voters,
            team_returns,
            decisions: outcome
                .records
                .iter()
                .rev()
                .take(DECISIONS_SHOWN)
                .cloned()
                .collect(),
        })
    }
}

/// The configuration that trades one role's signal alone: it is the only voter, one round, static
/// weight, a veto only if it is the risk manager; the Strategy (executor, risk limits) unchanged.
fn voter_alone(config: &TeamConfig, role: Role) -> TeamConfig {
    let mut alone = config.clone();
    let policy = &mut alone.policy.spec;
    policy.voters = vec![role];
    policy.veto_roles.retain(|r| *r == role);
    policy.max_rounds = 1;
    policy.weighting = Weighting::Static;
    alone
}

fn day(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d").to_string())
}
