//! Counting a round: Σ weight × confidence per action, the quorum, the threshold and the veto.

use protocol::crd::ConsensusPolicySpec;
use protocol::messages::{RoundTally, Vote};
use protocol::{Action, Role};
use std::collections::BTreeMap;

/// What a counted round says.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The top action's share reached the threshold with a quorum and no veto.
    Consensus {
        /// The leading action.
        action: Action,
        /// Its score over all scores, in [0, 1]: at least the policy's threshold.
        share: f64,
    },
    /// A veto role forced HOLD.
    Vetoed {
        /// The assistant whose veto counted.
        assistant: String,
    },
    /// Too little of the voting weight answered for the tally to count.
    NoQuorum {
        /// The answered weight over the total weight, in [0, 1]: under the policy's quorum.
        answered: f64,
    },
    /// The team is split: the top action's share is under the threshold.
    Split {
        /// The top action (HOLD on a tie for the top).
        leading: Action,
        /// Its score over all scores, in [0, 1]: under the policy's threshold.
        share: f64,
    },
    /// Enough voters answered and every one of them abstained (confidence 0): nobody has a view,
    /// so there is nothing to debate or escalate, and the team holds.
    NoView,
}

/// Tallies the votes of one round; `total_weight` is the weight of every expected voter.
pub fn tally(round: u32, votes: Vec<Vote>, total_weight: f64) -> RoundTally {
    let mut scores: BTreeMap<Action, f64> = Action::ALL.iter().map(|a| (*a, 0.0)).collect();
    let mut answered_weight = 0.0;
    for vote in &votes {
        answered_weight += vote.weight;
        *scores.entry(vote.action).or_default() += vote.weight * vote.confidence;
    }
    RoundTally {
        round,
        votes,
        scores,
        answered_weight,
        total_weight,
    }
}

/// The top action of a tally and its share of all scores (0 when nobody expressed any confidence).
/// A tie for the top goes to HOLD: the cautious reading of a split team.
pub fn leading(t: &RoundTally) -> (Action, f64) {
    let total: f64 = t.scores.values().sum();
    let score = |a: Action| t.scores.get(&a).copied().unwrap_or(0.0);
    let best = Action::ALL.iter().map(|a| score(*a)).fold(0.0, f64::max);
    let top: Vec<Action> = Action::ALL
        .into_iter()
        .filter(|a| score(*a) == best)
        .collect();
    let action = if top.len() == 1 { top[0] } else { Action::Hold };
    (
        action,
        if total > 0.0 {
            score(action) / total
        } else {
            0.0
        },
    )
}

/// Judges a tally against the policy. A veto counts only from one of the policy's veto roles.
pub fn judge(t: &RoundTally, policy: &ConsensusPolicySpec) -> Verdict {
    if let Some(v) = t
        .votes
        .iter()
        .find(|v| v.veto && is_veto_role(v.role, policy))
    {
        return Verdict::Vetoed {
            assistant: v.assistant.clone(),
        };
    }
    let answered = if t.total_weight > 0.0 {
        t.answered_weight / t.total_weight
    } else {
        0.0
    };
    if answered + 1e-12 < policy.quorum {
        return Verdict::NoQuorum { answered };
    }
    if t.scores.values().all(|s| *s <= 0.0) {
        return Verdict::NoView;
    }
    let (action, share) = leading(t);
    if share > 0.0 && share + 1e-12 >= policy.threshold {
        Verdict::Consensus { action, share }
    } else {
        Verdict::Split {
            leading: action,
            share,
        }
    }
}

fn is_veto_role(role: Role, policy: &ConsensusPolicySpec) -> bool {
    policy.veto_roles.contains(&role)
}

/// The weighted mean confidence of the voters who chose `action` (0 when none did).
pub fn supporters_confidence(t: &RoundTally, action: Action) -> f64 {
    let (weight, score) = t
        .votes
        .iter()
        .filter(|v| v.action == action)
        .fold((0.0, 0.0), |(w, s), v| {
            (w + v.weight, s + v.weight * v.confidence)
        });
    if weight > 0.0 {
        score / weight
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(assistant: &str, role: Role, action: Action, confidence: f64, weight: f64) -> Vote {
        Vote {
            assistant: assistant.into(),
            role,
            action,
            confidence,
            weight,
            veto: false,
        }
    }

    fn policy(threshold: f64, quorum: f64) -> ConsensusPolicySpec {
        ConsensusPolicySpec {
            threshold,
            quorum,
            ..Default::default()
        }
    }

    #[test]
    fn weighted_share_decides() {
        let t = tally(
            1,
            vec![
                vote("t", Role::TechnicalAnalyst, Action::Buy, 0.8, 1.2),
                vote("s", Role::Strategist, Action::Buy, 0.6, 1.0),
                vote("m", Role::MarketMonitor, Action::Sell, 0.9, 1.0),
            ],
            3.2,
        );
        // BUY 0.96 + 0.6 = 1.56, SELL 0.9: share 1.56 / 2.46
        assert_eq!(t.scores[&Action::Buy], 0.96 + 0.6);
        let (action, share) = leading(&t);
        assert_eq!(action, Action::Buy);
        assert!((share - 1.56 / 2.46).abs() < 1e-12);
        assert!(matches!(
            judge(&t, &policy(0.6, 0.5)),
            Verdict::Consensus {
                action: Action::Buy,
                ..
            }
        ));
        assert!(matches!(
            judge(&t, &policy(0.7, 0.5)),
            Verdict::Split {
                leading: Action::Buy,
                ..
            }
        ));
        assert!((supporters_confidence(&t, Action::Buy) - 1.56 / 2.2).abs() < 1e-12);
    }

    #[test]
    fn quorum_counts_answered_weight_not_heads() {
        let t = tally(
            1,
            vec![vote("t", Role::TechnicalAnalyst, Action::Buy, 1.0, 1.0)],
            4.0,
        );
        assert_eq!(
            judge(&t, &policy(0.5, 0.3)),
            Verdict::NoQuorum { answered: 0.25 }
        );
        let t = tally(
            1,
            vec![vote("t", Role::TechnicalAnalyst, Action::Buy, 1.0, 2.0)],
            4.0,
        );
        assert!(matches!(
            judge(&t, &policy(0.5, 0.5)),
            Verdict::Consensus { .. }
        ));
    }

    #[test]
    fn only_veto_roles_can_veto() {
        let mut risk = vote("r", Role::RiskManager, Action::Hold, 1.0, 1.0);
        risk.veto = true;
        let mut rogue = vote("t", Role::TechnicalAnalyst, Action::Hold, 1.0, 1.0);
        rogue.veto = true;
        let buyers = || vote("s", Role::Strategist, Action::Buy, 1.0, 5.0);
        let t = tally(1, vec![buyers(), risk], 7.0);
        assert_eq!(
            judge(&t, &policy(0.5, 0.5)),
            Verdict::Vetoed {
                assistant: "r".into()
            }
        );
        let t = tally(1, vec![buyers(), rogue], 7.0);
        assert!(matches!(
            judge(&t, &policy(0.5, 0.5)),
            Verdict::Consensus {
                action: Action::Buy,
                ..
            }
        ));
    }

    #[test]
    fn nobody_sure_is_no_view_and_ties_are_cautious() {
        let t = tally(
            1,
            vec![vote("f", Role::FundamentalAnalyst, Action::Buy, 0.0, 1.0)],
            1.0,
        );
        assert_eq!(judge(&t, &policy(0.5, 0.5)), Verdict::NoView);
        // below the quorum it is still no quorum, not "no view"
        let short = tally(
            1,
            vec![vote("f", Role::FundamentalAnalyst, Action::Hold, 0.0, 1.0)],
            4.0,
        );
        assert!(matches!(
            judge(&short, &policy(0.5, 0.5)),
            Verdict::NoQuorum { .. }
        ));
        let t = tally(
            1,
            vec![
                vote("a", Role::TechnicalAnalyst, Action::Buy, 0.5, 1.0),
                vote("b", Role::Strategist, Action::Hold, 0.5, 1.0),
            ],
            2.0,
        );
        assert_eq!(leading(&t), (Action::Hold, 0.5));
        let t = tally(
            1,
            vec![
                vote("a", Role::TechnicalAnalyst, Action::Buy, 0.5, 1.0),
                vote("b", Role::Strategist, Action::Sell, 0.5, 1.0),
            ],
            2.0,
        );
        assert_eq!(leading(&t), (Action::Hold, 0.0));
    }
}
