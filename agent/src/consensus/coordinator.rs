//! Drives consensus cycles: asks the voters round by round through a [`Transport`], applies the
//! policy's escalation when the team cannot agree, and returns the [`Decision`] with every round's
//! votes and the debate transcript.

use super::cycle::{Acceptance, Cycle, Outcome, Step, Voter};
use protocol::crd::{ConsensusPolicySpec, EscalationAction};
use protocol::ids::DecisionId;
use protocol::messages::{Decision, Escalation, MarketSnapshot, Opinion, RoundRequest};
use protocol::Action;
use std::future::Future;

/// How the coordinator reaches the voters: in-process for the local team, the bus in a cluster.
pub trait Transport {
    /// Asks every voter for its opinion on `request`; returns the answers that arrived before the
    /// request's deadline (in any order; duplicates and strays are filtered by the cycle).
    fn ask(&self, voters: &[Voter], request: &RoundRequest) -> impl Future<Output = Vec<Opinion>>;
}

/// A human's (or a policy's) answer to an escalation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// A human approved: the proposed action is taken. `by` is who answered, as the answer says
    /// (recorded in the decision's `resolvedBy`).
    Approved {
        /// Who answered.
        by: String,
    },
    /// A human rejected: the cycle is dropped (HOLD with `rejected`, and no order at all).
    Rejected {
        /// Who answered.
        by: String,
    },
    /// Nobody answered within the policy's timeout: the policy's default action applies.
    TimedOut,
}

/// Where escalations go: the bus (and, through the operator, `kubectl annotate`) in a cluster; in a
/// backtest, nobody, so they time out at once.
pub trait EscalationResolver {
    /// Raises `escalation` and waits for its answer; [`Resolution::TimedOut`] when none comes
    /// within its `timeout_seconds` (or it cannot be raised at all).
    fn resolve(&self, escalation: &Escalation) -> impl Future<Output = Resolution>;
}

/// Counters of what happened to opinions, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpinionCounts {
    /// A voter's first answer to the current round: it went into the tally.
    pub counted: u64,
    /// A voter's second answer to the same round (a redelivery or another replica): ignored.
    pub duplicate: u64,
    /// An answer for another round than the current one (a late answer): ignored.
    pub late: u64,
    /// An answer for another cycle, or from an assistant that is not a voter of this one: ignored.
    pub stray: u64,
}

/// Runs cycles for one strategy under one policy.
#[derive(Debug, Clone)]
pub struct Coordinator {
    /// The Strategy's name, carried by every round request, escalation and decision.
    pub strategy: String,
    /// The Strategy's consensus policy: voter roles, threshold, quorum, rounds, veto roles and
    /// escalation.
    pub policy: ConsensusPolicySpec,
    /// What became of every opinion received, summed over all the cycles run so far.
    pub counts: OpinionCounts,
}

impl Coordinator {
    /// A coordinator for `strategy` under `policy`, its counts at zero.
    pub fn new(strategy: impl Into<String>, policy: ConsensusPolicySpec) -> Self {
        Self {
            strategy: strategy.into(),
            policy,
            counts: OpinionCounts::default(),
        }
    }

    /// Runs one cycle to its decision, waiting for a human when it escalates. `now_ms` stamps
    /// deadlines and the decision; the cycle id must be stable for the same (strategy, symbol,
    /// candle or alert) so a restarted coordinator reuses it.
    pub async fn run_cycle<T: Transport, E: EscalationResolver>(
        &mut self,
        cycle_id: String,
        snapshot: MarketSnapshot,
        voters: Vec<Voter>,
        transport: &T,
        escalations: &E,
        now_ms: impl Fn() -> i64,
    ) -> Decision {
        match self
            .deliberate(cycle_id, snapshot, voters, transport, &now_ms)
            .await
        {
            Deliberation::Decided(decision) => decision,
            Deliberation::Escalated(pending) => {
                let resolution = escalations.resolve(&pending.escalation).await;
                pending.conclude(resolution, now_ms())
            }
        }
    }

    /// Runs one cycle's rounds: its decision, or the escalation it raised (the caller waits for
    /// the answer however suits it, e.g. without holding up the other symbols, and then
    /// [`PendingDecision::conclude`]s).
    pub async fn deliberate<T: Transport>(
        &mut self,
        cycle_id: String,
        snapshot: MarketSnapshot,
        voters: Vec<Voter>,
        transport: &T,
        now_ms: &impl Fn() -> i64,
    ) -> Deliberation {
        let mut cycle = Cycle::new(
            cycle_id,
            self.strategy.clone(),
            snapshot,
            self.policy.clone(),
            voters,
        );
        let started = std::time::Instant::now();
        let outcome = self.rounds(&mut cycle, transport, now_ms).await;
        let ended = match outcome {
            Outcome::Consensus { action, confidence } => Ending::consensus(action, confidence),
            Outcome::Vetoed { .. } => Ending {
                vetoed: true,
                ..Ending::hold(1.0)
            },
            Outcome::Exhausted {
                proposed,
                confidence,
            } => match self.policy.escalation.action {
                EscalationAction::Hold => Ending::hold(confidence),
                EscalationAction::Reject => Ending {
                    rejected: true,
                    ..Ending::hold(confidence)
                },
                EscalationAction::Escalate => {
                    let escalation = Escalation {
                        id: cycle.id.clone(),
                        strategy: self.strategy.as_str().into(),
                        symbol: cycle.snapshot.symbol.clone(),
                        proposed,
                        scores: cycle
                            .tallies()
                            .last()
                            .map(|t| t.scores.clone())
                            .unwrap_or_default(),
                        timeout_seconds: self.policy.escalation.timeout_seconds,
                        raised_at: now_ms(),
                    };
                    return Deliberation::Escalated(Box::new(PendingDecision {
                        escalation,
                        cycle,
                        confidence,
                        default_action: self.policy.escalation.default_action,
                        started,
                    }));
                }
            },
        };
        Deliberation::Decided(finish(cycle, ended, started, now_ms()))
    }

    /// The rounds of a cycle until it is done.
    async fn rounds<T: Transport>(
        &mut self,
        cycle: &mut Cycle,
        transport: &T,
        now_ms: &impl Fn() -> i64,
    ) -> Outcome {
        let round_ms = i64::from(self.policy.round_timeout_seconds) * 1000;
        loop {
            let round_started = std::time::Instant::now();
            let request = cycle.request(now_ms() + round_ms);
            for opinion in transport.ask(cycle.voters(), &request).await {
                match cycle.accept(opinion) {
                    Acceptance::Counted => self.counts.counted += 1,
                    Acceptance::Duplicate => self.counts.duplicate += 1,
                    Acceptance::WrongRound => self.counts.late += 1,
                    Acceptance::WrongCycle | Acceptance::NotAVoter => self.counts.stray += 1,
                }
            }
            let step = cycle.close_round();
            crate::metrics::ROUND_SECONDS
                .with_label_values(&[&self.strategy])
                .observe(round_started.elapsed().as_secs_f64());
            match step {
                Step::NextRound(_) => continue,
                Step::Done(outcome) => return outcome,
            }
        }
    }
}

/// What a cycle's rounds came to.
pub enum Deliberation {
    /// The cycle ended without asking a human: consensus, no view, a veto, or after the last round
    /// the policy's `Hold` or `Reject`.
    Decided(Decision),
    /// The team could not agree and asks a human: the decision waits for the answer.
    Escalated(Box<PendingDecision>),
}

/// A cycle waiting for the answer to its escalation.
pub struct PendingDecision {
    /// The escalation raised, under the cycle's id, proposing the last round's leading action; the
    /// caller resolves it and hands the answer to [`PendingDecision::conclude`].
    pub escalation: Escalation,
    cycle: Cycle,
    confidence: f64,
    default_action: Action,
    started: std::time::Instant,
}

impl PendingDecision {
    /// The decision, given the human's answer: approved → the proposed action; rejected → dropped
    /// (HOLD, `rejected`); no answer in time → the policy's `defaultAction`.
    pub fn conclude(self, resolution: Resolution, now_ms: i64) -> Decision {
        let proposed = self.escalation.proposed;
        let (action, rejected, resolved_by) = match resolution {
            Resolution::Approved { by } => (proposed, false, Some(by)),
            Resolution::Rejected { by } => (Action::Hold, true, Some(by)),
            Resolution::TimedOut => (self.default_action, false, None),
        };
        let ended = Ending {
            action,
            escalated: true,
            rejected,
            resolved_by,
            ..Ending::hold(self.confidence)
        };
        finish(self.cycle, ended, self.started, now_ms)
    }
}

/// Writes a finished cycle down as its [`Decision`] (and its metrics).
fn finish(cycle: Cycle, ended: Ending, started: std::time::Instant, now_ms: i64) -> Decision {
    let strategy = cycle.strategy.clone();
    let id = cycle.id.clone();
    let symbol = cycle.snapshot.symbol.clone();
    let price = cycle.snapshot.close;
    // voters silent in the last round: the "assistant stopped answering" alert counts these
    if let Some(last) = cycle.tallies().last() {
        for voter in cycle.voters() {
            if !last.votes.iter().any(|v| v.assistant == voter.assistant) {
                crate::metrics::MISSING_OPINIONS
                    .with_label_values(&[&strategy, voter.role.as_str()])
                    .inc();
            }
        }
    }
    let (rounds, transcript) = cycle.into_record();
    crate::metrics::CYCLE_SECONDS
        .with_label_values(&[&strategy])
        .observe(started.elapsed().as_secs_f64());
    let decision = Decision {
        id,
        strategy: strategy.into(),
        symbol,
        action: ended.action,
        confidence: ended.confidence.clamp(0.0, 1.0),
        consensus_reached: ended.consensus_reached,
        escalated: ended.escalated,
        vetoed: ended.vetoed,
        rejected: ended.rejected,
        resolved_by: ended.resolved_by,
        rounds,
        transcript,
        price,
        decided_at: now_ms,
    };
    crate::metrics::decided(&decision);
    decision
}

/// How a cycle ended, before it is written down as a [`Decision`].
#[derive(Debug, Clone)]
struct Ending {
    action: Action,
    confidence: f64,
    consensus_reached: bool,
    escalated: bool,
    vetoed: bool,
    rejected: bool,
    resolved_by: Option<String>,
}

impl Ending {
    fn consensus(action: Action, confidence: f64) -> Self {
        Self {
            action,
            consensus_reached: true,
            ..Self::hold(confidence)
        }
    }

    fn hold(confidence: f64) -> Self {
        Self {
            action: Action::Hold,
            confidence,
            consensus_reached: false,
            escalated: false,
            vetoed: false,
            rejected: false,
            resolved_by: None,
        }
    }
}

/// The stable id of a cycle: strategy, symbol, the candle's open time, and what started it.
pub fn cycle_id(strategy: &str, symbol: &str, open_time: i64, trigger: &str) -> DecisionId {
    format!("{strategy}_{symbol}_{open_time}_{trigger}").into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::messages::{Indicators, PortfolioContext};
    use protocol::Role;
    use std::cell::RefCell;

    /// Answers with a fixed (action, confidence, veto) per assistant and round.
    struct Scripted(Vec<(&'static str, u32, Action, f64, bool)>);

    impl Transport for Scripted {
        async fn ask(&self, voters: &[Voter], request: &RoundRequest) -> Vec<Opinion> {
            self.0
                .iter()
                .filter(|(_, round, ..)| *round == request.round)
                .map(|&(assistant, _, action, confidence, veto)| Opinion {
                    cycle_id: request.cycle_id.clone(),
                    round: request.round,
                    assistant: assistant.into(),
                    role: voters
                        .iter()
                        .find(|v| v.assistant == assistant)
                        .map_or(Role::Auditor, |v| v.role),
                    symbol: request.snapshot.symbol.clone(),
                    action,
                    confidence,
                    reasoning: format!("{assistant} says {action}"),
                    evidence: Default::default(),
                    veto,
                    llm: false,
                })
                .collect()
        }
    }

    struct Human(Resolution, RefCell<Vec<Escalation>>);

    fn approved_by(who: &str) -> Resolution {
        Resolution::Approved { by: who.into() }
    }

    impl EscalationResolver for Human {
        async fn resolve(&self, escalation: &Escalation) -> Resolution {
            self.1.borrow_mut().push(escalation.clone());
            self.0.clone()
        }
    }

    fn voters() -> Vec<Voter> {
        [
            ("technical", Role::TechnicalAnalyst, 1.2),
            ("strategist", Role::Strategist, 1.0),
            ("risk", Role::RiskManager, 1.5),
        ]
        .map(|(a, role, weight)| Voter {
            assistant: a.into(),
            role,
            weight,
        })
        .to_vec()
    }

    fn snapshot() -> MarketSnapshot {
        MarketSnapshot {
            symbol: "BTCUSDT".into(),
            open_time: 3_600_000,
            open: 100.0,
            high: 101.0,
            low: 99.0,
            close: 100.5,
            volume: 10.0,
            indicators: Indicators::default(),
            portfolio: PortfolioContext::default(),
        }
    }

    async fn decide(script: Scripted, policy: ConsensusPolicySpec, human: &Human) -> Decision {
        let mut coordinator = Coordinator::new("s", policy);
        coordinator
            .run_cycle(
                "cycle-1".into(),
                snapshot(),
                voters(),
                &script,
                human,
                || 42,
            )
            .await
    }

    fn split(rounds: u32) -> Scripted {
        Scripted(
            (1..=rounds)
                .flat_map(|r| {
                    [
                        ("technical", r, Action::Buy, 0.6, false),
                        ("strategist", r, Action::Sell, 0.6, false),
                        ("risk", r, Action::Hold, 0.3, false),
                    ]
                })
                .collect(),
        )
    }

    #[tokio::test]
    async fn a_split_team_escalates_and_the_human_decides() {
        let policy = ConsensusPolicySpec {
            threshold: 0.6,
            ..Default::default()
        };
        let approve = Human(approved_by("alice"), RefCell::default());
        let d = decide(split(3), policy.clone(), &approve).await;
        assert_eq!(
            (d.action, d.escalated, d.consensus_reached),
            (Action::Buy, true, false)
        );
        assert_eq!(d.rounds.len(), 3);
        assert_eq!(d.transcript.len(), 9);
        let raised = approve.1.take();
        assert_eq!(raised.len(), 1);
        assert_eq!(
            (raised[0].id.as_str(), raised[0].proposed),
            ("cycle-1", Action::Buy)
        );

        let reject = Human(
            Resolution::Rejected { by: "bob".into() },
            RefCell::default(),
        );
        let rejected = decide(split(3), policy.clone(), &reject).await;
        assert_eq!(
            (rejected.action, rejected.escalated, rejected.rejected),
            (Action::Hold, true, true)
        );
        assert!(!d.rejected, "an approved escalation is not rejected");
        assert_eq!(
            (d.resolved_by.as_deref(), rejected.resolved_by.as_deref()),
            (Some("alice"), Some("bob")),
            "who answered is recorded"
        );
        let timeout = Human(Resolution::TimedOut, RefCell::default());
        let mut sell_by_default = policy.clone();
        sell_by_default.escalation.default_action = Action::Sell;
        let timed_out = decide(split(3), sell_by_default, &timeout).await;
        assert_eq!(
            (timed_out.action, timed_out.resolved_by),
            (Action::Sell, None)
        );
    }

    #[tokio::test]
    async fn hold_and_reject_policies_act_at_once_without_asking() {
        for action in [EscalationAction::Hold, EscalationAction::Reject] {
            let mut policy = ConsensusPolicySpec {
                threshold: 0.6,
                ..Default::default()
            };
            policy.escalation.action = action;
            let human = Human(approved_by("alice"), RefCell::default());
            let d = decide(split(3), policy, &human).await;
            assert_eq!((d.action, d.escalated), (Action::Hold, false));
            assert_eq!(
                d.rejected,
                action == EscalationAction::Reject,
                "only Reject drops the cycle"
            );
            assert!(human.1.borrow().is_empty());
        }
    }

    #[tokio::test]
    async fn consensus_and_veto_are_recorded() {
        let human = Human(approved_by("alice"), RefCell::default());
        let agree = Scripted(vec![
            ("technical", 1, Action::Buy, 0.9, false),
            ("strategist", 1, Action::Buy, 0.7, false),
            ("risk", 1, Action::Hold, 0.2, false),
        ]);
        let d = decide(agree, ConsensusPolicySpec::default(), &human).await;
        assert_eq!(
            (d.action, d.consensus_reached, d.rounds.len()),
            (Action::Buy, true, 1)
        );
        assert!((d.confidence - (1.2 * 0.9 + 0.7) / 2.2).abs() < 1e-12);
        assert_eq!((d.price, d.decided_at), (100.5, 42));

        let vetoed = Scripted(vec![
            ("technical", 1, Action::Buy, 0.9, false),
            ("strategist", 1, Action::Buy, 0.9, false),
            ("risk", 1, Action::Hold, 1.0, true),
        ]);
        let d = decide(vetoed, ConsensusPolicySpec::default(), &human).await;
        assert_eq!(
            (d.action, d.vetoed, d.consensus_reached),
            (Action::Hold, true, false)
        );
    }

    #[tokio::test]
    async fn quorum_decides_when_a_voter_never_answers_and_duplicates_count_once() {
        let human = Human(Resolution::TimedOut, RefCell::default());
        // the risk manager (1.5 of 3.7) is silent: 2.2 / 3.7 = 59% answered
        let silent_risk = || {
            Scripted(vec![
                ("technical", 1, Action::Buy, 0.9, false),
                ("technical", 1, Action::Sell, 0.9, false),
                ("strategist", 1, Action::Buy, 0.7, false),
            ])
        };
        let mut coordinator = Coordinator::new(
            "s",
            ConsensusPolicySpec {
                quorum: 0.55,
                ..Default::default()
            },
        );
        let d = coordinator
            .run_cycle(
                "c".into(),
                snapshot(),
                voters(),
                &silent_risk(),
                &human,
                || 0,
            )
            .await;
        assert_eq!((d.action, d.consensus_reached), (Action::Buy, true));
        assert_eq!(coordinator.counts.duplicate, 1);
        assert_eq!(d.rounds[0].votes.len(), 2);

        let strict = ConsensusPolicySpec {
            quorum: 0.6,
            max_rounds: 2,
            ..Default::default()
        };
        let d = decide(silent_risk(), strict, &human).await;
        assert!(!d.consensus_reached && d.escalated, "{d:?}");
    }
}
