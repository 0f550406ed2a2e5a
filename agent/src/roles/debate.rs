//! How a deterministic voter revises its view in a debate round, after reading the others' opinions.
//!
//! The rule, in words: an outnumbered voter loses conviction, a supported one gains a little.
//! Let `share(b)` be the confidence-weighted share of the *other* voters' opinions for action `b`
//! (vetoes and zero-confidence opinions count for nothing), and `b*` the action with the largest share.
//! - If `b*` is the voter's own action and its supporters are surer (mean confidence `m > c`):
//!   `c' = c + 0.5 × share(b*) × (m − c)`, so conviction rises towards the supporters', never past it.
//! - If `b*` differs and `share(b*) ≥ 0.5`: `c' = c × (1 − 0.5 × share(b*))`; when `c'` falls below
//!   0.25 the voter concedes and adopts `b*` with half the mean confidence of its supporters.
//! - Otherwise the view stands.
//!
//! Each step closes at least half the remaining gap to a fixed point, so repeated rounds converge; the LLM path instead puts
//! the debate in the prompt.

use super::Judgement;
use protocol::messages::Opinion;
use protocol::Action;

/// Below this revised confidence an outnumbered voter concedes.
const CONCEDE_BELOW: f64 = 0.25;

/// Revises `own` given the `debate` (the opinions of the previous round; `assistant`'s own is skipped).
pub fn revise(mut own: Judgement, debate: &[Opinion], assistant: &str) -> Judgement {
    let mut mass = [0.0f64; 3];
    let mut supporters = [0usize; 3];
    for opinion in debate
        .iter()
        .filter(|o| o.assistant != assistant && !o.veto)
    {
        let slot = index(opinion.action);
        mass[slot] += opinion.confidence;
        supporters[slot] += 1;
    }
    let total: f64 = mass.iter().sum();
    if total <= 0.0 {
        return own;
    }
    let top = (0..3)
        .max_by(|&a, &b| mass[a].total_cmp(&mass[b]))
        .unwrap_or(2);
    let top_share = mass[top] / total;
    let top_action = Action::ALL[top];
    let before = own.confidence;
    if top_action == own.action {
        let mean = mass[top] / supporters[top] as f64;
        own.confidence = before + 0.5 * top_share * (mean - before).max(0.0);
        own.reasoning = format!(
            "{} (supported by {:.0}% of the team)",
            own.reasoning,
            top_share * 100.0
        );
    } else if top_share >= 0.5 {
        let revised = before * (1.0 - 0.5 * top_share);
        if revised < CONCEDE_BELOW {
            let mean = mass[top] / supporters[top] as f64;
            own.action = top_action;
            own.confidence = 0.5 * mean;
            own.reasoning = format!(
                "concedes to {top_action} ({:.0}% of the team); was: {}",
                top_share * 100.0,
                own.reasoning
            );
        } else {
            own.confidence = revised;
            own.reasoning = format!(
                "{} (outnumbered: {:.0}% of the team say {top_action})",
                own.reasoning,
                top_share * 100.0
            );
        }
    }
    own.evidence.insert("debate_top_share".into(), top_share);
    own
}

fn index(action: Action) -> usize {
    match action {
        Action::Buy => 0,
        Action::Sell => 1,
        Action::Hold => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Role;

    fn opinion(assistant: &str, action: Action, confidence: f64) -> Opinion {
        Opinion {
            cycle_id: "c".into(),
            round: 1,
            assistant: assistant.into(),
            role: Role::TechnicalAnalyst,
            symbol: "BTCUSDT".into(),
            action,
            confidence,
            reasoning: String::new(),
            evidence: Default::default(),
            veto: false,
            llm: false,
        }
    }

    #[test]
    fn support_strengthens_and_ignores_the_voters_own_opinion() {
        let own = Judgement::new(Action::Buy, 0.6, "x");
        let debate = [
            opinion("me", Action::Sell, 1.0),
            opinion("a", Action::Buy, 0.8),
        ];
        let revised = revise(own, &debate, "me");
        assert_eq!(revised.action, Action::Buy);
        assert!((revised.confidence - 0.7).abs() < 1e-12); // 0.6 + 0.5 × 1 × (0.8 − 0.6)
    }

    #[test]
    fn an_outnumbered_voter_weakens_then_concedes() {
        let debate = [
            opinion("a", Action::Sell, 0.8),
            opinion("b", Action::Sell, 0.6),
            opinion("c", Action::Hold, 0.6),
        ];
        let weakened = revise(Judgement::new(Action::Buy, 0.8, "x"), &debate, "me");
        assert_eq!(weakened.action, Action::Buy);
        assert!((weakened.confidence - 0.8 * (1.0 - 0.5 * 0.7)).abs() < 1e-12);
        let conceded = revise(Judgement::new(Action::Buy, 0.3, "x"), &debate, "me");
        assert_eq!(conceded.action, Action::Sell);
        assert!((conceded.confidence - 0.35).abs() < 1e-12); // half of mean(0.8, 0.6)
    }

    #[test]
    fn repeated_rounds_reach_a_fixed_point() {
        let debate = [
            opinion("a", Action::Hold, 0.5),
            opinion("b", Action::Hold, 0.5),
        ];
        let mut j = Judgement::new(Action::Buy, 0.9, "x");
        for _ in 0..20 {
            j = revise(j, &debate, "me");
        }
        assert_eq!(j.action, Action::Hold);
        let again = revise(j.clone(), &debate, "me");
        assert!((again.confidence - j.confidence).abs() < 0.01);
    }

    #[test]
    fn vetoes_and_empty_debates_change_nothing() {
        let mut veto = opinion("r", Action::Hold, 1.0);
        veto.veto = true;
        let own = Judgement::new(Action::Buy, 0.6, "x");
        assert_eq!(revise(own.clone(), &[veto], "me"), own);
        assert_eq!(revise(own.clone(), &[], "me"), own);
    }
}
