//! LLM reasoning through Ollama (`ollama-rs`): a role with a `model` hands its evidence, and in debate
//! rounds the others' opinions, to the model and asks for JSON `{action, confidence, reasoning}`.
//! The reply is validated; a timeout, an error or invalid JSON falls back to the role's deterministic
//! judgement, and is counted. Requests per model are bounded by a semaphore.

use crate::roles::Judgement;
use ollama_rs::generation::chat::request::ChatMessageRequest;
use ollama_rs::generation::chat::ChatMessage;
use ollama_rs::generation::parameters::FormatType;
use ollama_rs::models::ModelOptions;
use ollama_rs::Ollama;
use protocol::messages::RoundRequest;
use protocol::{Action, Role};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::Semaphore;

/// LLM requests by role, model and outcome (`ok`, or the fallback's reason).
pub static LLM_REQUESTS: LazyLock<prometheus::IntCounterVec> = LazyLock::new(|| {
    prometheus::register_int_counter_vec!(
        "ia_agent_llm_requests_total",
        "LLM requests by role, model and outcome (ok, timeout, error, invalid)",
        &["role", "model", "outcome"]
    )
    .expect("the metric is registered once")
});

/// Opinions that fell back to the deterministic rule, by role and reason.
pub static LLM_FALLBACKS: LazyLock<prometheus::IntCounterVec> = LazyLock::new(|| {
    prometheus::register_int_counter_vec!(
        "ia_agent_llm_fallbacks_total",
        "Opinions that fell back to the deterministic rule, by role and reason",
        &["role", "reason"]
    )
    .expect("the metric is registered once")
});

/// A role's model (TradingAssistant `spec.model`).
#[derive(Clone)]
pub struct LlmReasoner {
    ollama: Ollama,
    /// The Ollama model name (`llama3.2:3b`), also a label of the LLM metrics.
    pub model: String,
    /// Sampling temperature, 0 to 2 (the TradingAssistant's `spec.model.temperature`).
    pub temperature: f32,
    /// The longest one request may take; a round's own timeout can shorten it.
    pub timeout: Duration,
    permits: Arc<Semaphore>,
}

/// Why the model's answer was not used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmFailure {
    /// The model did not answer in time (the budget it had).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Ollama failed the request (unreachable, unknown model, ...).
    #[error("Ollama error: {0}")]
    Error(String),
    /// The answer is not the JSON asked for; what is wrong with it.
    #[error("invalid answer: {0}")]
    Invalid(String),
}

impl LlmFailure {
    fn reason(&self) -> &'static str {
        match self {
            LlmFailure::Timeout(_) => "timeout",
            LlmFailure::Error(_) => "error",
            LlmFailure::Invalid(_) => "invalid",
        }
    }
}

impl LlmReasoner {
    /// `url` is Ollama's base URL (`http://ollama:11434`); at most `concurrency` requests at once.
    pub fn new(
        url: &str,
        model: &str,
        temperature: f32,
        timeout: Duration,
        concurrency: usize,
    ) -> Result<Self, String> {
        let ollama = Ollama::try_new(url).map_err(|e| format!("Ollama URL {url:?}: {e}"))?;
        Ok(Self {
            ollama,
            model: model.to_string(),
            temperature,
            timeout,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        })
    }

    /// How long the model may take on `request`: its own timeout, and within the round's (nine
    /// tenths of it, the rest for the answer's way back), so that a slow model costs the round the
    /// model's view, never the assistant's vote.
    pub fn budget(&self, request: &RoundRequest) -> Duration {
        match request.round_timeout_ms {
            0 => self.timeout,
            round => self.timeout.min(Duration::from_millis(round) * 9 / 10),
        }
    }

    /// The model's judgement, or the deterministic one (with the reason) when the model fails or
    /// does not answer within [`budget`](Self::budget) (waiting for a free request slot included).
    pub async fn judge(
        &self,
        role: Role,
        request: &RoundRequest,
        deterministic: Judgement,
    ) -> (Judgement, bool) {
        let budget = self.budget(request);
        let asked = tokio::time::timeout(budget, self.ask(role, request, &deterministic))
            .await
            .unwrap_or(Err(LlmFailure::Timeout(budget)));
        match asked {
            Ok(judgement) => {
                LLM_REQUESTS
                    .with_label_values(&[role.as_str(), &self.model, "ok"])
                    .inc();
                (judgement, true)
            }
            Err(failure) => {
                LLM_REQUESTS
                    .with_label_values(&[role.as_str(), &self.model, failure.reason()])
                    .inc();
                LLM_FALLBACKS
                    .with_label_values(&[role.as_str(), failure.reason()])
                    .inc();
                tracing::warn!(%role, model = %self.model, %failure, "LLM fell back to the deterministic rule");
                let mut j = deterministic;
                j.reasoning = format!("{} [LLM fallback: {failure}]", j.reasoning);
                (j, false)
            }
        }
    }

    async fn ask(
        &self,
        role: Role,
        request: &RoundRequest,
        deterministic: &Judgement,
    ) -> Result<Judgement, LlmFailure> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| LlmFailure::Error(e.to_string()))?;
        let chat = ChatMessageRequest::new(
            self.model.clone(),
            vec![
                ChatMessage::system(system_prompt(role)),
                ChatMessage::user(prompt(request, deterministic)),
            ],
        )
        .format(FormatType::Json)
        .options(ModelOptions::default().temperature(self.temperature));
        let reply = self
            .ollama
            .send_chat_messages(chat)
            .await
            .map_err(|e| LlmFailure::Error(e.to_string()))?;
        let mut judgement = parse_answer(&reply.message.content).map_err(LlmFailure::Invalid)?;
        // the figures stay the deterministic ones: the model interprets them, it does not invent them
        judgement.evidence = deterministic.evidence.clone();
        judgement.veto = deterministic.veto;
        Ok(judgement)
    }
}

fn system_prompt(role: Role) -> String {
    format!(
        "You are the {role} of a crypto trading team that decides by weighted vote. Judge only from the \
         figures you are given. Answer with one JSON object: {{\"action\": \"BUY\" | \"SELL\" | \"HOLD\", \
         \"confidence\": number between 0 and 1, \"reasoning\": one or two sentences}}."
    )
}

/// The user prompt: the market, the role's own figures and rule-based view, and the debate so far.
pub fn prompt(request: &RoundRequest, deterministic: &Judgement) -> String {
    let s = &request.snapshot;
    let mut text = format!(
        "Symbol {} at close {} (round {} of a consensus cycle).\nIndicators: {}\nPortfolio: {}\n",
        s.symbol,
        s.close,
        request.round,
        serde_json::to_string(&s.indicators).unwrap_or_default(),
        serde_json::to_string(&s.portfolio).unwrap_or_default(),
    );
    text.push_str(&format!(
        "Your rule-based reading: {} at confidence {:.2} because {}; figures {}.\n",
        deterministic.action,
        deterministic.confidence,
        deterministic.reasoning,
        serde_json::to_string(&deterministic.evidence).unwrap_or_default()
    ));
    if !request.debate.is_empty() {
        text.push_str("The other members said last round:\n");
        for o in &request.debate {
            text.push_str(&format!(
                "- {} ({}): {} at {:.2}: {}\n",
                o.assistant, o.role, o.action, o.confidence, o.reasoning
            ));
        }
        text.push_str("You may keep or revise your view.\n");
    }
    text
}

/// Validates the model's JSON answer.
pub fn parse_answer(content: &str) -> Result<Judgement, String> {
    let value: serde_json::Value = serde_json::from_str(content.trim())
        .map_err(|e| format!("not JSON ({e}): {:.80}", content))?;
    let action = match value
        .get("action")
        .and_then(|a| a.as_str())
        .map(str::to_ascii_uppercase)
    {
        Some(a) if a == "BUY" => Action::Buy,
        Some(a) if a == "SELL" => Action::Sell,
        Some(a) if a == "HOLD" => Action::Hold,
        other => {
            return Err(format!(
                "field action must be BUY, SELL or HOLD, got {other:?}"
            ))
        }
    };
    let confidence = value
        .get("confidence")
        .and_then(|c| c.as_f64())
        .filter(|c| (0.0..=1.0).contains(c))
        .ok_or_else(|| {
            format!(
                "field confidence must be a number in [0, 1], got {}",
                value["confidence"]
            )
        })?;
    let reasoning = value
        .get("reasoning")
        .and_then(|r| r.as_str())
        .filter(|r| !r.trim().is_empty())
        .ok_or("field reasoning must be a non-empty string")?;
    Ok(Judgement::new(
        action,
        confidence,
        reasoning.chars().take(1000).collect::<String>(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::stream::arbitrary::{corrupt, json, mutate};
    use proptest::prelude::*;
    use serde_json::{json, Value};

    #[test]
    fn answers_are_validated_field_by_field() {
        let j =
            parse_answer(r#"{"action":"buy","confidence":0.7,"reasoning":"momentum"}"#).unwrap();
        assert_eq!((j.action, j.confidence), (Action::Buy, 0.7));
        for (bad, field) in [
            ("not json", "not JSON"),
            (
                r#"{"action":"MOON","confidence":0.5,"reasoning":"x"}"#,
                "field action",
            ),
            (
                r#"{"action":"BUY","confidence":1.5,"reasoning":"x"}"#,
                "field confidence",
            ),
            (
                r#"{"action":"BUY","confidence":0.5,"reasoning":""}"#,
                "field reasoning",
            ),
        ] {
            let e = parse_answer(bad).unwrap_err();
            assert!(e.starts_with(field), "{e}");
        }
    }

    /// A model's answer: valid, or off in the ways models are (case, range, type, length).
    fn arb_answer() -> impl Strategy<Value = Value> {
        let action = prop::sample::select(vec!["BUY", "sell", "Hold", "MOON", "", "BUY "]);
        let confidence = prop_oneof![
            (0.0f64..=1.0).prop_map(Value::from),
            (-2.0f64..3.0).prop_map(Value::from),
            Just(Value::from("0.5")),
        ];
        (action, confidence, prop_oneof![".{0,40}", ".{990,1010}"]).prop_map(
            |(action, confidence, reasoning)| {
                json!({"action": action, "confidence": confidence, "reasoning": reasoning})
            },
        )
    }

    /// What validating an answer must guarantee: no panic, and a judgement within bounds.
    fn check_total(content: &str) -> Result<(), TestCaseError> {
        if let Ok(j) = parse_answer(content) {
            prop_assert!((0.0..=1.0).contains(&j.confidence));
            prop_assert!(!j.reasoning.trim().is_empty() && j.reasoning.chars().count() <= 1000);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any answer, mutated or corrupted, or any text: a judgement within bounds or an error.
        #[test]
        fn any_model_answer_is_validated(mut answer in arb_answer(), node in any::<usize>(), by in prop::option::of(json()), flip in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>(), text in ".{0,200}") {
            check_total(&answer.to_string())?;
            check_total(&corrupt(&answer.to_string(), flip, byte, cut))?;
            check_total(&text)?;
            mutate(&mut answer, node, by);
            check_total(&answer.to_string())?;
        }
    }
}
