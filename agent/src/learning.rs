//! The learning loop (the seed's workflow 3): score each assistant's opinions against the returns the
//! market realised after a horizon, and move the vote weights by a multiplicative-weights update.
//!
//! An opinion's reward is `confidence × tanh(edge / scale)`, where `scale` is the typical move of the
//! horizon and the edge is the return for BUY, its negation for SELL, and `scale / 2 − |return|` for
//! HOLD (standing aside is right when the market stays within half a typical move, wrong through a
//! large one).
//! Rewards are cost-aware: a BUY or SELL that reverses the voter's previous side on the symbol
//! would have paid a round trip of fees and slippage (`cost`, [`WeightLearner::with_cost`]), which
//! is taken off its edge, so a voter that flips often must be right by more than it costs.
//! Abstentions (confidence 0) earn nothing either way.
//! Rewards accumulate between updates; an update multiplies each weight by `exp(η × mean reward)`,
//! clamps it to [`MIN_FACTOR`, `MAX_FACTOR`] × its initial weight, and renormalises so the team's total
//! weight stays what the manifests declared.

use protocol::messages::Opinion;
use protocol::Action;
use std::collections::{BTreeMap, VecDeque};

/// Learning rate of the multiplicative update (chosen walk-forward on the BTCUSDT/ETHUSDT
/// 2018–2020 hourly windows: 0.5 → 1.0 moved weight to the voters that earn faster and cut the
/// team's trades by a fifth; 2.0 chased noise).
pub const ETA: f64 = 1.0;
/// Bounds of a learned weight, relative to the weight the TradingAssistant declares.
pub const MIN_FACTOR: f64 = 0.5;
/// The upper bound of a learned weight: 5 × the weight the TradingAssistant declares.
pub const MAX_FACTOR: f64 = 5.0;

/// Opinions waiting for their horizon to pass.
#[derive(Debug, Clone)]
struct Pending {
    due: i64,
    symbol: String,
    price: f64,
    /// (assistant, action, confidence, whether it reversed the assistant's previous side)
    opinions: Vec<(String, Action, f64, bool)>,
}

/// One team's learned vote weights per assistant, with the round-1 opinions waiting for their
/// horizon and the rewards accumulated since the last update.
#[derive(Debug, Clone)]
pub struct WeightLearner {
    horizon_ms: i64,
    scale: f64,
    initial: BTreeMap<String, f64>,
    weights: BTreeMap<String, f64>,
    rewards: BTreeMap<String, (f64, u64)>,
    pending: VecDeque<Pending>,
    /// A round trip's fees and slippage, as a return.
    cost: f64,
    /// Each assistant's last side (BUY or SELL) per symbol.
    sides: BTreeMap<(String, String), Action>,
}

impl WeightLearner {
    /// Learns over `horizon_ms`, with `scale` the typical absolute return over that horizon.
    pub fn new(initial: BTreeMap<String, f64>, horizon_ms: i64, scale: f64) -> Self {
        Self {
            horizon_ms,
            scale: scale.max(1e-9),
            weights: initial.clone(),
            initial,
            rewards: BTreeMap::new(),
            pending: VecDeque::new(),
            cost: 0.0,
            sides: BTreeMap::new(),
        }
    }

    /// Charges `cost` (a round trip's fees and slippage, as a return) to every opinion that
    /// reverses its voter's side.
    pub fn with_cost(mut self, cost: f64) -> Self {
        self.cost = cost.max(0.0);
        self
    }

    /// The current weight of each assistant, by name; they always sum to the declared total.
    pub fn weights(&self) -> &BTreeMap<String, f64> {
        &self.weights
    }

    /// Remembers the first-round opinions of a cycle (the assistants' own views, before the debate).
    pub fn observe(&mut self, at: i64, symbol: &str, price: f64, transcript: &[Opinion]) {
        let mut opinions = Vec::new();
        for o in transcript
            .iter()
            .filter(|o| o.round == 1 && self.weights.contains_key(&o.assistant))
        {
            let mut reversed = false;
            if o.action != Action::Hold && o.confidence > 0.0 {
                let key = (o.assistant.clone(), symbol.to_string());
                reversed = self
                    .sides
                    .insert(key, o.action)
                    .is_some_and(|a| a != o.action);
            }
            opinions.push((o.assistant.clone(), o.action, o.confidence, reversed));
        }
        if !opinions.is_empty() {
            self.pending.push_back(Pending {
                due: at + self.horizon_ms,
                symbol: symbol.to_string(),
                price,
                opinions,
            });
        }
    }

    /// Scores the opinions on `symbol` whose horizon has passed at `now`, at `price`.
    pub fn settle(&mut self, symbol: &str, now: i64, price: f64) {
        let mut i = 0;
        while i < self.pending.len() {
            let p = &self.pending[i];
            if p.due > now {
                // pending entries are in time order: nothing later is due either
                break;
            }
            if p.symbol != symbol {
                i += 1;
                continue;
            }
            let p = self.pending.remove(i).expect("index in range");
            let r = price / p.price - 1.0;
            for (assistant, action, confidence, reversed) in p.opinions {
                let edge = match action {
                    Action::Buy => r,
                    Action::Sell => -r,
                    Action::Hold => self.scale / 2.0 - r.abs(),
                } - if reversed { self.cost } else { 0.0 };
                let reward = confidence * (edge / self.scale).tanh();
                let entry = self.rewards.entry(assistant).or_default();
                entry.0 += reward;
                entry.1 += 1;
            }
        }
    }

    /// Applies the accumulated rewards; returns the weights that changed as (assistant, old, new).
    pub fn update(&mut self) -> Vec<(String, f64, f64)> {
        let before = self.weights.clone();
        for (assistant, (sum, n)) in std::mem::take(&mut self.rewards) {
            if n == 0 {
                continue;
            }
            let initial = self.initial[&assistant];
            let weight = self.weights.get_mut(&assistant).expect("known assistant");
            *weight = (*weight * (ETA * sum / n as f64).exp())
                .clamp(MIN_FACTOR * initial, MAX_FACTOR * initial);
        }
        let declared: f64 = self.initial.values().sum();
        let learned: f64 = self.weights.values().sum();
        if learned > 0.0 {
            for w in self.weights.values_mut() {
                *w *= declared / learned;
            }
        }
        self.weights
            .iter()
            .filter(|(a, w)| (before[*a] - **w).abs() > 1e-12)
            .map(|(a, w)| (a.clone(), before[a], *w))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Role;

    fn opinion(assistant: &str, action: Action) -> Opinion {
        Opinion {
            cycle_id: "c".into(),
            round: 1,
            assistant: assistant.into(),
            role: Role::TechnicalAnalyst,
            symbol: "BTCUSDT".into(),
            action,
            confidence: 1.0,
            reasoning: String::new(),
            evidence: Default::default(),
            veto: false,
            llm: false,
        }
    }

    #[test]
    fn the_right_assistant_gains_weight_and_the_total_is_kept() {
        let initial: BTreeMap<String, f64> =
            [("bull".to_string(), 1.0), ("bear".to_string(), 1.0)].into();
        let mut learner = WeightLearner::new(initial, 10, 0.01);
        for t in 0..50 {
            learner.observe(
                t * 10,
                "BTCUSDT",
                100.0 + t as f64,
                &[opinion("bull", Action::Buy), opinion("bear", Action::Sell)],
            );
            learner.settle("BTCUSDT", t * 10, 100.0 + t as f64);
        }
        let changed = learner.update();
        assert_eq!(changed.len(), 2);
        let w = learner.weights();
        assert!(w["bull"] > 1.2 && w["bear"] < 0.8, "{w:?}");
        assert!((w["bull"] + w["bear"] - 2.0).abs() < 1e-9);
    }

    #[test]
    fn weights_stay_within_bounds_and_other_symbols_wait() {
        let initial: BTreeMap<String, f64> =
            [("a".to_string(), 1.0), ("b".to_string(), 3.0)].into();
        let mut learner = WeightLearner::new(initial, 1, 0.001);
        for round in 0..100 {
            let t = round * 2;
            learner.observe(
                t,
                "ETHUSDT",
                100.0,
                &[opinion("a", Action::Buy), opinion("b", Action::Sell)],
            );
            learner.settle("BTCUSDT", t + 1, 200.0); // another symbol: nothing settles
            learner.settle("ETHUSDT", t + 1, 200.0);
            learner.update();
        }
        let w = learner.weights();
        // "a" hits its cap (5×) before renormalisation; the total stays 4
        assert!((w["a"] + w["b"] - 4.0).abs() < 1e-9);
        assert!(
            w["b"] >= MIN_FACTOR * 3.0 * 4.0 / (5.0 + MIN_FACTOR * 3.0) - 1e-9,
            "{w:?}"
        );
        assert!(w["a"] > w["b"]);
    }

    #[test]
    fn hold_is_right_in_calm_and_wrong_through_a_big_move() {
        let initial: BTreeMap<String, f64> =
            [("h".to_string(), 1.0), ("x".to_string(), 1.0)].into();
        let mut calm = WeightLearner::new(initial.clone(), 1, 0.01);
        calm.observe(0, "S", 100.0, &[opinion("h", Action::Hold)]);
        calm.settle("S", 1, 100.0);
        calm.update();
        assert!(calm.weights()["h"] > 1.0);
        let mut wild = WeightLearner::new(initial, 1, 0.01);
        wild.observe(0, "S", 100.0, &[opinion("h", Action::Hold)]);
        wild.settle("S", 1, 110.0);
        wild.update();
        assert!(wild.weights()["h"] < 1.0);
    }
}
