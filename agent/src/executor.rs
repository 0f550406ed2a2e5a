//! The executor: turns a decision into a target position and the order that reaches it,
//! re-checking every risk limit first (defence in depth: the risk manager may have been outvoted,
//! absent or wrong). A refusal is recorded with its reason.
//!
//! Decisions are target positions, not flips (docs/architecture.md, "How the team decides"):
//! - BUY: hold a position of the target size (the risk manager's `position_fraction`, or the same
//!   volatility rule, [`crate::roles::risk::target_fraction`], when it did not speak);
//! - SELL: be flat, but only once the position has been held [`Executor::min_hold_ms`] (a risk
//!   manager's SELL, an exit on a broken limit, goes at once);
//! - HOLD: keep what is held.
//!
//! While holding, the position is resized towards the target only when it is off by more than
//! [`REBALANCE_BAND`] of itself: smaller corrections would cost more in fees than they save.

use crate::exchange::PaperExchange;
use protocol::crd::{OrderType, RiskSpec};
use protocol::messages::{Decision, Order, OrderKind, PortfolioContext, Side};
use protocol::{Action, Role};
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

/// What the executor does with a decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Place this order: it opens, resizes or closes the position.
    Trade(Order),
    /// Nothing to do (HOLD, already positioned, nothing to sell).
    Nothing(String),
    /// A trade the limits forbid; the reason names the limit.
    Refused(String),
}

/// Plans one Strategy's orders from its decisions, under its risk limits.
#[derive(Debug, Clone)]
pub struct Executor {
    /// The Strategy's name, stamped on its orders and named when a trade is refused while paused.
    pub strategy: String,
    /// The Strategy's `risk` limits, re-checked before every order; `maxPositionFraction` caps the
    /// target size.
    pub limits: RiskSpec,
    /// The Strategy's `spec.paused`: while true every trade is refused.
    pub paused: bool,
    /// Market orders, or limit orders `limit_offset_bps` better than the decision's price.
    pub order_type: OrderType,
    /// For limit orders, how far below (buys) or above (sells) the decision's price the limit sits,
    /// in basis points; unused for market orders.
    pub limit_offset_bps: f64,
    /// How long a position is held before a team's SELL closes it (48 candles in a replay).
    pub min_hold_ms: i64,
}

/// Quantities are rounded down to Binance's finest lot step.
const QUANTITY_DP: u32 = 8;

/// A held position is resized only when it is off its target by more than this share of itself
/// (chosen on the BTCUSDT/ETHUSDT 2017–2020 hourly candles).
pub const REBALANCE_BAND: f64 = 0.5;

/// What the executor knows of the market at the decision.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Market {
    /// Annualised realised volatility of the symbol, once known.
    pub volatility: Option<f64>,
}

impl Executor {
    /// Plans the order for `decision`, given the exchange's state, the portfolio context and the
    /// market.
    pub fn plan(
        &self,
        decision: &Decision,
        exchange: &PaperExchange,
        context: &PortfolioContext,
        market: Market,
    ) -> Plan {
        let symbol = &decision.symbol;
        if decision.rejected {
            return Plan::Nothing(format!(
                "the cycle was rejected: no order for {symbol}, not even a resize"
            ));
        }
        let held = exchange.position(symbol);
        if decision.action == Action::Hold && held.is_none() {
            return Plan::Nothing("HOLD".into());
        }
        if exchange.resting(symbol).next().is_some() {
            return Plan::Nothing(format!("a limit order for {symbol} is still open"));
        }
        let plan = match (decision.action, held) {
            (Action::Sell, None) => {
                Plan::Nothing(format!("no {symbol} position to sell (spot: no shorting)"))
            }
            (Action::Sell, Some(position)) => {
                let held_ms = decision.decided_at - position.opened_at;
                if held_ms < self.min_hold_ms && !risk_exit(decision) {
                    Plan::Nothing(format!(
                        "{symbol} held {} min of the {} min minimum before a SELL",
                        held_ms / 60_000,
                        self.min_hold_ms / 60_000
                    ))
                } else {
                    self.order(decision, Side::Sell, position.quantity)
                }
            }
            (_, held) => {
                let target = sizing(decision)
                    .unwrap_or_else(|| {
                        crate::roles::risk::target_fraction(
                            &self.limits,
                            market.volatility,
                            context.drawdown,
                        )
                    })
                    .min(self.limits.max_position_fraction);
                match held {
                    None => self.open(decision, exchange, context, target),
                    Some(position) => self.resize(decision, position.quantity, context, target),
                }
            }
        };
        match plan {
            Plan::Trade(_) if self.paused => Plan::Refused(format!(
                "Strategy {} is paused (spec.paused)",
                self.strategy
            )),
            plan => plan,
        }
    }

    /// A new position of `target` × equity.
    fn open(
        &self,
        decision: &Decision,
        exchange: &PaperExchange,
        context: &PortfolioContext,
        target: f64,
    ) -> Plan {
        let symbol = &decision.symbol;
        if let Some(reason) = self.limit_broken(context) {
            return Plan::Refused(reason);
        }
        let budget = exchange.equity() * Decimal::from_f64(target).unwrap_or_default();
        let price = Decimal::from_f64(decision.price).unwrap_or_default();
        if price <= Decimal::ZERO {
            return Plan::Refused(format!("no usable price for {symbol}"));
        }
        let quantity = (budget.min(exchange.cash()) / price)
            .round_dp_with_strategy(QUANTITY_DP, RoundingStrategy::ToZero);
        if quantity <= Decimal::ZERO {
            return Plan::Nothing(format!("no cash left for {symbol}"));
        }
        self.order(decision, Side::Buy, quantity)
    }

    /// Resizes a held `quantity` towards `target` × equity when it is outside the band.
    fn resize(
        &self,
        decision: &Decision,
        quantity: Decimal,
        context: &PortfolioContext,
        target: f64,
    ) -> Plan {
        let symbol = &decision.symbol;
        let current = context.position_fraction;
        if current <= 0.0 || (target - current).abs() <= REBALANCE_BAND * current {
            return Plan::Nothing(format!(
                "holding {symbol} at {:.1}% of equity, target {:.1}%: within the band",
                current * 100.0,
                target * 100.0
            ));
        }
        let scale = Decimal::from_f64((target - current).abs() / current).unwrap_or_default();
        let change =
            (quantity * scale).round_dp_with_strategy(QUANTITY_DP, RoundingStrategy::ToZero);
        if change <= Decimal::ZERO {
            return Plan::Nothing(format!("{symbol}: nothing to resize"));
        }
        if target > current {
            if let Some(reason) = self.limit_broken_holding(context) {
                return Plan::Refused(reason);
            }
            self.order(decision, Side::Buy, change)
        } else {
            self.order(decision, Side::Sell, change.min(quantity))
        }
    }

    fn order(&self, decision: &Decision, side: Side, quantity: Decimal) -> Plan {
        let (kind, limit_price) = match self.order_type {
            OrderType::Market => (OrderKind::Market, None),
            OrderType::Limit => (OrderKind::Limit, self.limit_price(side, decision.price)),
        };
        Plan::Trade(Order {
            decision_id: decision.id.clone(),
            strategy: self.strategy.as_str().into(),
            symbol: decision.symbol.clone(),
            side,
            kind,
            quantity,
            limit_price,
            at: decision.decided_at,
        })
    }

    /// A limit `limit_offset_bps` below (buys) or above (sells) `price`, to the cent's hundredth.
    fn limit_price(&self, side: Side, price: f64) -> Option<Decimal> {
        let offset = self.limit_offset_bps / 10_000.0;
        let limit = match side {
            Side::Buy => price * (1.0 - offset),
            Side::Sell => price * (1.0 + offset),
        };
        Decimal::from_f64(limit).map(|d| d.round_dp(4))
    }

    /// A loss limit that forbids adding to a held position.
    fn limit_broken_holding(&self, c: &PortfolioContext) -> Option<String> {
        crate::roles::risk::loss_limit_broken(&self.limits, c)
    }

    fn limit_broken(&self, c: &PortfolioContext) -> Option<String> {
        let l = &self.limits;
        if c.open_positions >= l.max_open_positions {
            return Some(format!(
                "{} positions open: risk.maxOpenPositions is {}",
                c.open_positions, l.max_open_positions
            ));
        }
        crate::roles::risk::loss_limit_broken(l, c)
    }
}

/// Whether the risk manager's last word in the decision was SELL (a stop, a target or a broken
/// limit): such an exit does not wait for the minimum holding time.
fn risk_exit(decision: &Decision) -> bool {
    decision
        .transcript
        .iter()
        .rev()
        .find(|o| o.role == Role::RiskManager)
        .is_some_and(|o| o.action == Action::Sell)
}

/// The position size the risk manager proposed in the decision's last round, if it spoke.
fn sizing(decision: &Decision) -> Option<f64> {
    decision
        .transcript
        .iter()
        .rev()
        .find(|o| o.role == Role::RiskManager)
        .and_then(|o| o.evidence.get("position_fraction").copied())
        .filter(|f| f.is_finite() && *f > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::FeeModel;
    use protocol::messages::Opinion;

    fn limits() -> RiskSpec {
        RiskSpec {
            max_position_fraction: 0.25,
            stop_loss: 0.05,
            take_profit: 0.1,
            max_open_positions: 1,
            daily_loss_limit: 0.05,
            max_drawdown: 0.2,
        }
    }

    fn decision(action: Action, risk_size: Option<f64>) -> Decision {
        let transcript = risk_size
            .map(|f| Opinion {
                cycle_id: "c".into(),
                round: 1,
                assistant: "risk".into(),
                role: Role::RiskManager,
                symbol: "BTCUSDT".into(),
                action: Action::Hold,
                confidence: 0.2,
                reasoning: String::new(),
                evidence: [("position_fraction".into(), f)].into(),
                veto: false,
                llm: false,
            })
            .into_iter()
            .collect();
        Decision {
            id: "c".into(),
            strategy: "s".into(),
            symbol: "BTCUSDT".into(),
            action,
            confidence: 0.8,
            consensus_reached: true,
            escalated: false,
            vetoed: false,
            rejected: false,
            resolved_by: None,
            rounds: vec![],
            transcript,
            price: 20000.0,
            decided_at: 7,
        }
    }

    fn executor() -> Executor {
        Executor {
            strategy: "s".into(),
            limits: limits(),
            paused: false,
            order_type: OrderType::Market,
            limit_offset_bps: 0.0,
            min_hold_ms: 0,
        }
    }

    #[test]
    fn limit_orders_are_priced_better_than_the_decision_and_one_at_a_time() {
        let e = Executor {
            order_type: OrderType::Limit,
            limit_offset_bps: 25.0,
            ..executor()
        };
        let mut ex = exchange();
        let context = PortfolioContext {
            equity: 10_000.0,
            ..Default::default()
        };
        let Plan::Trade(buy) = e.plan(
            &decision(Action::Buy, None),
            &ex,
            &context,
            Market::default(),
        ) else {
            panic!("a buy");
        };
        assert_eq!(buy.kind, OrderKind::Limit);
        assert_eq!(buy.limit_price, Some(Decimal::from(19_950))); // 20000 - 0.25%
        ex.place(&buy, Decimal::from(20_000), "decision", 10)
            .unwrap();
        // while it rests, the next decision waits
        let mut next = decision(Action::Buy, None);
        next.id = "d-next".into();
        assert!(
            matches!(e.plan(&next, &ex, &context, Market::default()), Plan::Nothing(why) if why.contains("still open"))
        );
    }

    fn exchange() -> PaperExchange {
        PaperExchange::new(Decimal::from(10_000), FeeModel::new(0.0, 0.0))
    }

    #[test]
    fn buys_the_risk_managers_size_capped_by_the_limit() {
        let ctx = PortfolioContext::default();
        let Plan::Trade(o) = executor().plan(
            &decision(Action::Buy, Some(0.1)),
            &exchange(),
            &ctx,
            Market::default(),
        ) else {
            panic!()
        };
        assert_eq!(
            (o.side, o.quantity, o.decision_id.as_str()),
            (Side::Buy, "0.05".parse().unwrap(), "c")
        );
        let Plan::Trade(o) = executor().plan(
            &decision(Action::Buy, Some(0.9)),
            &exchange(),
            &ctx,
            Market::default(),
        ) else {
            panic!()
        };
        assert_eq!(o.quantity, "0.125".parse().unwrap()); // capped at 25%
    }

    #[test]
    fn re_checks_limits_and_the_kill_switch() {
        let full = PortfolioContext {
            open_positions: 1,
            ..Default::default()
        };
        let plan = executor().plan(
            &decision(Action::Buy, None),
            &exchange(),
            &full,
            Market::default(),
        );
        assert!(
            matches!(&plan, Plan::Refused(r) if r.contains("risk.maxOpenPositions")),
            "{plan:?}"
        );
        let deep = PortfolioContext {
            drawdown: 0.3,
            ..Default::default()
        };
        let plan = executor().plan(
            &decision(Action::Buy, None),
            &exchange(),
            &deep,
            Market::default(),
        );
        assert!(
            matches!(&plan, Plan::Refused(r) if r.contains("risk.maxDrawdown")),
            "{plan:?}"
        );
        let mut paused = executor();
        paused.paused = true;
        let plan = paused.plan(
            &decision(Action::Buy, None),
            &exchange(),
            &PortfolioContext::default(),
            Market::default(),
        );
        assert!(
            matches!(&plan, Plan::Refused(r) if r.contains("spec.paused")),
            "{plan:?}"
        );
    }

    #[test]
    fn sells_what_is_held_and_nothing_else() {
        let ctx = PortfolioContext::default();
        let plan = executor().plan(
            &decision(Action::Sell, None),
            &exchange(),
            &ctx,
            Market::default(),
        );
        assert!(matches!(plan, Plan::Nothing(_)));
        let mut ex = exchange();
        let Plan::Trade(buy) = executor().plan(
            &decision(Action::Buy, Some(0.1)),
            &ex,
            &ctx,
            Market::default(),
        ) else {
            panic!()
        };
        ex.execute(&buy, Decimal::from(20_000), "x").unwrap();
        let mut sell = decision(Action::Sell, None);
        sell.id = "c2".into();
        let Plan::Trade(o) = executor().plan(&sell, &ex, &ctx, Market::default()) else {
            panic!()
        };
        assert_eq!((o.side, o.quantity), (Side::Sell, buy.quantity));
        assert!(matches!(
            executor().plan(&decision(Action::Hold, None), &ex, &ctx, Market::default()),
            Plan::Nothing(_)
        ));
    }

    fn held(quantity: &str, opened_at: i64) -> PaperExchange {
        let mut ex = exchange();
        let buy = Order {
            decision_id: "open".into(),
            strategy: "s".into(),
            symbol: "BTCUSDT".into(),
            side: Side::Buy,
            kind: OrderKind::Market,
            quantity: quantity.parse().unwrap(),
            limit_price: None,
            at: opened_at,
        };
        ex.execute(&buy, Decimal::from(20_000), "x").unwrap();
        ex
    }

    #[test]
    fn a_team_sell_waits_for_the_minimum_hold_and_a_risk_exit_does_not() {
        let e = Executor {
            min_hold_ms: 24 * 3_600_000,
            ..executor()
        };
        let ex = held("0.1", 0);
        let ctx = PortfolioContext::default();
        let mut early = decision(Action::Sell, None);
        early.decided_at = 3_600_000;
        let plan = e.plan(&early, &ex, &ctx, Market::default());
        assert!(
            matches!(&plan, Plan::Nothing(why) if why.contains("minimum")),
            "{plan:?}"
        );
        // the risk manager's SELL (a stop, a broken limit) goes at once
        let mut stop = early.clone();
        stop.transcript = decision(Action::Hold, Some(0.1)).transcript;
        stop.transcript[0].action = Action::Sell;
        assert!(
            matches!(e.plan(&stop, &ex, &ctx, Market::default()), Plan::Trade(o) if o.side == Side::Sell)
        );
        let mut late = decision(Action::Sell, None);
        late.decided_at = 24 * 3_600_000;
        assert!(
            matches!(e.plan(&late, &ex, &ctx, Market::default()), Plan::Trade(o) if o.side == Side::Sell)
        );
    }

    #[test]
    fn a_held_position_is_resized_only_outside_the_band() {
        // 0.1 BTC at 20,000 = 2,000 of 10,000 equity: 20%
        let ex = held("0.1", 0);
        let ctx = PortfolioContext {
            position_fraction: 0.2,
            ..Default::default()
        };
        let near = executor().plan(
            &decision(Action::Hold, Some(0.25)),
            &ex,
            &ctx,
            Market::default(),
        );
        assert!(
            matches!(&near, Plan::Nothing(why) if why.contains("band")),
            "{near:?}"
        );
        let Plan::Trade(cut) = executor().plan(
            &decision(Action::Hold, Some(0.05)),
            &ex,
            &ctx,
            Market::default(),
        ) else {
            panic!("a cut")
        };
        assert_eq!(
            (cut.side, cut.quantity),
            (Side::Sell, "0.075".parse().unwrap())
        );
        // the same HOLD from a rejected cycle touches nothing
        let rejected = Decision {
            rejected: true,
            ..decision(Action::Hold, Some(0.05))
        };
        let plan = executor().plan(&rejected, &ex, &ctx, Market::default());
        assert!(
            matches!(&plan, Plan::Nothing(why) if why.contains("rejected")),
            "{plan:?}"
        );
        // without the risk manager's size, the executor's volatility rule sizes: 0.30 / 2.0 = 15%
        let vol = Market {
            volatility: Some(2.0),
        };
        let plan = executor().plan(
            &decision(Action::Buy, None),
            &exchange(),
            &PortfolioContext::default(),
            vol,
        );
        let Plan::Trade(open) = plan else {
            panic!("an entry")
        };
        assert_eq!(open.quantity, "0.075".parse().unwrap()); // 1,500 / 20,000
    }
}
