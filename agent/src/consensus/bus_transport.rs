//! The coordinator's side of the bus: asking the present voters in parallel, reading who is present,
//! and escalating to a human.

use super::{EscalationResolver, Resolution, Transport, Voter};
use crate::bus::Bus;
use protocol::messages::{Escalation, Heartbeat, Message, Opinion, RoundRequest};
use protocol::subjects::Subjects;
use std::collections::BTreeMap;
use std::time::Duration;

/// Asks voters over the bus; each request waits at most the round's timeout.
pub struct BusTransport<B: Bus> {
    /// The bus the round requests go out on (NATS in a cluster, the in-memory bus in tests).
    pub bus: B,
    /// The Strategy's subjects: each voter is asked on its role's `<prefix>.analyze.<role>`.
    pub subjects: Subjects,
    /// How long a request waits for its replies: the policy's `roundTimeoutSeconds`.
    pub round_timeout: Duration,
}

impl<B: Bus> Transport for BusTransport<B> {
    /// Each voter's answer, taken only for the role it was asked as: an answer on
    /// `analyze.<role>` (which only that role's identity may answer, docs/architecture.md,
    /// "Identities and permissions") that claims another role is dropped and counted, so no
    /// assistant can speak for another role by what its opinion says.
    async fn ask(&self, voters: &[Voter], request: &RoundRequest) -> Vec<Opinion> {
        let message = Message::RoundRequest(Box::new(request.clone()));
        let subjects: Vec<String> = voters
            .iter()
            .map(|v| self.subjects.analyze(v.role))
            .collect();
        let replies = self
            .bus
            .request_all(&subjects, &message, self.round_timeout)
            .await;
        voters
            .iter()
            .zip(replies)
            .filter_map(|(voter, reply)| match reply {
                Ok(Some(Message::Opinion(o))) if o.role == voter.role => Some(o),
                Ok(Some(Message::Opinion(o))) => {
                    crate::metrics::MISATTRIBUTED_OPINIONS
                        .with_label_values(&[&request.strategy, voter.role.as_str()])
                        .inc();
                    tracing::warn!(asked = %voter.role, claimed = %o.role, assistant = %o.assistant,
                        "an answer to one role's request claims another role: dropped");
                    None
                }
                Ok(_) => None,
                Err(error) => {
                    tracing::warn!(%error, "asking a voter failed");
                    None
                }
            })
            .collect()
    }
}

/// The voters among the present assistants of `strategy`: one per TradingAssistant (replicas
/// collapse), executors and auditors excluded. A heartbeat only says who is there: with a declared
/// team (`--team-file`, the TradingAssistants) only declared assistants in their declared role
/// count, at their declared weight; without one, whoever is present counts at weight 1. What a
/// heartbeat claims as its weight is never used (docs/architecture.md, "Trust").
pub fn voters_from_presence(
    present: &[Heartbeat],
    strategy: &str,
    declared: Option<&[Voter]>,
) -> Vec<Voter> {
    let mut by_name: BTreeMap<&str, Voter> = BTreeMap::new();
    for h in present
        .iter()
        .filter(|h| h.strategy == strategy && h.role.reasons())
    {
        let voter = match declared {
            Some(team) => match team
                .iter()
                .find(|v| v.assistant == h.assistant && v.role == h.role)
            {
                Some(v) => v.clone(),
                None => {
                    crate::metrics::UNDECLARED_HEARTBEATS
                        .with_label_values(&[strategy])
                        .inc();
                    continue;
                }
            },
            None => Voter {
                assistant: h.assistant.clone(),
                role: h.role,
                weight: 1.0,
            },
        };
        by_name.entry(&h.assistant).or_insert(voter);
    }
    by_name.into_values().collect()
}

/// Escalations over the bus: the Escalation goes out on `escalation.<id>`, and the first
/// EscalationResolution for that id (from the operator relaying an annotation, or the HTTP API)
/// decides; none within the policy's timeout → [`Resolution::TimedOut`].
pub struct BusEscalations<B: Bus> {
    /// The bus the Escalation is published on and its resolution awaited.
    pub bus: B,
    /// The Strategy's subjects: an escalation and its answer share `<prefix>.escalation.<id>`.
    pub subjects: Subjects,
}

impl<B: Bus> EscalationResolver for BusEscalations<B> {
    async fn resolve(&self, escalation: &Escalation) -> Resolution {
        let subject = match self.subjects.escalation(&escalation.id) {
            Ok(subject) => subject,
            Err(error) => {
                tracing::error!(%error, "cannot escalate");
                return Resolution::TimedOut;
            }
        };
        let mut answers = match self.bus.subscribe(&subject).await {
            Ok(answers) => answers,
            Err(error) => {
                tracing::error!(%error, "cannot listen for the escalation's answer");
                return Resolution::TimedOut;
            }
        };
        if let Err(error) = self
            .bus
            .publish(&subject, &Message::Escalation(escalation.clone()))
            .await
        {
            tracing::error!(%error, "cannot publish the escalation");
        }
        tracing::info!(id = %escalation.id, proposed = %escalation.proposed, "escalated to a human");
        let timeout = Duration::from_secs(u64::from(escalation.timeout_seconds));
        let wait = async {
            while let Some(message) = answers.recv().await {
                if let Message::EscalationResolution(r) = message {
                    if r.id == escalation.id {
                        tracing::info!(id = %r.id, approved = r.approved, by = %r.by, "escalation resolved");
                        return if r.approved {
                            Resolution::Approved { by: r.by }
                        } else {
                            Resolution::Rejected { by: r.by }
                        };
                    }
                }
            }
            Resolution::TimedOut
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(Resolution::TimedOut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Role;

    fn beat(assistant: &str, role: Role, weight: f64) -> Heartbeat {
        Heartbeat {
            assistant: assistant.into(),
            role,
            instance: format!("{assistant}-0"),
            strategy: "s".into(),
            weight,
            at: 0,
        }
    }

    /// Serves `asked`'s requests on `bus` with opinions that say they come from `claims`.
    async fn answering(bus: &crate::bus::memory::MemoryBus, asked: Role, claims: Role) {
        let subjects = Subjects::new("ns", "s").unwrap();
        let mut requests = bus.serve(&subjects.analyze(asked), "q").await.unwrap();
        tokio::spawn(async move {
            while let Some(incoming) = requests.recv().await {
                let Message::RoundRequest(r) = incoming.message.as_ref() else {
                    continue;
                };
                let opinion = Opinion {
                    cycle_id: r.cycle_id.clone(),
                    round: r.round,
                    assistant: claims.as_str().into(),
                    role: claims,
                    symbol: r.snapshot.symbol.clone(),
                    action: protocol::Action::Buy,
                    confidence: 1.0,
                    reasoning: "forged".into(),
                    evidence: Default::default(),
                    veto: false,
                    llm: false,
                };
                let _ = incoming.reply(Message::Opinion(opinion)).await;
            }
        });
    }

    #[tokio::test]
    async fn an_answer_counts_only_for_the_role_that_was_asked() {
        let bus = crate::bus::memory::MemoryBus::new();
        // the technical analyst answers its own requests as if it were the strategist
        answering(&bus, Role::TechnicalAnalyst, Role::Strategist).await;
        answering(&bus, Role::MarketMonitor, Role::MarketMonitor).await;
        let transport = BusTransport {
            bus,
            subjects: Subjects::new("ns", "s").unwrap(),
            round_timeout: Duration::from_secs(1),
        };
        let voters: Vec<Voter> = [Role::TechnicalAnalyst, Role::MarketMonitor]
            .into_iter()
            .map(|role| Voter {
                assistant: role.as_str().into(),
                role,
                weight: 1.0,
            })
            .collect();
        let request = RoundRequest {
            cycle_id: "c".into(),
            round: 1,
            strategy: "s".into(),
            snapshot: protocol::messages::MarketSnapshot {
                symbol: "BTCUSDT".into(),
                open_time: 0,
                open: 1.0,
                high: 1.0,
                low: 1.0,
                close: 1.0,
                volume: 1.0,
                indicators: Default::default(),
                portfolio: Default::default(),
            },
            debate: vec![],
            deadline: 0,
            round_timeout_ms: 1_000,
        };
        let before = crate::metrics::MISATTRIBUTED_OPINIONS
            .with_label_values(&["s", "technicalAnalyst"])
            .get();
        let opinions = transport.ask(&voters, &request).await;
        let roles: Vec<Role> = opinions.iter().map(|o| o.role).collect();
        assert_eq!(
            roles,
            [Role::MarketMonitor],
            "the forged strategist is dropped"
        );
        assert_eq!(
            crate::metrics::MISATTRIBUTED_OPINIONS
                .with_label_values(&["s", "technicalAnalyst"])
                .get(),
            before + 1
        );
    }

    #[test]
    fn heartbeats_say_who_is_there_never_what_they_weigh() {
        let present = [
            beat("technical-analyst", Role::TechnicalAnalyst, 1e6),
            beat("intruder", Role::Strategist, 1e6),
            beat("impostor", Role::RiskManager, 1.0),
        ];
        let declared = [
            Voter {
                assistant: "technical-analyst".into(),
                role: Role::TechnicalAnalyst,
                weight: 1.2,
            },
            Voter {
                assistant: "impostor".into(),
                role: Role::Strategist,
                weight: 1.0,
            },
        ];
        let voters = voters_from_presence(&present, "s", Some(&declared));
        assert_eq!(voters.len(), 1, "{voters:?}");
        assert_eq!(
            (voters[0].assistant.as_str(), voters[0].weight),
            ("technical-analyst", 1.2)
        );
        let open = voters_from_presence(&present, "s", None);
        assert_eq!(open.len(), 3);
        assert!(open.iter().all(|v| v.weight == 1.0), "{open:?}");
    }
}
