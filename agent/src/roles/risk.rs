//! The risk manager: sizes positions from volatility and guards the Strategy's `risk` limits.
//!
//! - Sizing by volatility: a position whose own volatility is [`TARGET_VOLATILITY`] of equity a
//!   year (`0.30 / realised volatility`), capped by `maxPositionFraction`, and shrunk linearly as
//!   the drawdown uses up `maxDrawdown` (`evidence.position_fraction`, which the executor uses).
//!   Before the volatility is known: half the cap.
//! - Exits: a held position past its stop-loss or take-profit, or any limit broken while holding,
//!   is a SELL at high confidence.
//! - Veto (forces HOLD on the whole team): while flat, when drawdown ≥ `maxDrawdown`, the day's loss
//!   ≥ `dailyLossLimit`, `maxOpenPositions` are already open, or one candle's typical range (ATR)
//!   exceeds the stop-loss distance, or the trend is down over most of its horizons (a week, a
//!   month, a quarter: no new long against it, the rule that keeps a long-only team out of bear
//!   markets). The reasoning names the limit.
//! - Otherwise it raises no objection and abstains (confidence 0, in every round: following the
//!   majority is not a risk view), its sizing still in the evidence.

use super::{Analyst, Judgement};
use protocol::crd::RiskSpec;
use protocol::messages::{PortfolioContext, RoundRequest};
use protocol::{Action, Role};

/// The yearly volatility one position may add to equity (0.30 = 30% a year), chosen on the
/// BTCUSDT/ETHUSDT 2017–2020 hourly candles.
pub const TARGET_VOLATILITY: f64 = 0.30;

/// The strategist's trend score under which no new long is opened (the trend veto): more of its
/// horizons down than up, the score at which the strategist itself says SELL. A constant of its
/// own, so that retuning the strategist's entry does not move the veto unseen.
pub const TREND_VETO: f64 = -0.3;

/// The share of equity a position in a market of annualised `volatility` should take under
/// `limits` at `drawdown`: [`TARGET_VOLATILITY`] over the volatility, capped by
/// `maxPositionFraction`, shrunk linearly to nothing as the drawdown reaches `maxDrawdown`.
pub fn target_fraction(limits: &RiskSpec, volatility: Option<f64>, drawdown: f64) -> f64 {
    let cap = limits.max_position_fraction;
    let size = match volatility {
        Some(v) if v > 0.0 => (TARGET_VOLATILITY / v).min(cap),
        _ => cap * 0.5,
    };
    let headroom = if limits.max_drawdown > 0.0 {
        (1.0 - drawdown / limits.max_drawdown).clamp(0.0, 1.0)
    } else {
        1.0
    };
    size * headroom
}

/// The loss limit (drawdown, then the day's loss) the portfolio breaks, named as in the Strategy.
/// The risk manager votes on it and the executor re-checks it before any order.
pub fn loss_limit_broken(l: &RiskSpec, p: &PortfolioContext) -> Option<String> {
    if p.drawdown >= l.max_drawdown {
        return Some(format!(
            "drawdown {:.1}% reaches risk.maxDrawdown {:.1}%",
            p.drawdown * 100.0,
            l.max_drawdown * 100.0
        ));
    }
    if p.daily_loss >= l.daily_loss_limit {
        return Some(format!(
            "today's loss {:.1}% reaches risk.dailyLossLimit {:.1}%",
            p.daily_loss * 100.0,
            l.daily_loss_limit * 100.0
        ));
    }
    None
}

/// Sizes positions and guards the limits (see the module): a SELL on a stop, a target or a broken
/// limit while holding, a veto on a new position past a limit, otherwise an abstention with its
/// sizing in evidence. It never votes BUY.
#[derive(Debug, Clone)]
pub struct RiskManager {
    /// The Strategy's `risk` limits it sizes by and enforces.
    pub limits: RiskSpec,
}

impl RiskManager {
    /// A risk manager enforcing `limits`.
    pub fn new(limits: RiskSpec) -> Self {
        Self { limits }
    }

    /// The fraction of equity a position should take ([`target_fraction`]).
    pub fn position_fraction(&self, volatility: Option<f64>, drawdown: f64) -> f64 {
        target_fraction(&self.limits, volatility, drawdown)
    }
}

impl Analyst for RiskManager {
    fn role(&self) -> Role {
        Role::RiskManager
    }

    fn analyze(&self, request: &RoundRequest) -> Judgement {
        let s = &request.snapshot;
        let p = &s.portfolio;
        let atr_fraction = s.indicators.atr_14.map(|atr| atr / s.close);
        let size = self.position_fraction(s.indicators.volatility, p.drawdown);
        let evidence = |j: Judgement| {
            j.with("position_fraction", size)
                .with("atr_fraction", atr_fraction.unwrap_or(f64::NAN))
                .with("drawdown", p.drawdown)
                .with("daily_loss", p.daily_loss)
        };
        let holding = p.position_fraction > 0.0;
        if let (true, Some(entry)) = (holding, p.entry_price) {
            let change = s.close / entry - 1.0;
            if change <= -self.limits.stop_loss {
                return evidence(Judgement::new(
                    Action::Sell,
                    0.95,
                    format!(
                        "position {:+.1}% from entry breaks risk.stopLoss {:.1}%",
                        change * 100.0,
                        self.limits.stop_loss * 100.0
                    ),
                ));
            }
            if change >= self.limits.take_profit {
                return evidence(Judgement::new(
                    Action::Sell,
                    0.8,
                    format!(
                        "position {:+.1}% from entry reaches risk.takeProfit {:.1}%",
                        change * 100.0,
                        self.limits.take_profit * 100.0
                    ),
                ));
            }
        }
        if let Some(limit) = loss_limit_broken(&self.limits, p) {
            if holding {
                return evidence(Judgement::new(
                    Action::Sell,
                    0.9,
                    format!("{limit}: reduce exposure"),
                ));
            }
            let mut veto = Judgement::new(Action::Hold, 1.0, format!("veto: {limit}"));
            veto.veto = true;
            return evidence(veto);
        }
        if !holding && p.open_positions >= self.limits.max_open_positions {
            let mut veto = Judgement::new(
                Action::Hold,
                1.0,
                format!(
                    "veto: {} positions open, risk.maxOpenPositions is {}",
                    p.open_positions, self.limits.max_open_positions
                ),
            );
            veto.veto = true;
            return evidence(veto);
        }
        if let Some((trend, _)) =
            super::strategist::trend(s).filter(|(t, _)| !holding && *t < TREND_VETO)
        {
            let mut veto = Judgement::new(
                Action::Hold,
                1.0,
                format!(
                    "veto: the trend is down over most of a week, a month and a quarter (score {trend:+.2}): no new long against it"
                ),
            );
            veto.veto = true;
            return evidence(veto).with("trend_score", trend);
        }
        if let Some(v) = atr_fraction.filter(|v| !holding && *v >= self.limits.stop_loss) {
            let mut veto = Judgement::new(
                Action::Hold,
                1.0,
                format!(
                    "veto: one candle's range (ATR {:.1}% of price) exceeds risk.stopLoss {:.1}%",
                    v * 100.0,
                    self.limits.stop_loss * 100.0
                ),
            );
            veto.veto = true;
            return evidence(veto);
        }
        evidence(Judgement::abstain(format!(
            "within limits; a position should take {:.1}% of equity",
            size * 100.0
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::testing::request;
    use protocol::messages::{Indicators, Opinion, PortfolioContext};

    fn limits() -> RiskSpec {
        RiskSpec {
            max_position_fraction: 0.25,
            stop_loss: 0.05,
            take_profit: 0.10,
            max_open_positions: 2,
            daily_loss_limit: 0.05,
            max_drawdown: 0.20,
        }
    }

    fn judge(close: f64, atr: f64, portfolio: PortfolioContext) -> Judgement {
        let i = Indicators {
            atr_14: Some(atr),
            ..Default::default()
        };
        RiskManager::new(limits()).analyze(&request(close, i, portfolio))
    }

    #[test]
    fn sizes_from_volatility_under_the_cap() {
        let rm = RiskManager::new(limits());
        // 0.30 / 0.6 = 0.5, capped at 0.25; 0.30 / 2.4 = 0.125
        assert!((rm.position_fraction(Some(0.6), 0.0) - 0.25).abs() < 1e-12);
        assert!((rm.position_fraction(Some(2.4), 0.0) - 0.125).abs() < 1e-12);
        // half of maxDrawdown used: half the size
        assert!((rm.position_fraction(Some(2.4), 0.1) - 0.0625).abs() < 1e-12);
        assert!((rm.position_fraction(None, 0.0) - 0.125).abs() < 1e-12);
    }

    #[test]
    fn vetoes_new_exposure_past_a_limit_and_names_it() {
        let j = judge(
            100.0,
            1.0,
            PortfolioContext {
                drawdown: 0.21,
                ..Default::default()
            },
        );
        assert!(j.veto && j.action == Action::Hold);
        assert!(j.reasoning.contains("risk.maxDrawdown"), "{}", j.reasoning);
        let j = judge(
            100.0,
            1.0,
            PortfolioContext {
                open_positions: 2,
                ..Default::default()
            },
        );
        assert!(
            j.veto && j.reasoning.contains("risk.maxOpenPositions"),
            "{}",
            j.reasoning
        );
        let j = judge(100.0, 6.0, PortfolioContext::default());
        assert!(
            j.veto && j.reasoning.contains("risk.stopLoss"),
            "{}",
            j.reasoning
        );
        let j = judge(
            100.0,
            1.0,
            PortfolioContext {
                daily_loss: 0.06,
                ..Default::default()
            },
        );
        assert!(
            j.veto && j.reasoning.contains("risk.dailyLossLimit"),
            "{}",
            j.reasoning
        );
    }

    #[test]
    fn exits_a_position_rather_than_vetoing() {
        let holding = |entry: f64, drawdown: f64| PortfolioContext {
            position_fraction: 0.2,
            entry_price: Some(entry),
            open_positions: 1,
            drawdown,
            ..Default::default()
        };
        let stop = judge(94.0, 1.0, holding(100.0, 0.0));
        assert_eq!((stop.action, stop.veto), (Action::Sell, false));
        assert!(stop.reasoning.contains("risk.stopLoss"));
        let take = judge(111.0, 1.0, holding(100.0, 0.0));
        assert!(take.action == Action::Sell && take.reasoning.contains("risk.takeProfit"));
        let limit = judge(100.0, 1.0, holding(100.0, 0.25));
        assert_eq!((limit.action, limit.veto), (Action::Sell, false));
    }

    #[test]
    fn without_objection_it_abstains_in_debate_too() {
        let mut r = request(
            100.0,
            Indicators {
                atr_14: Some(1.0),
                ..Default::default()
            },
            PortfolioContext {
                drawdown: 0.1,
                ..Default::default()
            },
        );
        r.round = 2;
        let o = |assistant: &str, action| Opinion {
            cycle_id: "c-1".into(),
            round: 1,
            assistant: assistant.into(),
            role: Role::TechnicalAnalyst,
            symbol: "BTCUSDT".into(),
            action,
            confidence: 0.8,
            reasoning: String::new(),
            evidence: Default::default(),
            veto: false,
            llm: false,
        };
        r.debate = vec![o("a", Action::Buy), o("b", Action::Buy)];
        let j = RiskManager::new(limits()).debate(&r, "risk");
        assert_eq!(
            (j.action, j.confidence),
            (Action::Hold, 0.0),
            "{}",
            j.reasoning
        );
        assert!(j.evidence.contains_key("position_fraction"));
    }
}
