//! The baselines the team is measured against, as the TradingAgents paper compares: buy-and-hold,
//! an SMA crossover (20/50) and MACD (12/26/9), each long-only, all-in / all-out per symbol with an
//! equal share of the capital, through the same paper exchange (same fees and slippage).

use super::metrics::{figures, Figures};
use super::Series;
use crate::exchange::paper::decimal;
use crate::exchange::{FeeModel, PaperExchange};
use crate::indicators::{Macd, Sma};
use protocol::messages::{Order, OrderKind, Side};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

/// A long-only rule: whether to be invested after seeing a close.
pub trait Rule {
    fn long(&mut self, close: f64) -> bool;
}

pub struct BuyAndHold;
impl Rule for BuyAndHold {
    fn long(&mut self, _: f64) -> bool {
        true
    }
}

pub struct SmaCrossover {
    fast: Sma,
    slow: Sma,
}
impl Default for SmaCrossover {
    fn default() -> Self {
        Self {
            fast: Sma::new(20),
            slow: Sma::new(50),
        }
    }
}
impl Rule for SmaCrossover {
    fn long(&mut self, close: f64) -> bool {
        matches!((self.fast.update(close), self.slow.update(close)), (Some(f), Some(s)) if f > s)
    }
}

pub struct MacdRule(Macd);
impl Default for MacdRule {
    fn default() -> Self {
        Self(Macd::new(12, 26, 9))
    }
}
impl Rule for MacdRule {
    fn long(&mut self, close: f64) -> bool {
        self.0.update(close).is_some_and(|m| m.macd > m.signal)
    }
}

/// Runs a rule (a fresh one per symbol) over the aligned series; returns its figures and equity curve.
pub fn run(
    series: &[Series],
    timeline: &[i64],
    interval_ms: i64,
    capital: Decimal,
    fees: FeeModel,
    mut make_rule: impl FnMut() -> Box<dyn Rule>,
) -> (Figures, Vec<(i64, f64)>) {
    let mut exchange = PaperExchange::new(capital, fees);
    let share = capital / Decimal::from(series.len().max(1));
    let mut rules: Vec<Box<dyn Rule>> = series.iter().map(|_| make_rule()).collect();
    let mut cursors = vec![0usize; series.len()];
    let mut curve = Vec::with_capacity(timeline.len());
    let mut orders = 0u64;
    for &t in timeline {
        for (s, serie) in series.iter().enumerate() {
            let Some(candle) = serie.candles.get(cursors[s]).filter(|c| c.open_time == t) else {
                continue;
            };
            cursors[s] += 1;
            let price = decimal(candle.close);
            exchange.mark(&serie.symbol, price);
            let want = rules[s].long(candle.close);
            let held = exchange.position(&serie.symbol).map(|p| p.quantity);
            let side_quantity = match (want, held) {
                (true, None) => {
                    // leave room for the fee and slippage
                    let budget = share.min(exchange.cash()) * Decimal::new(99, 2);
                    let q = (budget / price).round_dp_with_strategy(8, RoundingStrategy::ToZero);
                    (q > Decimal::ZERO).then_some((Side::Buy, q))
                }
                (false, Some(q)) => Some((Side::Sell, q)),
                _ => None,
            };
            if let Some((side, quantity)) = side_quantity {
                orders += 1;
                let order = Order {
                    decision_id: format!("baseline-{orders}"),
                    strategy: "baseline".into(),
                    symbol: serie.symbol.clone(),
                    side,
                    kind: OrderKind::Market,
                    quantity,
                    limit_price: None,
                    at: t,
                };
                // a refusal (no cash) simply leaves the baseline flat
                let _ = exchange.execute(&order, price, "rule");
            }
        }
        curve.push((t, exchange.equity().to_f64().unwrap_or(0.0)));
    }
    let pnls: Vec<f64> = exchange
        .trades()
        .iter()
        .map(|t| t.pnl.to_f64().unwrap_or(0.0))
        .collect();
    (figures(&curve, interval_ms, &pnls), curve)
}
