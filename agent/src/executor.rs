//! The executor: turns a decision into an order, re-checking every risk limit first (defence in depth:
//! the risk manager may have been outvoted, absent or wrong). A refusal is recorded with its reason.

use crate::exchange::PaperExchange;
use protocol::crd::{OrderType, RiskSpec};
use protocol::messages::{Decision, Order, OrderKind, PortfolioContext, Side};
use protocol::{Action, Role};
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

/// What the executor does with a decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Trade(Order),
    /// Nothing to do (HOLD, already positioned, nothing to sell).
    Nothing(String),
    /// A trade the limits forbid; the reason names the limit.
    Refused(String),
}

#[derive(Debug, Clone)]
pub struct Executor {
    pub strategy: String,
    pub limits: RiskSpec,
    pub paused: bool,
    /// Market orders, or limit orders `limit_offset_bps` better than the decision's price.
    pub order_type: OrderType,
    pub limit_offset_bps: f64,
}

/// Quantities are rounded down to Binance's finest lot step.
const QUANTITY_DP: u32 = 8;

impl Executor {
    /// Plans the order for `decision`, given the exchange's state and the portfolio context.
    pub fn plan(
        &self,
        decision: &Decision,
        exchange: &PaperExchange,
        context: &PortfolioContext,
    ) -> Plan {
        let symbol = &decision.symbol;
        if decision.action == Action::Hold {
            return Plan::Nothing("HOLD".into());
        }
        if self.paused {
            return Plan::Refused(format!(
                "Strategy {} is paused (spec.paused)",
                self.strategy
            ));
        }
        if exchange.resting(symbol).next().is_some() {
            return Plan::Nothing(format!("a limit order for {symbol} is still open"));
        }
        let held = exchange.position(symbol).map(|p| p.quantity);
        let order = |side, quantity| {
            let (kind, limit_price) = match self.order_type {
                OrderType::Market => (OrderKind::Market, None),
                OrderType::Limit => (OrderKind::Limit, self.limit_price(side, decision.price)),
            };
            Plan::Trade(Order {
                decision_id: decision.id.clone(),
                strategy: self.strategy.clone(),
                symbol: symbol.clone(),
                side,
                kind,
                quantity,
                limit_price,
                at: decision.decided_at,
            })
        };
        match decision.action {
            Action::Sell => match held {
                Some(quantity) => order(Side::Sell, quantity),
                None => Plan::Nothing(format!("no {symbol} position to sell (spot: no shorting)")),
            },
            Action::Buy => {
                if held.is_some() {
                    return Plan::Nothing(format!("already holding {symbol}"));
                }
                if let Some(reason) = self.limit_broken(context) {
                    return Plan::Refused(reason);
                }
                let fraction = sizing(decision)
                    .unwrap_or(self.limits.max_position_fraction)
                    .min(self.limits.max_position_fraction);
                let budget = exchange.equity() * Decimal::from_f64(fraction).unwrap_or_default();
                let price = Decimal::from_f64(decision.price).unwrap_or_default();
                if price <= Decimal::ZERO {
                    return Plan::Refused(format!("no usable price for {symbol}"));
                }
                let quantity = (budget.min(exchange.cash()) / price)
                    .round_dp_with_strategy(QUANTITY_DP, RoundingStrategy::ToZero);
                if quantity <= Decimal::ZERO {
                    return Plan::Nothing(format!("no cash left for {symbol}"));
                }
                order(Side::Buy, quantity)
            }
            Action::Hold => unreachable!("handled above"),
        }
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
                evidence: [("position_fraction".to_string(), f)].into(),
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
        let Plan::Trade(buy) = e.plan(&decision(Action::Buy, None), &ex, &context) else {
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
            matches!(e.plan(&next, &ex, &context), Plan::Nothing(why) if why.contains("still open"))
        );
    }

    fn exchange() -> PaperExchange {
        PaperExchange::new(Decimal::from(10_000), FeeModel::new(0.0, 0.0))
    }

    #[test]
    fn buys_the_risk_managers_size_capped_by_the_limit() {
        let ctx = PortfolioContext::default();
        let Plan::Trade(o) = executor().plan(&decision(Action::Buy, Some(0.1)), &exchange(), &ctx)
        else {
            panic!()
        };
        assert_eq!(
            (o.side, o.quantity, o.decision_id.as_str()),
            (Side::Buy, "0.05".parse().unwrap(), "c")
        );
        let Plan::Trade(o) = executor().plan(&decision(Action::Buy, Some(0.9)), &exchange(), &ctx)
        else {
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
        let plan = executor().plan(&decision(Action::Buy, None), &exchange(), &full);
        assert!(
            matches!(&plan, Plan::Refused(r) if r.contains("risk.maxOpenPositions")),
            "{plan:?}"
        );
        let deep = PortfolioContext {
            drawdown: 0.3,
            ..Default::default()
        };
        let plan = executor().plan(&decision(Action::Buy, None), &exchange(), &deep);
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
        );
        assert!(
            matches!(&plan, Plan::Refused(r) if r.contains("spec.paused")),
            "{plan:?}"
        );
    }

    #[test]
    fn sells_what_is_held_and_nothing_else() {
        let ctx = PortfolioContext::default();
        let plan = executor().plan(&decision(Action::Sell, None), &exchange(), &ctx);
        assert!(matches!(plan, Plan::Nothing(_)));
        let mut ex = exchange();
        let Plan::Trade(buy) = executor().plan(&decision(Action::Buy, Some(0.1)), &ex, &ctx) else {
            panic!()
        };
        ex.execute(&buy, Decimal::from(20_000), "x").unwrap();
        let mut sell = decision(Action::Sell, None);
        sell.id = "c2".into();
        let Plan::Trade(o) = executor().plan(&sell, &ex, &ctx) else {
            panic!()
        };
        assert_eq!((o.side, o.quantity), (Side::Sell, buy.quantity));
        assert!(matches!(
            executor().plan(&decision(Action::Hold, None), &ex, &ctx),
            Plan::Nothing(_)
        ));
    }
}
