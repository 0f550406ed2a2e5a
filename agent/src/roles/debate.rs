//! How a deterministic voter treats a debate round: its view stands.
//!
//! A deterministic voter's rule already reads the whole snapshot; the other voters' opinions carry
//! no evidence about the market that the rule lacks, only their conclusions. Moving towards the
//! majority on their say-so is herding: voters with nothing to say conceded to whichever side was
//! surest, and a single confident voter decided for the team. So a deterministic voter keeps its
//! round-1 action and confidence, and records how much of the team disagreed
//! (`debate_dissent`, the confidence-weighted share of the other voters' opinions for another
//! action; abstentions and vetoes count for nothing). The LLM path puts the debate in the prompt,
//! where other voters' evidence can be weighed.

use super::Judgement;
use protocol::messages::Opinion;

/// Keeps `own` for a debate round over `debate` (the previous round's opinions; `assistant`'s own
/// is skipped), with the dissent it heard as evidence.
pub fn revise(mut own: Judgement, debate: &[Opinion], assistant: &str) -> Judgement {
    let (mut against, mut total) = (0.0f64, 0.0f64);
    for opinion in debate
        .iter()
        .filter(|o| o.assistant != assistant && !o.veto)
    {
        total += opinion.confidence;
        if opinion.action != own.action {
            against += opinion.confidence;
        }
    }
    if total > 0.0 {
        own.evidence
            .insert("debate_dissent".into(), against / total);
    }
    own
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Action, Role};

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
    fn a_view_stands_against_any_majority_and_records_the_dissent() {
        let debate = [
            opinion("a", Action::Sell, 0.9),
            opinion("b", Action::Sell, 0.9),
            opinion("c", Action::Buy, 0.2),
            opinion("me", Action::Sell, 1.0),
        ];
        let own = Judgement::new(Action::Buy, 0.3, "x");
        let revised = revise(own.clone(), &debate, "me");
        assert_eq!(
            (revised.action, revised.confidence),
            (own.action, own.confidence)
        );
        assert!((revised.evidence["debate_dissent"] - 0.9).abs() < 1e-12); // 1.8 of 2.0
    }

    #[test]
    fn an_abstainer_stays_out_and_hears_nothing_from_abstainers() {
        let debate = [opinion("a", Action::Hold, 0.0)];
        let own = Judgement::abstain("no view");
        let revised = revise(own.clone(), &debate, "me");
        assert_eq!(revised, own);
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
