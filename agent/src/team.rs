//! The team in one process: every voting role's analyst called directly, the [`Transport`] of the
//! embedded default (`trading-agent backtest`) and of unit tests.

use crate::consensus::{Transport, Voter};
use crate::roles::Analyst;
use protocol::messages::{Opinion, RoundRequest};
use std::collections::HashMap;

/// One assistant of the local team.
pub struct LocalAssistant {
    pub voter: Voter,
    pub analyst: Box<dyn Analyst>,
}

/// The voting assistants of a team, answering in-process.
#[derive(Default)]
pub struct LocalTeam {
    assistants: Vec<LocalAssistant>,
    index: HashMap<String, usize>,
}

impl LocalTeam {
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
        voters
            .iter()
            .filter_map(|v| self.index.get(&v.assistant))
            .map(|&i| {
                let a = &self.assistants[i];
                a.analyst.answer(request, &a.voter.assistant)
            })
            .collect()
    }
}
