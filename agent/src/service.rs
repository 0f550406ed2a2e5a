//! One assistant serving its role on the bus: heartbeats into the presence bucket and answers
//! `analyze` requests of its strategy (replicas share them through the role's queue group).

use crate::bus::{Bus, BusError, PRESENCE_TTL};
use crate::llm::LlmReasoner;
use crate::roles::Analyst;
use protocol::messages::{Heartbeat, Message};
use protocol::subjects::Subjects;
use protocol::Role;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// An assistant instance.
pub struct AssistantService<B: Bus> {
    /// The bus it serves on (NATS, or in memory in tests).
    pub bus: B,
    /// The team's subjects: its `analyze` subject, queue group and presence key.
    pub subjects: Subjects,
    /// The Strategy it answers for; round requests of another are ignored.
    pub strategy: String,
    /// The TradingAssistant's name.
    pub assistant: String,
    /// This replica (pod name, or host and pid).
    pub instance: String,
    /// The role it votes as.
    pub role: Role,
    /// Its declared vote weight, announced in its heartbeats.
    pub weight: f64,
    /// The role's deterministic reasoning, which the model (if any) may revise.
    pub analyst: Arc<dyn Analyst>,
    /// How often presence is renewed (a third of the TTL by default).
    pub heartbeat_every: Duration,
    /// The role's model, when the TradingAssistant has one.
    pub llm: Option<LlmReasoner>,
}

impl<B: Bus> AssistantService<B> {
    /// Serves until `shutdown` resolves. Connection drops are the bus's to heal (async-nats
    /// reconnects and resubscribes); heartbeats that fail are logged and retried on the next beat.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<u64, BusError> {
        let subject = self.subjects.analyze(self.role);
        let mut requests = self
            .bus
            .serve(&subject, &self.subjects.analyze_queue_group(self.role))
            .await?;
        let key = self
            .subjects
            .presence_key(self.role, &self.instance)
            .map_err(|e| BusError::Nats {
                subject: subject.clone(),
                error: e.to_string(),
            })?;
        let heartbeat = Heartbeat {
            assistant: self.assistant.clone(),
            role: self.role,
            instance: self.instance.clone(),
            strategy: self.strategy.as_str().into(),
            weight: self.weight,
            at: 0,
        };
        let beating = {
            let bus = self.bus.clone();
            let every = self.heartbeat_every;
            tokio::spawn(async move {
                loop {
                    let beat = Heartbeat {
                        at: chrono::Utc::now().timestamp_millis(),
                        ..heartbeat.clone()
                    };
                    if let Err(error) = bus.announce(&key, &beat).await {
                        tracing::warn!(%error, "heartbeat failed; retrying on the next beat");
                    }
                    tokio::time::sleep(every).await;
                }
            })
        };
        tracing::info!(%subject, assistant = %self.assistant, instance = %self.instance, "serving");
        let mut answered = 0u64;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                request = requests.recv() => {
                    let Some(incoming) = request else { break };
                    match incoming.message.as_ref() {
                        Message::RoundRequest(r) if r.strategy == self.strategy => {
                            let started = std::time::Instant::now();
                            let judgement = self.analyst.judge(r, &self.assistant);
                            let (judgement, llm) = match &self.llm {
                                Some(model) => model.judge(self.role, r, judgement).await,
                                None => (judgement, false),
                            };
                            let mut opinion = judgement.into_opinion(r, &self.assistant, self.role);
                            opinion.llm = llm;
                            crate::metrics::OPINION_SECONDS
                                .with_label_values(&[self.role.as_str()])
                                .observe(started.elapsed().as_secs_f64());
                            if let Err(error) = incoming.reply(Message::Opinion(opinion)).await {
                                tracing::warn!(%error, "could not answer a round request");
                            } else {
                                answered += 1;
                            }
                        }
                        other => tracing::warn!(kind = other.type_name(), "ignored a message on the analyze subject"),
                    }
                }
            }
        }
        beating.abort();
        Ok(answered)
    }
}

/// The default heartbeat period.
pub fn default_heartbeat() -> Duration {
    PRESENCE_TTL / 3
}
