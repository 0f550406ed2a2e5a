//! The candle loop (docs/architecture.md, "The engine"): a [`Session`] walked over its [`Feed`].
//! Each step warms the indicators and alert detectors; history candles teach the learned weights
//! in the shadow; scored candles go to the [`Desk`] (resting orders, stops), then, when the
//! analysis schedule fires or the market monitor alerts, the team deliberates, the desk executes
//! and the [`Record`] keeps it. An open escalation holds only its own symbol: its answer is awaited
//! beside the feed and taken up at that symbol's next candle.

use super::desk::{At, Desk};
use super::feed::{Feed, Step};
use super::figures::{figures, Holding};
use super::record::{Record, FLUSH_EVERY};
use super::venue::{AnyVenue, Paper};
use super::{
    timeline, EscalationsTimeOut, Outcome, ReplayTeam, Session, SessionError, Trigger,
    TYPICAL_DAILY_MOVE,
};
use crate::consensus::coordinator::{cycle_id, Deliberation, PendingDecision};
use crate::consensus::{Coordinator, EscalationResolver, Resolution, Transport, Voter};
use crate::exchange::FeeModel;
use crate::executor::Market;
use crate::indicators::{IndicatorSet, IndicatorValues};
use crate::learning::WeightLearner;
use crate::market::Candle;
use crate::roles::monitor::AlertDetector;
use crate::schedule::Schedule;
use crate::standing::Standing;
use crate::store::Store;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use protocol::crd::Weighting;
use protocol::messages::{Decision, MarketCandle, MarketSnapshot, PortfolioContext};
use protocol::Role;
use rust_decimal::prelude::ToPrimitive;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

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
        (escalation.symbol.into(), answer)
    })
}

/// Why a step's candle is considered.
#[derive(Debug, Clone, Copy)]
struct Cue {
    /// The analysis schedule fires at the candle's close.
    scheduled: bool,
    /// The market monitor's detector raised an alert on the candle.
    alert: bool,
    close_time: i64,
    live: bool,
}

impl Cue {
    fn due(self) -> bool {
        self.scheduled || self.alert
    }

    fn trigger(self) -> Trigger {
        if self.scheduled {
            Trigger::Schedule
        } else {
            Trigger::Alert
        }
    }
}

/// What became of a step or a cycle.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    /// Go on.
    Next,
    /// Asked to stop: the loop ends at this safe point.
    Stop,
}

/// The outcome of asking the team.
enum Asked {
    Decided(Decision),
    /// Escalated to a human: the symbol waits for the answer.
    Held,
    Stopped,
}

/// One session in progress: everything the loop changes.
struct Run<'a, T, E> {
    session: &'a Session,
    name: String,
    transport: &'a T,
    escalations: &'a E,
    voters: Vec<Voter>,
    analysis: Schedule,
    learning: Schedule,
    learner: Option<WeightLearner>,
    learning_updates: u64,
    coordinator: Coordinator,
    desk: Desk<'a>,
    record: Record<'a>,
    indicators: Vec<IndicatorSet>,
    detectors: Vec<AlertDetector>,
    standing: Standing,
    holding: Holding,
    curve: Vec<(i64, f64)>,
    cycles: u64,
    done: u64,
    scored_candles: u64,
    first_t: Option<i64>,
    last_t: i64,
    trading: bool,
    waiting: HashMap<String, Box<PendingDecision>>,
    answers: FuturesUnordered<OpenAnswer<'a>>,
    answered: HashMap<String, Resolution>,
    executor_book: Option<super::ExecutorBookFeed>,
    /// The last decision this run made (what an executor's book must cover to be followed).
    last_decided: Option<protocol::ids::DecisionId>,
}

impl Session {
    /// The fee model of the Strategy's exchange (the sample's 0.1% and 5 bps without one).
    pub fn fees(&self) -> FeeModel {
        let (fee_rate, slippage_bps) = self.fee_rate_and_slippage();
        FeeModel::new(fee_rate, slippage_bps)
    }

    /// The Strategy's fee rate and slippage (bps); `ExchangeSpec`'s defaults without an exchange.
    pub fn fee_rate_and_slippage(&self) -> (f64, f64) {
        let exchange = self.team_config.strategy.spec.exchange.clone();
        let e = exchange.unwrap_or_default();
        (e.fee_rate, e.slippage_bps)
    }

    /// The index in `timeline` of the first candle traded and scored.
    pub fn first_scored(&self, timeline: &[i64]) -> usize {
        self.trade_from
            .map_or(0, |from| timeline.partition_point(|t| *t < from))
    }

    /// Replays the candles through any transport (the local team, or assistants over the bus),
    /// then goes on with `live` candles when given: `voters` are asked each cycle (their weights
    /// learned on the way when the policy says so), and `on_decision` sees every decision as it is
    /// made. Every decision, opinion, order and audit entry goes to `store` when given.
    pub async fn replay<T: Transport, E: EscalationResolver>(
        &self,
        live: Option<tokio::sync::mpsc::Receiver<crate::market::stream::SymbolCandle>>,
        team: ReplayTeam<'_, T, E>,
        store: Option<&Store>,
        on_decision: impl FnMut(&Decision),
        progress: impl FnMut(u64, u64),
    ) -> Result<Outcome, SessionError> {
        self.replay_anchored(live, team, store, None, on_decision, progress)
            .await
    }

    /// As [`replay`](Self::replay), telling `anchor` the audit chain's head each time a batch of
    /// audit rows is stored in `store` (the coordinator publishes it outside the database). The
    /// anchor's sender is dropped when the run is over.
    pub async fn replay_anchored<T: Transport, E: EscalationResolver>(
        &self,
        live: Option<tokio::sync::mpsc::Receiver<crate::market::stream::SymbolCandle>>,
        team: ReplayTeam<'_, T, E>,
        store: Option<&Store>,
        anchor: Option<super::AnchorSender>,
        mut on_decision: impl FnMut(&Decision),
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Outcome, SessionError> {
        let timeline = timeline(&self.series);
        // a live feed may bring every scored candle: the loaded ones are then its warm-up
        if timeline.len() <= self.first_scored(&timeline) && live.is_none() {
            return Err(SessionError::NoCandles);
        }
        let total = self.series.iter().map(|s| s.candles.len() as u64).sum();
        let flush_every = if live.is_some() { 1 } else { FLUSH_EVERY };
        let mut feed = Feed::new(&self.series, &timeline, live);
        let mut run = Run::new(self, team, store, flush_every, anchor).await?;
        run.first_t = timeline.get(self.first_scored(&timeline)).copied();
        run.last_t = run.first_t.or(self.trade_from).unwrap_or_default();
        // asked to stop (SIGTERM), the loop ends at its next safe point and writes down what it has
        let _busy = crate::shutdown::busy();
        loop {
            // checked before waiting for the next candle: on a live feed that wait is up to a
            // whole interval, and the run is over as soon as its last cycle is
            if run.cycle_limit_reached() || crate::shutdown::requested() {
                break;
            }
            if let Some(backlog) = &self.backlog {
                backlog.wait_below_bound().await;
            }
            // a replay stands still while every symbol waits for a human (time passes only live)
            let all_held = !feed.is_live() && run.answers.len() >= self.series.len();
            let next = tokio::select! {
                step = feed.next(), if !all_held => step,
                () = crate::shutdown::stop_requested() => None,
                Some((symbol, answer)) = run.answers.next(), if !run.answers.is_empty() => {
                    run.answered.insert(symbol, answer);
                    continue;
                }
            };
            let Some(step) = next else { break };
            let scored = self.trade_from.is_none_or(|from| step.t >= from);
            if run.step(step, &mut on_decision).await? == Flow::Stop {
                break;
            }
            if scored && run.done % 4096 < self.series.len() as u64 {
                progress(run.done, total);
            }
        }
        progress(run.done, total);
        run.finish().await
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
}

impl<'a, T: Transport, E: EscalationResolver> Run<'a, T, E> {
    /// A run of `session` by `team`, recording into `store`.
    async fn new(
        session: &'a Session,
        team: ReplayTeam<'a, T, E>,
        store: Option<&'a Store>,
        flush_every: usize,
        anchor: Option<super::AnchorSender>,
    ) -> Result<Self, SessionError> {
        let ReplayTeam {
            transport,
            escalations,
            voters,
        } = team;
        let strategy = &session.team_config.strategy;
        let name = strategy.metadata.name.clone().unwrap_or_default();
        let spec = &strategy.spec;
        let schedule = |field: &'static str, cron: &str| {
            Schedule::parse(field, cron).map_err(|error| SessionError::Schedule {
                strategy: name.clone(),
                error,
            })
        };
        let analysis = schedule("spec.schedule.analysis", &spec.schedule.analysis)?;
        let learning = schedule("spec.schedule.learning", &spec.schedule.learning)?;
        let record = Record::new(
            store,
            &name,
            &session.audit_key,
            session.notifier.clone(),
            flush_every,
        )
        .await?
        .flushed_within(session.record_within)
        .portfolio_to(session.portfolio.clone())
        .delegated(session.services.is_some())
        .anchored(anchor);
        for v in &voters {
            record.weight(&v.assistant, v.weight);
        }
        Ok(Self {
            learner: session.learner(&voters),
            coordinator: Coordinator::new(name.clone(), session.team_config.policy.spec.clone()),
            desk: session.desk(&name),
            detectors: session.detectors()?,
            indicators: session.series.iter().map(|_| IndicatorSet::new()).collect(),
            curve: Vec::new(),
            first_t: None,
            last_t: session.trade_from.unwrap_or_default(),
            session,
            name,
            transport,
            escalations,
            voters,
            analysis,
            learning,
            learning_updates: 0,
            record,
            standing: Standing::new(),
            holding: Holding::default(),
            cycles: 0,
            done: 0,
            scored_candles: 0,
            trading: false,
            waiting: HashMap::new(),
            answers: FuturesUnordered::new(),
            answered: HashMap::new(),
            executor_book: session.executor_book.clone(),
            last_decided: None,
        })
    }

    fn cycle_limit_reached(&self) -> bool {
        self.session
            .max_cycles
            .is_some_and(|max| self.cycles >= max)
    }

    /// One time step: the schedules, learning and retraining due at its close, then each of its
    /// candles; a scored step ends with the equity curve's point.
    async fn step(
        &mut self,
        step: Step,
        on_decision: &mut impl FnMut(&Decision),
    ) -> Result<Flow, SessionError> {
        let Step { t, candles, live } = step;
        let scoring = self.session.trade_from.is_none_or(|from| t >= from);
        if scoring {
            self.first_t.get_or_insert(t);
            self.last_t = t;
            self.standing.record(t, self.equity());
        }
        let close_time = t + self.session.interval_ms;
        let scheduled = self.analysis.fires_within(t, close_time);
        // asked once per step: the schedule moves on when it fires
        let learning_due = self.learning.fires_within(t, close_time);
        if learning_due {
            self.learn();
        }
        // the forecaster trains on the history once, as trading starts, then on the schedule
        let first_traded = scoring && !self.trading;
        self.trading |= scoring;
        if let Some(retrainer) = &self.session.retrainer {
            if first_traded || (learning_due && scoring) {
                let store = self.record.store();
                self.session.retrain(retrainer, t, &self.name, store).await;
            }
        }
        let step_len = candles.len() as u64;
        for (s, candle) in candles {
            self.done += 1;
            let values = self.indicators[s].update(&candle);
            let alert = self.detectors[s].update(&candle).is_some();
            let cue = Cue {
                scheduled,
                alert,
                close_time,
                live,
            };
            if !scoring {
                self.history_candle(s, &candle, values, cue).await;
            } else if self
                .scored_candle(s, &candle, values, cue, on_decision)
                .await?
                == Flow::Stop
            {
                return Ok(Flow::Stop);
            }
        }
        if scoring {
            self.close_step(t, step_len);
        }
        Ok(Flow::Next)
    }

    fn equity(&self) -> f64 {
        self.desk.ledger().equity().to_f64().unwrap_or(0.0)
    }

    /// The learned weights' update on the learning schedule.
    fn learn(&mut self) {
        let Some(learner) = self.learner.as_mut() else {
            return;
        };
        for (assistant, _, weight) in learner.update() {
            self.record.weight(&assistant, weight);
            if let Some(v) = self.voters.iter_mut().find(|v| v.assistant == assistant) {
                v.weight = weight;
            }
        }
        self.learning_updates += 1;
    }

    /// A history candle: with learned weights, the team decides on it in the shadow (flat,
    /// nobody asked about escalations) and the learner scores the opinions later.
    async fn history_candle(
        &mut self,
        s: usize,
        candle: &Candle,
        values: IndicatorValues,
        cue: Cue,
    ) {
        let Some(learner) = self.learner.as_mut() else {
            return;
        };
        let symbol = &self.session.series[s].symbol;
        let t = candle.open_time;
        learner.settle(symbol, t, candle.close);
        if !(self.session.shadow_cycles && cue.due()) {
            return;
        }
        let decision = self
            .coordinator
            .run_cycle(
                cycle_id(&self.name, symbol, t, "history").to_string(),
                history_snapshot(symbol, candle, values),
                self.voters.clone(),
                self.transport,
                // nobody is asked about the past
                &EscalationsTimeOut,
                || cue.close_time,
            )
            .await;
        learner.observe(t, symbol, candle.close, &decision.transcript);
    }

    /// A scored candle: the desk's resting orders and stops, then the team's cycle when one is due
    /// (or the answer to its symbol's escalation), executed and recorded.
    async fn scored_candle(
        &mut self,
        s: usize,
        candle: &Candle,
        values: IndicatorValues,
        cue: Cue,
        on_decision: &mut impl FnMut(&Decision),
    ) -> Result<Flow, SessionError> {
        let session = self.session;
        let symbol = &session.series[s].symbol;
        let t = candle.open_time;
        let at = At {
            t,
            close_time: cue.close_time,
            close: candle.close,
            live: cue.live,
        };
        if let Some(out) = &session.services {
            out(market_candle(&self.name, symbol, candle, at, &values));
        }
        self.follow_executor();
        self.desk
            .on_candle(symbol, candle, at, &mut self.record)
            .await;
        if let Some(learner) = self.learner.as_mut() {
            learner.settle(symbol, t, candle.close);
        }
        // an answered escalation is decided on this candle; an open one holds its symbol
        let mut concluded = None;
        if self.waiting.contains_key(symbol) {
            let Some(answer) = self.answered.remove(symbol) else {
                if cue.due() {
                    self.record.held(symbol);
                }
                return Ok(Flow::Next);
            };
            let pending = self.waiting.remove(symbol).expect("waiting");
            concluded = Some(pending.conclude(answer, cue.close_time));
        }
        if concluded.is_none() && (!cue.due() || self.cycle_limit_reached()) {
            return Ok(Flow::Next);
        }
        let context = self.desk.context(symbol, candle.close, &self.standing);
        let decision = match concluded {
            Some(decision) => decision,
            None => {
                let snapshot = snapshot(symbol, candle, values, context);
                match self.ask(symbol, t, snapshot, cue).await? {
                    Asked::Decided(decision) => decision,
                    Asked::Held => return Ok(Flow::Next),
                    Asked::Stopped => return Ok(Flow::Stop),
                }
            }
        };
        let market = Market {
            volatility: values.indicators.volatility,
        };
        self.act(decision, &context, market, candle, cue, on_decision)
            .await?;
        Ok(Flow::Next)
    }

    /// With services on a live feed, the view of the book takes the executor's newest book, once
    /// it covers the last decision this run made: an older one would drop that decision's fill
    /// from the view (until then the view keeps its own simulation of it).
    fn follow_executor(&mut self) {
        let Some(feed) = self.executor_book.as_mut() else {
            return;
        };
        let newest = feed.borrow();
        let Some(book) = newest.as_ref() else {
            return;
        };
        if self.last_decided.is_none() || book.decision != self.last_decided {
            return;
        }
        tracing::debug!(at = book.at, cash = %book.cash, positions = book.positions.len(), "the view follows the executor's book");
        self.desk.follow(book);
    }

    /// Runs the team's cycle for `symbol`; an escalation nobody answers at once holds the symbol.
    async fn ask(
        &mut self,
        symbol: &str,
        t: i64,
        snapshot: MarketSnapshot,
        cue: Cue,
    ) -> Result<Asked, SessionError> {
        self.cycles += 1;
        // a stop drops the cycle in flight: it decided nothing, and a restarted replay decides it
        // again under the same id
        let stamp = || cue.close_time;
        let deliberation = tokio::select! {
            deliberation = self.coordinator.deliberate(
                cycle_id(&self.name, symbol, t, cue.trigger().as_str()).to_string(),
                snapshot,
                self.voters.clone(),
                self.transport,
                &stamp,
            ) => deliberation,
            () = crate::shutdown::stop_requested() => return Ok(Asked::Stopped),
        };
        let pending = match deliberation {
            Deliberation::Decided(decision) => return Ok(Asked::Decided(decision)),
            Deliberation::Escalated(pending) => pending,
        };
        let mut answer = open_answer(self.escalations, &pending);
        // nobody to ask (a backtest): decided at once
        if let Some((_, answer)) = (&mut answer).now_or_never() {
            return Ok(Asked::Decided(pending.conclude(answer, cue.close_time)));
        }
        self.answers.push(answer);
        self.waiting.insert(symbol.to_string(), pending);
        // a human may take minutes: what was decided before the question is written now, not at
        // the next full batch
        self.record
            .flush(t, &self.voters, self.desk.ledger())
            .await?;
        Ok(Asked::Held)
    }

    /// Executes `decision` and records it (a full batch is written).
    async fn act(
        &mut self,
        decision: Decision,
        context: &PortfolioContext,
        market: Market,
        candle: &Candle,
        cue: Cue,
        on_decision: &mut impl FnMut(&Decision),
    ) -> Result<(), SessionError> {
        let t = candle.open_time;
        if let Some(learner) = self.learner.as_mut() {
            learner.observe(t, &decision.symbol, candle.close, &decision.transcript);
        }
        let at = At {
            t,
            close_time: cue.close_time,
            close: candle.close,
            live: cue.live,
        };
        let (execution, fill) = self
            .desk
            .execute(&decision, context, market, at, &mut self.record)
            .await;
        on_decision(&decision);
        if self.executor_book.is_some() {
            self.last_decided = Some(decision.id.clone());
        }
        self.record
            .decided(decision, cue.trigger(), execution, fill);
        if self.record.flush_due() {
            self.record
                .flush(t, &self.voters, self.desk.ledger())
                .await?;
        }
        Ok(())
    }

    /// The end of a scored step: its point on the equity curve, exposure and metrics.
    fn close_step(&mut self, t: i64, candles: u64) {
        self.scored_candles += candles;
        let equity = self.equity();
        self.holding.sample(equity, self.desk.ledger().exposure());
        let spec = &self.session.team_config.strategy.spec;
        let open_positions = self.desk.ledger().positions().count() as u32;
        self.record.portfolio(
            t,
            (equity, open_positions),
            spec.capital,
            self.standing.drawdown(equity),
            spec.risk.max_drawdown,
        );
        self.curve.push((t, equity));
    }

    /// Writes what is left and sums the run up.
    async fn finish(self) -> Result<Outcome, SessionError> {
        if !self.waiting.is_empty() {
            tracing::warn!(
                open = self.waiting.len(),
                "the run ended with escalations unanswered: those cycles were not decided"
            );
        }
        let ledger = self.desk.ledger();
        let closed = self
            .record
            .finish(self.last_t, &self.voters, ledger)
            .await?;
        let pnls: Vec<f64> = ledger
            .trades()
            .iter()
            .map(|t| t.pnl.to_f64().unwrap_or(0.0))
            .collect();
        Ok(Outcome {
            figures: figures(&self.curve, self.session.interval_ms, &pnls),
            decisions: closed.counts,
            candles: self.scored_candles,
            cycles: self.cycles,
            first_open_time: self.first_t.unwrap_or(self.last_t),
            last_open_time: self.last_t,
            records: closed.notable,
            notable: closed.notable_total,
            trades: ledger.trades().to_vec(),
            fees_paid: ledger.fees_paid(),
            weights: self
                .voters
                .iter()
                .map(|v| (v.assistant.clone(), v.weight))
                .collect(),
            learning_updates: self.learning_updates,
            exposure: self.holding.exposure(),
            turnover: self
                .holding
                .turnover(ledger.traded_notional().to_f64().unwrap_or(0.0)),
            audit: closed.audit,
            curve: self.curve,
        })
    }
}

impl Session {
    /// The learner of the voters' weights, when the policy says `weighting: learned`: opinions
    /// scored 12 candles later, net of a round trip's cost.
    fn learner(&self, voters: &[Voter]) -> Option<WeightLearner> {
        if self.team_config.policy.spec.weighting != Weighting::Learned {
            return None;
        }
        let horizon_ms = 12 * self.interval_ms;
        let (fee_rate, slippage_bps) = self.fee_rate_and_slippage();
        let round_trip_cost = 2.0 * (fee_rate + slippage_bps / 10_000.0);
        let weights = voters
            .iter()
            .map(|v| (v.assistant.clone(), v.weight))
            .collect();
        let scale = TYPICAL_DAILY_MOVE * (horizon_ms as f64 / 86_400_000.0).sqrt();
        Some(WeightLearner::new(weights, horizon_ms, scale).with_cost(round_trip_cost))
    }

    /// The desk: the Strategy's executor and limits, on Binance when live, else on paper.
    pub(crate) fn desk(&self, name: &str) -> Desk<'_> {
        // with an executor service the coordinator's desk is the team's paper view of the book
        let venue = match &self.live {
            Some(live) if self.services.is_none() => AnyVenue::Live(live),
            _ => AnyVenue::Paper(Paper),
        };
        let spec = &self.team_config.strategy.spec;
        let mut desk = Desk::of_strategy(spec, name, venue, self.books.as_ref(), self.interval_ms);
        if let Some(book) = &self.opening_book {
            desk.restore(book);
        }
        desk
    }

    /// One market-monitor alert detector per series, with the monitor's params.
    fn detectors(&self) -> Result<Vec<AlertDetector>, SessionError> {
        let params = self
            .team
            .iter()
            .find(|m| m.role == Role::MarketMonitor)
            .map(|m| m.params.clone())
            .unwrap_or_default();
        self.series
            .iter()
            .map(|_| {
                AlertDetector::from_params(&params).map_err(|error| SessionError::Params {
                    assistant: "market-monitor".into(),
                    error,
                })
            })
            .collect()
    }
}

/// The snapshot the team decides on.
fn snapshot(
    symbol: &str,
    candle: &Candle,
    values: IndicatorValues,
    portfolio: PortfolioContext,
) -> MarketSnapshot {
    MarketSnapshot {
        symbol: symbol.into(),
        open_time: candle.open_time,
        open: candle.open,
        high: candle.high,
        low: candle.low,
        close: candle.close,
        volume: candle.volume,
        indicators: values.indicators,
        portfolio,
    }
}

/// The snapshot of a history candle: the team decides on it flat, with nothing at stake.
/// A scored candle as the executor service receives it.
fn market_candle(
    strategy: &str,
    symbol: &str,
    candle: &Candle,
    at: At,
    values: &IndicatorValues,
) -> MarketCandle {
    MarketCandle {
        strategy: strategy.into(),
        symbol: symbol.into(),
        open_time: candle.open_time,
        close_time: at.close_time,
        open: candle.open,
        high: candle.high,
        low: candle.low,
        close: candle.close,
        volume: candle.volume,
        live: at.live,
        volatility: values.indicators.volatility,
    }
}

fn history_snapshot(symbol: &str, candle: &Candle, values: IndicatorValues) -> MarketSnapshot {
    let flat = PortfolioContext {
        equity: 1.0,
        ..PortfolioContext::default()
    };
    snapshot(symbol, candle, values, flat)
}
