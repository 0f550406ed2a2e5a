//! The team in one process: every voting role's analyst called directly, the [`Transport`] of the
//! embedded default (`trading-agent backtest`) and of unit tests.

use crate::consensus::{Transport, Voter};
use crate::llm::LlmReasoner;
use crate::roles::Analyst;
use protocol::messages::{Opinion, RoundRequest};
use std::collections::HashMap;

/// One assistant of the local team.
pub struct LocalAssistant {
    /// Its name, role and weight, as the tally counts it.
    pub voter: Voter,
    /// The role's deterministic reasoning.
    pub analyst: Box<dyn Analyst>,
    /// The role's model, when it has one (`backtest --ollama-url`).
    pub llm: Option<LlmReasoner>,
}

/// The voting assistants of a team, answering in-process.
#[derive(Default)]
pub struct LocalTeam {
    assistants: Vec<LocalAssistant>,
    index: HashMap<String, usize>,
}

impl LocalTeam {
    /// A team of `assistants`, found by name when a round asks them.
    pub fn new(assistants: Vec<LocalAssistant>) -> Self {
        let index = assistants
            .iter()
            .enumerate()
            .map(|(i, a)| (a.voter.assistant.clone(), i))
            .collect();
        Self { assistants, index }
    }

    /// The voters, with their current weights.
    pub fn voters(&self) -> Vec<Voter> {
        self.assistants.iter().map(|a| a.voter.clone()).collect()
    }
}

impl Transport for LocalTeam {
    async fn ask(&self, voters: &[Voter], request: &RoundRequest) -> Vec<Opinion> {
        let members = voters
            .iter()
            .filter_map(|v| self.index.get(&v.assistant))
            .map(|&i| &self.assistants[i]);
        if self.assistants.iter().all(|a| a.llm.is_none()) {
            // the deterministic team answers synchronously: no futures to drive
            return members
                .map(|a| a.analyst.answer(request, &a.voter.assistant))
                .collect();
        }
        let asks = members.map(|a| async move {
            let judgement = a.analyst.judge(request, &a.voter.assistant);
            let (judgement, llm) = match &a.llm {
                Some(model) => model.judge(a.voter.role, request, judgement).await,
                None => (judgement, false),
            };
            let mut opinion = judgement.into_opinion(request, &a.voter.assistant, a.voter.role);
            opinion.llm = llm;
            opinion
        });
        futures::future::join_all(asks).await
    }
}
