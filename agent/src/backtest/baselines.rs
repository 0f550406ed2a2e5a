//! The baselines the team is measured against, as the TradingAgents paper compares: buy-and-hold,
//! an SMA crossover (20/50) and MACD (12/26/9), each long-only, all-in / all-out per symbol with an
//! equal share of the capital, through the same paper exchange (same fees and slippage).

use crate::engine::figures::{figures, Figures, Holding};
use crate::engine::Series;
use crate::exchange::paper::decimal;
use crate::exchange::{FeeModel, PaperExchange};
use crate::indicators::{Macd, Sma};
use protocol::messages::{Order, OrderKind, Side};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

/// A long-only rule: whether to be invested after seeing a close.
pub trait Rule {
    /// Takes the next close (every candle, warm-up included); true to be invested after it.
    fn long(&mut self, close: f64) -> bool;
}

/// Always invested: bought on the first scored candle, held to the end.
pub struct BuyAndHold;
impl Rule for BuyAndHold {
    fn long(&mut self, _: f64) -> bool {
        true
    }
}

/// Invested while the 20-candle SMA is above the 50-candle SMA (flat while either warms up).
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

/// Invested while MACD (12/26/9) is above its signal line (flat while it warms up).
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

/// The candles a baseline trades, and on what terms.
pub struct Market<'a> {
    /// One series per symbol; the capital is split equally between them.
    pub series: &'a [Series],
    /// Every open time, ascending.
    pub timeline: &'a [i64],
    /// Index in `timeline` of the first scored candle: before it the rules only warm up.
    pub first_scored: usize,
    /// Candle length in ms, for annualising the figures.
    pub interval_ms: i64,
    /// Starting cash, in the quote currency.
    pub capital: Decimal,
    /// The paper exchange's fees and slippage, as the team trades with.
    pub fees: FeeModel,
}

/// What a baseline did over the scored candles.
#[derive(Debug, Clone)]
pub struct BaselineRun {
    /// Return, Sharpe, drawdown and the rest, over the scored candles.
    pub figures: Figures,
    /// Equity after each scored candle: (open time in ms, equity in the quote currency).
    pub curve: Vec<(i64, f64)>,
    /// Mean share of equity held in positions.
    pub exposure: f64,
    /// Traded notional over mean equity.
    pub turnover: f64,
    /// Fees paid in all, in the quote currency.
    pub fees: f64,
}

/// Buy-and-hold, SMA crossover and MACD over `market`, by name.
pub fn run_all(market: &Market<'_>) -> std::collections::BTreeMap<&'static str, BaselineRun> {
    let mut runs = std::collections::BTreeMap::new();
    runs.insert(
        "buy_and_hold",
        run(market, || Box::new(BuyAndHold) as Box<dyn Rule>),
    );
    runs.insert(
        "sma_crossover",
        run(market, || Box::<SmaCrossover>::default() as Box<dyn Rule>),
    );
    runs.insert(
        "macd",
        run(market, || Box::<MacdRule>::default() as Box<dyn Rule>),
    );
    runs
}

/// Runs a rule (a fresh one per symbol) over the aligned series: it sees every candle, trades from
/// the first scored one.
pub fn run(market: &Market<'_>, mut make_rule: impl FnMut() -> Box<dyn Rule>) -> BaselineRun {
    let series = market.series;
    let mut exchange = PaperExchange::new(market.capital, market.fees);
    let share = market.capital / Decimal::from(series.len().max(1));
    let mut rules: Vec<Box<dyn Rule>> = series.iter().map(|_| make_rule()).collect();
    let mut cursors = vec![0usize; series.len()];
    let mut curve = Vec::with_capacity(market.timeline.len() - market.first_scored);
    let mut holding = Holding::default();
    let mut orders = 0u64;
    for (i, &t) in market.timeline.iter().enumerate() {
        let scoring = i >= market.first_scored;
        for (s, serie) in series.iter().enumerate() {
            let Some(candle) = serie.candles.get(cursors[s]).filter(|c| c.open_time == t) else {
                continue;
            };
            cursors[s] += 1;
            let want = rules[s].long(candle.close);
            if !scoring {
                continue;
            }
            let price = decimal(candle.close);
            exchange.mark(&serie.symbol, price);
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
                    decision_id: format!("baseline-{orders}").into(),
                    strategy: "baseline".into(),
                    symbol: serie.symbol.as_str().into(),
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
        if scoring {
            let equity = exchange.equity().to_f64().unwrap_or(0.0);
            holding.sample(equity, exchange.exposure());
            curve.push((t, equity));
        }
    }
    let pnls: Vec<f64> = exchange
        .trades()
        .iter()
        .map(|t| t.pnl.to_f64().unwrap_or(0.0))
        .collect();
    BaselineRun {
        figures: figures(&curve, market.interval_ms, &pnls),
        curve,
        exposure: holding.exposure(),
        turnover: holding.turnover(exchange.traded_notional().to_f64().unwrap_or(0.0)),
        fees: exchange.fees_paid().to_f64().unwrap_or(0.0),
    }
}
