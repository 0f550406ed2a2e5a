//! The assistants' reasoning: one [`Analyst`] per voting role, each turning a [`RoundRequest`] into a
//! [`Judgement`] by a deterministic, documented rule (the LLM path wraps these and falls back to them).
//!
//! - [`technical`]: scores indicator signals;
//! - [`monitor`]: momentum and volume anomalies (and the ALERT detector that starts cycles);
//! - [`fundamental`]: news sentiment per symbol;
//! - [`risk`]: position sizing and limits, with the veto;
//! - [`strategist`]: the trend over a week, a month and a quarter, nudged by the ML forecast;
//! - [`debate`]: why a deterministic voter's view stands in a debate (no herding).
//!
//! A voter without evidence abstains ([`Judgement::abstain`]): it never votes HOLD with confidence
//! for want of a view.

pub mod debate;
pub mod fundamental;
pub mod monitor;
pub mod risk;
pub mod strategist;
pub mod technical;

use protocol::crd::RiskSpec;
use protocol::messages::{Opinion, RoundRequest};
use protocol::{Action, Role};
use std::collections::BTreeMap;

/// What an analyst concludes, before it is addressed to a cycle as an [`Opinion`].
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The action the analyst argues for; HOLD when it abstains or vetoes.
    pub action: Action,
    /// In [0, 1].
    pub confidence: f64,
    /// Why, in a sentence for humans: it goes into the transcript (and names the limit of a veto).
    pub reasoning: String,
    /// The figures the judgement rests on, by name (finite values only); the executor reads the
    /// risk manager's `position_fraction` from it.
    pub evidence: protocol::messages::Evidence,
    /// Forces HOLD whatever the tally (honoured only from the policy's veto roles).
    pub veto: bool,
}

impl Judgement {
    /// A judgement without evidence or veto; `confidence` is clamped to [0, 1].
    pub fn new(action: Action, confidence: f64, reasoning: impl Into<String>) -> Self {
        Self {
            action,
            confidence: confidence.clamp(0.0, 1.0),
            reasoning: reasoning.into(),
            evidence: BTreeMap::new(),
            veto: false,
        }
    }

    /// No view: HOLD at confidence 0, which the tally counts for nothing (the voter answered, so
    /// it counts towards the quorum, but it moves no share) and the debate ignores.
    pub fn abstain(reasoning: impl Into<String>) -> Self {
        Self::new(Action::Hold, 0.0, reasoning)
    }

    /// Adds a figure the judgement rests on, under a name of the rule's own (static: no
    /// allocation per cycle).
    pub fn with(mut self, name: &'static str, value: f64) -> Self {
        if value.is_finite() {
            self.evidence.insert(name.into(), value);
        }
        self
    }

    /// Addresses the judgement to the cycle and round of `request`.
    pub fn into_opinion(self, request: &RoundRequest, assistant: &str, role: Role) -> Opinion {
        Opinion {
            cycle_id: request.cycle_id.clone(),
            round: request.round,
            assistant: assistant.to_string(),
            role,
            symbol: request.snapshot.symbol.clone(),
            action: self.action,
            confidence: self.confidence,
            reasoning: self.reasoning,
            evidence: self.evidence,
            veto: self.veto,
            llm: false,
        }
    }
}

/// One role's deterministic reasoning.
pub trait Analyst: Send + Sync {
    /// The role whose opinions this analyst gives, stamped on each [`Opinion`].
    fn role(&self) -> Role;

    /// The view of the snapshot alone (round 1).
    fn analyze(&self, request: &RoundRequest) -> Judgement;

    /// The view in a debate round: by default the round-1 view revised by [`debate::revise`].
    fn debate(&self, request: &RoundRequest, assistant: &str) -> Judgement {
        debate::revise(self.analyze(request), &request.debate, assistant)
    }

    /// The judgement for a round request: the snapshot alone in round 1, the debate afterwards.
    fn judge(&self, request: &RoundRequest, assistant: &str) -> Judgement {
        if request.round <= 1 || request.debate.is_empty() {
            self.analyze(request)
        } else {
            self.debate(request, assistant)
        }
    }

    /// Answers a round request as `assistant`.
    fn answer(&self, request: &RoundRequest, assistant: &str) -> Opinion {
        self.judge(request, assistant)
            .into_opinion(request, assistant, self.role())
    }
}

/// Role parameters as TradingAssistant `spec.params` carries them (strings), read with defaults.
#[derive(Debug, Clone, Default)]
pub struct Params(pub BTreeMap<String, String>);

/// A parameter that is present but not usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("params.{name}: {value:?} is not {expected}")]
pub struct ParamError {
    /// The parameter's key in `spec.params`, e.g. `alertThreshold`.
    pub name: String,
    /// The value given, as written.
    pub value: String,
    /// What the value should be, e.g. "a finite number".
    pub expected: &'static str,
}

impl Params {
    /// A number parameter, `default` when absent.
    pub fn number(&self, name: &str, default: f64) -> Result<f64, ParamError> {
        match self.0.get(name) {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| ParamError {
                    name: name.to_string(),
                    value: text.clone(),
                    expected: "a finite number",
                }),
        }
    }

    /// A comma-separated list parameter, empty when absent.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.0
            .get(name)
            .map(|text| {
                text.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The analyst of a voting role, with its parameters and the Strategy's risk limits.
/// Executor and auditor do not vote: `None`.
pub fn analyst_for(
    role: Role,
    params: &Params,
    risk: &RiskSpec,
) -> Result<Option<Box<dyn Analyst>>, ParamError> {
    Ok(Some(match role {
        Role::MarketMonitor => Box::new(monitor::MarketMonitor::from_params(params)?),
        Role::TechnicalAnalyst => Box::new(technical::TechnicalAnalyst),
        Role::FundamentalAnalyst => Box::new(fundamental::FundamentalAnalyst::default()),
        Role::RiskManager => Box::new(risk::RiskManager::new(risk.clone())),
        Role::Strategist => Box::new(strategist::Strategist::default()),
        Role::Executor | Role::Auditor => return Ok(None),
    }))
}

/// Test helpers: a round request over a snapshot.
#[cfg(test)]
pub(crate) mod testing {
    use protocol::messages::{Indicators, MarketSnapshot, PortfolioContext, RoundRequest};

    pub fn request(
        close: f64,
        indicators: Indicators,
        portfolio: PortfolioContext,
    ) -> RoundRequest {
        RoundRequest {
            cycle_id: "c-1".into(),
            round: 1,
            strategy: "s".into(),
            snapshot: MarketSnapshot {
                symbol: "BTCUSDT".into(),
                open_time: 0,
                open: close,
                high: close,
                low: close,
                close,
                volume: 1.0,
                indicators,
                portfolio,
            },
            debate: vec![],
            deadline: 0,
            round_timeout_ms: 0,
        }
    }
}
