//! The embedded default (docs/architecture.md, "The embedded default"): the whole team in one
//! process on the [engine](crate::engine) over replayed candles, with the paper exchange, measured
//! against the baselines.
//!
//! - [`baselines`]: buy-and-hold, SMA crossover and MACD through the same exchange;
//! - [`report`]: `report.json`, `report.html` and the terminal table.
//!
//! Escalations find no human in a backtest: they time out at once and the policy's default applies.

pub mod baselines;
pub mod report;

use crate::engine::figures::Figures;
use crate::engine::{timeline, Outcome, Session, SessionError};
use crate::exchange::paper::decimal;
use crate::store::Store;
use baselines::BaselineRun;
use std::collections::BTreeMap;

/// A backtest: the team's outcome and the baselines' runs over the same scored candles.
pub struct Backtested {
    /// What the team did: its figures, curve, decisions and orders.
    pub outcome: Outcome,
    /// The baselines' runs in full (curves, exposure, turnover, fees), by name.
    pub baseline_runs: BTreeMap<&'static str, BaselineRun>,
}

impl Backtested {
    /// The baselines' figures, by name.
    pub fn baselines(&self) -> BTreeMap<&'static str, Figures> {
        self.baseline_runs
            .iter()
            .map(|(name, run)| (*name, run.figures))
            .collect()
    }

    /// Buy-and-hold's equity curve.
    pub fn buy_and_hold_curve(&self) -> &[(i64, f64)] {
        &self.baseline_runs["buy_and_hold"].curve
    }
}

/// Runs `session` with the whole team in process, then the baselines over the same candles;
/// `progress(done, total)` is called every few thousand candles. Every decision, opinion, order
/// and audit entry goes to `store` when given.
pub async fn run(
    session: &Session,
    store: Option<&Store>,
    progress: impl FnMut(u64, u64),
) -> Result<Backtested, SessionError> {
    let outcome = session.run(store, progress).await?;
    Ok(Backtested {
        outcome,
        baseline_runs: baseline_runs(session),
    })
}

/// The baselines over the candles `session` scores.
pub fn baseline_runs(session: &Session) -> BTreeMap<&'static str, BaselineRun> {
    let timeline = timeline(&session.series);
    let market = baselines::Market {
        series: &session.series,
        timeline: &timeline,
        first_scored: session.first_scored(&timeline),
        interval_ms: session.interval_ms,
        capital: decimal(session.team_config.strategy.spec.capital),
        fees: session.fees(),
    };
    baselines::run_all(&market)
}
