//! One consensus cycle as a state machine, independent of the transport: round 1 asks every voter
//! for an opinion on the same snapshot, later rounds hand each voter the others' opinions, and after
//! each round the tally decides whether to stop (consensus or veto) or go on. The coordinator drives
//! it over the bus; tests drive it directly.

use super::tally::{judge, supporters_confidence, tally, Verdict};
use protocol::crd::ConsensusPolicySpec;
use protocol::messages::{MarketSnapshot, Opinion, RoundRequest, RoundTally, Vote};
use protocol::{Action, Role};

/// A voter of the cycle: one TradingAssistant (however many replicas it runs).
#[derive(Debug, Clone, PartialEq)]
pub struct Voter {
    /// The TradingAssistant's name: an opinion counts only under this name and `role`.
    pub assistant: String,
    /// The role it votes as; only the policy's `voters` roles take part in a cycle.
    pub role: Role,
    /// Its vote weight (the declared `spec.weight`, then the learned one; 1 without a team file):
    /// the tally scores weight × confidence, and the quorum counts answered weight.
    pub weight: f64,
}

/// What became of an opinion handed to the cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// The voter's first answer to the current round: it goes into the round's tally.
    Counted,
    /// The voter already answered this round (a redelivery or a second replica): counted once.
    Duplicate,
    /// For another round (a late answer): ignored.
    WrongRound,
    /// For another cycle: ignored.
    WrongCycle,
    /// Not a voter of this cycle: ignored.
    NotAVoter,
}

/// Where a closed round leaves the cycle.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Ask the voters again: the next round's number.
    NextRound(u32),
    /// The cycle is over.
    Done(Outcome),
}

/// How a cycle ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The leading action's share reached the threshold with a quorum, or every voter abstained
    /// (HOLD at confidence 0).
    Consensus {
        /// The action the team agreed on.
        action: Action,
        /// The weighted mean confidence of the voters who chose it, in [0, 1].
        confidence: f64,
    },
    /// A voter of one of the policy's veto roles vetoed: the team holds.
    Vetoed {
        /// The assistant whose veto counted.
        assistant: String,
    },
    /// No consensus after the last round: the policy's escalation applies to `proposed`.
    Exhausted {
        /// The last round's leading action (HOLD on a tie for the top).
        proposed: Action,
        /// The weighted mean confidence of the voters who chose it in the last round, in [0, 1].
        confidence: f64,
    },
}

/// One cycle in progress: its voters, the current round's answers, and the tallies and transcript
/// of the rounds closed so far.
#[derive(Debug, Clone)]
pub struct Cycle {
    /// The cycle's id, stable for the same (strategy, symbol, candle or alert); the decision and any
    /// escalation carry it.
    pub id: protocol::ids::DecisionId,
    /// The Strategy's name, carried by every round request.
    pub strategy: String,
    /// The market snapshot every round judges (the same one in every round).
    pub snapshot: MarketSnapshot,
    policy: ConsensusPolicySpec,
    voters: Vec<Voter>,
    total_weight: f64,
    round: u32,
    answers: Vec<Option<Opinion>>,
    previous: Vec<Opinion>,
    transcript: Vec<Opinion>,
    tallies: Vec<RoundTally>,
}

impl Cycle {
    /// A cycle over `voters` (those of the policy's voter roles that are present).
    pub fn new(
        id: String,
        strategy: String,
        snapshot: MarketSnapshot,
        policy: ConsensusPolicySpec,
        voters: Vec<Voter>,
    ) -> Self {
        let voters: Vec<Voter> = voters
            .into_iter()
            .filter(|v| policy.voters.contains(&v.role))
            .collect();
        let total_weight = voters.iter().map(|v| v.weight).sum();
        Self {
            id: id.into(),
            strategy,
            snapshot,
            answers: vec![None; voters.len()],
            policy,
            voters,
            total_weight,
            round: 1,
            previous: Vec::new(),
            transcript: Vec::new(),
            tallies: Vec::new(),
        }
    }

    /// The current round's number, from 1 to the policy's `maxRounds`.
    pub fn round(&self) -> u32 {
        self.round
    }

    /// The voters taking part: those given whose role is one of the policy's voter roles.
    pub fn voters(&self) -> &[Voter] {
        &self.voters
    }

    /// The consensus policy the cycle's rounds are judged under.
    pub fn policy(&self) -> &ConsensusPolicySpec {
        &self.policy
    }

    /// The request of the current round; answers after `deadline` (ms) are late.
    pub fn request(&self, deadline: i64) -> RoundRequest {
        RoundRequest {
            cycle_id: self.id.clone(),
            round: self.round,
            strategy: self.strategy.as_str().into(),
            snapshot: self.snapshot.clone(),
            debate: self.previous.clone(),
            deadline,
            round_timeout_ms: u64::from(self.policy.round_timeout_seconds) * 1000,
        }
    }

    /// Hands an opinion to the current round.
    pub fn accept(&mut self, opinion: Opinion) -> Acceptance {
        if opinion.cycle_id != self.id {
            return Acceptance::WrongCycle;
        }
        if opinion.round != self.round {
            return Acceptance::WrongRound;
        }
        let Some(slot) = self
            .voters
            .iter()
            .position(|v| v.assistant == opinion.assistant && v.role == opinion.role)
        else {
            return Acceptance::NotAVoter;
        };
        if self.answers[slot].is_some() {
            return Acceptance::Duplicate;
        }
        self.answers[slot] = Some(opinion);
        Acceptance::Counted
    }

    /// Whether every voter has answered the current round.
    pub fn all_answered(&self) -> bool {
        self.answers.iter().all(Option::is_some)
    }

    /// Tallies the current round and decides whether the cycle goes on.
    pub fn close_round(&mut self) -> Step {
        let mut votes = Vec::with_capacity(self.voters.len());
        let mut opinions = Vec::with_capacity(self.voters.len());
        for (voter, answer) in self.voters.iter().zip(self.answers.iter_mut()) {
            if let Some(opinion) = answer.take() {
                votes.push(Vote {
                    assistant: voter.assistant.clone(),
                    role: voter.role,
                    action: opinion.action,
                    confidence: opinion.confidence,
                    weight: voter.weight,
                    veto: opinion.veto,
                });
                opinions.push(opinion);
            }
        }
        let t = tally(self.round, votes, self.total_weight);
        let verdict = judge(&t, &self.policy);
        let step = match verdict {
            Verdict::Consensus { action, .. } => Step::Done(Outcome::Consensus {
                action,
                confidence: supporters_confidence(&t, action),
            }),
            Verdict::Vetoed { assistant } => Step::Done(Outcome::Vetoed { assistant }),
            Verdict::NoView => Step::Done(Outcome::Consensus {
                action: Action::Hold,
                confidence: 0.0,
            }),
            Verdict::NoQuorum { .. } | Verdict::Split { .. }
                if self.round >= self.policy.max_rounds =>
            {
                let (proposed, _) = super::tally::leading(&t);
                Step::Done(Outcome::Exhausted {
                    proposed,
                    confidence: supporters_confidence(&t, proposed),
                })
            }
            Verdict::NoQuorum { .. } | Verdict::Split { .. } => Step::NextRound(self.round + 1),
        };
        self.tallies.push(t);
        if let Step::NextRound(_) = step {
            // the next round's debate: each opinion's action, confidence and reasoning (its
            // evidence stays in the transcript), which keeps debate requests small on the wire
            self.previous = opinions.iter().map(without_evidence).collect();
        }
        self.transcript.extend(opinions);
        if let Step::NextRound(next) = step {
            self.round = next;
        }
        step
    }

    /// The rounds tallied so far.
    pub fn tallies(&self) -> &[RoundTally] {
        &self.tallies
    }

    /// Every opinion of every round, in order.
    pub fn transcript(&self) -> &[Opinion] {
        &self.transcript
    }

    /// Consumes the cycle into its tallies and transcript.
    pub fn into_record(self) -> (Vec<RoundTally>, Vec<Opinion>) {
        (self.tallies, self.transcript)
    }
}

/// `o` as the next round's debate shows it: without its evidence (cloned field by field, so the
/// evidence map is never copied only to be dropped).
fn without_evidence(o: &Opinion) -> Opinion {
    Opinion {
        cycle_id: o.cycle_id.clone(),
        round: o.round,
        assistant: o.assistant.clone(),
        role: o.role,
        symbol: o.symbol.clone(),
        action: o.action,
        confidence: o.confidence,
        reasoning: o.reasoning.clone(),
        evidence: Default::default(),
        veto: o.veto,
        llm: o.llm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> MarketSnapshot {
        MarketSnapshot::flat("BTCUSDT", 0, 1.0)
    }

    fn team() -> Vec<Voter> {
        [
            ("technical", Role::TechnicalAnalyst, 1.0),
            ("strategist", Role::Strategist, 1.0),
            ("risk", Role::RiskManager, 1.0),
            ("executor", Role::Executor, 1.0),
        ]
        .map(|(a, role, weight)| Voter {
            assistant: a.into(),
            role,
            weight,
        })
        .to_vec()
    }

    fn opinion(cycle: &Cycle, assistant: &str, action: Action, confidence: f64) -> Opinion {
        Opinion {
            cycle_id: cycle.id.clone(),
            round: cycle.round(),
            assistant: assistant.into(),
            role: cycle
                .voters()
                .iter()
                .find(|v| v.assistant == assistant)
                .map_or(Role::Executor, |v| v.role),
            symbol: "BTCUSDT".into(),
            action,
            confidence,
            reasoning: String::new(),
            evidence: Default::default(),
            veto: false,
            llm: false,
        }
    }

    fn cycle(max_rounds: u32) -> Cycle {
        let policy = ConsensusPolicySpec {
            max_rounds,
            threshold: 0.6,
            quorum: 0.6,
            ..Default::default()
        };
        Cycle::new("c1".into(), "s".into(), snapshot(), policy, team())
    }

    #[test]
    fn only_policy_voters_take_part() {
        let c = cycle(3);
        assert_eq!(c.voters().len(), 3); // the executor does not vote
    }

    #[test]
    fn consensus_in_the_first_round_ends_the_cycle() {
        let mut c = cycle(3);
        for a in ["technical", "strategist"] {
            let o = opinion(&c, a, Action::Buy, 0.8);
            assert_eq!(c.accept(o), Acceptance::Counted);
        }
        let o = opinion(&c, "risk", Action::Hold, 0.2);
        c.accept(o);
        assert!(c.all_answered());
        assert_eq!(
            c.close_round(),
            Step::Done(Outcome::Consensus {
                action: Action::Buy,
                confidence: 0.8
            })
        );
        assert_eq!(c.tallies().len(), 1);
        assert_eq!(c.transcript().len(), 3);
    }

    #[test]
    fn duplicates_late_and_strangers_are_not_counted() {
        let mut c = cycle(3);
        let o = opinion(&c, "technical", Action::Buy, 0.8);
        assert_eq!(c.accept(o.clone()), Acceptance::Counted);
        assert_eq!(c.accept(o.clone()), Acceptance::Duplicate);
        let mut late = o.clone();
        late.round = 0;
        assert_eq!(c.accept(late), Acceptance::WrongRound);
        let mut other = o.clone();
        other.cycle_id = "c0".into();
        assert_eq!(c.accept(other), Acceptance::WrongCycle);
        assert_eq!(
            c.accept(opinion(&c, "executor", Action::Buy, 1.0)),
            Acceptance::NotAVoter
        );
        assert_eq!(
            c.accept(opinion(&c, "nobody", Action::Buy, 1.0)),
            Acceptance::NotAVoter
        );
    }

    #[test]
    fn a_split_team_debates_with_the_others_opinions_then_exhausts() {
        let mut c = cycle(2);
        for (a, action) in [
            ("technical", Action::Buy),
            ("strategist", Action::Sell),
            ("risk", Action::Hold),
        ] {
            let o = opinion(&c, a, action, 0.7);
            c.accept(o);
        }
        assert_eq!(c.close_round(), Step::NextRound(2));
        let request = c.request(0);
        assert_eq!(request.round, 2);
        assert_eq!(request.debate.len(), 3);
        // voters learn how long the round waits for them (to give up on a slow model in time)
        assert_eq!(
            request.round_timeout_ms,
            u64::from(c.policy().round_timeout_seconds) * 1000
        );
        assert!(request.round_timeout_ms > 0);
        for (a, action) in [
            ("technical", Action::Buy),
            ("strategist", Action::Buy),
            ("risk", Action::Sell),
        ] {
            let o = opinion(&c, a, action, 0.5);
            c.accept(o);
        }
        // BUY share 2/3 ≥ 0.6 → consensus in round 2
        assert!(matches!(
            c.close_round(),
            Step::Done(Outcome::Consensus {
                action: Action::Buy,
                ..
            })
        ));

        let mut c = cycle(1);
        for (a, action, conf) in [
            ("technical", Action::Buy, 0.5),
            ("strategist", Action::Sell, 0.5),
            ("risk", Action::Buy, 0.2),
        ] {
            let o = opinion(&c, a, action, conf);
            c.accept(o);
        }
        assert_eq!(
            c.close_round(),
            Step::Done(Outcome::Exhausted {
                proposed: Action::Buy,
                confidence: 0.35
            })
        );
    }

    #[test]
    fn a_silent_team_misses_quorum_and_a_veto_stops_everything() {
        let mut c = cycle(2);
        let o = opinion(&c, "technical", Action::Buy, 1.0);
        c.accept(o);
        assert_eq!(c.close_round(), Step::NextRound(2)); // 1/3 of the weight < quorum
        let mut veto = opinion(&c, "risk", Action::Hold, 1.0);
        veto.veto = true;
        c.accept(veto);
        for a in ["technical", "strategist"] {
            let o = opinion(&c, a, Action::Buy, 1.0);
            c.accept(o);
        }
        assert_eq!(
            c.close_round(),
            Step::Done(Outcome::Vetoed {
                assistant: "risk".into()
            })
        );
    }
}
