//! Performance figures of an equity curve, as the report shows them. Returns and drawdown are
//! fractions (0.12 = 12%); Sharpe and Sortino are annualised from per-candle returns with a zero
//! risk-free rate.

use serde::Serialize;

const YEAR_MS: f64 = 365.25 * 24.0 * 3600.0 * 1000.0;

/// The figures of one strategy (ours or a baseline).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Figures {
    /// Final over initial equity, minus one.
    pub total_return: f64,
    /// The total return compounded to a year of 365.25 days.
    pub annualized_return: f64,
    /// Mean over standard deviation of per-candle returns, annualised.
    pub sharpe: f64,
    /// Mean over downside deviation of per-candle returns, annualised.
    pub sortino: f64,
    /// The largest fall from a peak of equity, as a fraction of the peak.
    pub max_drawdown: f64,
    /// Share of closed trades with a positive PnL (0 when there were none).
    pub win_rate: f64,
    /// Closed round trips.
    pub trades: u64,
    /// Equity at the last candle, quote currency.
    pub final_equity: f64,
}

/// Computes the figures from an equity curve sampled once per candle (`(open_time ms, equity)`),
/// `interval_ms` apart, and the PnL of each closed trade.
pub fn figures(curve: &[(i64, f64)], interval_ms: i64, trade_pnls: &[f64]) -> Figures {
    let first = curve.first().map_or(0.0, |p| p.1);
    let last = curve.last().map_or(0.0, |p| p.1);
    let total_return = if first > 0.0 { last / first - 1.0 } else { 0.0 };
    let span_ms = match (curve.first(), curve.last()) {
        (Some(a), Some(b)) => (b.0 - a.0 + interval_ms) as f64,
        _ => 0.0,
    };
    let annualized_return = if span_ms > 0.0 && total_return > -1.0 {
        (1.0 + total_return).powf(YEAR_MS / span_ms) - 1.0
    } else {
        total_return
    };
    let returns = returns(curve);
    let periods_per_year = if interval_ms > 0 {
        YEAR_MS / interval_ms as f64
    } else {
        0.0
    };
    let n = returns.len() as f64;
    let mean = if n > 0.0 {
        returns.iter().sum::<f64>() / n
    } else {
        0.0
    };
    let std = if n > 1.0 {
        (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    let downside = if n > 0.0 {
        (returns.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / n).sqrt()
    } else {
        0.0
    };
    let annualise = periods_per_year.sqrt();
    let sharpe = if std > 0.0 {
        mean / std * annualise
    } else {
        0.0
    };
    let sortino = if downside > 0.0 {
        mean / downside * annualise
    } else {
        0.0
    };
    let wins = trade_pnls.iter().filter(|p| **p > 0.0).count();
    Figures {
        total_return,
        annualized_return,
        sharpe,
        sortino,
        max_drawdown: max_drawdown(curve.iter().map(|p| p.1)),
        win_rate: if trade_pnls.is_empty() {
            0.0
        } else {
            wins as f64 / trade_pnls.len() as f64
        },
        trades: trade_pnls.len() as u64,
        final_equity: last,
    }
}

/// The per-candle returns of an equity curve (steps from a non-positive equity are skipped).
pub fn returns(curve: &[(i64, f64)]) -> Vec<f64> {
    curve
        .windows(2)
        .filter(|w| w[0].1 > 0.0)
        .map(|w| w[1].1 / w[0].1 - 1.0)
        .collect()
}

/// How much of its equity a book held, and how much it traded, sampled once per scored step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Holding {
    exposure: f64,
    equity: f64,
    steps: u64,
}

impl Holding {
    /// Records one step: the equity and the share of it held in positions.
    pub fn sample(&mut self, equity: f64, exposure: f64) {
        self.exposure += exposure;
        self.equity += equity;
        self.steps += 1;
    }

    /// Mean share of equity held in positions (0 before any step).
    pub fn exposure(&self) -> f64 {
        self.exposure / self.steps.max(1) as f64
    }

    /// `traded_notional` over the mean equity (2.0 = one full round trip).
    pub fn turnover(&self, traded_notional: f64) -> f64 {
        let mean_equity = self.equity / self.steps.max(1) as f64;
        if mean_equity > 0.0 {
            traded_notional / mean_equity
        } else {
            0.0
        }
    }
}

/// The largest fall from a peak, as a fraction of the peak.
pub fn max_drawdown(equity: impl Iterator<Item = f64>) -> f64 {
    let mut peak = f64::MIN;
    let mut worst = 0.0f64;
    for e in equity {
        peak = peak.max(e);
        if peak > 0.0 {
            worst = worst.max(1.0 - e / peak);
        }
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn a_doubling_over_a_year_is_100_percent() {
        let days = 365.25 as i64;
        let curve: Vec<(i64, f64)> = (0..days)
            .map(|d| (d * DAY, 100.0 * 2f64.powf(d as f64 / 365.25)))
            .collect();
        let f = figures(&curve, DAY, &[]);
        assert!((f.annualized_return - 1.0).abs() < 0.01, "{f:?}");
        assert_eq!(f.max_drawdown, 0.0);
        assert_eq!((f.trades, f.win_rate), (0, 0.0));
    }

    #[test]
    fn drawdown_sharpe_sortino_and_win_rate() {
        let curve = [(0, 100.0), (DAY, 120.0), (2 * DAY, 90.0), (3 * DAY, 130.0)];
        let f = figures(&curve, DAY, &[10.0, -5.0, 3.0, 0.0]);
        assert!((f.max_drawdown - 0.25).abs() < 1e-12);
        assert!((f.total_return - 0.3).abs() < 1e-12);
        assert!(f.sharpe > 0.0 && f.sortino > f.sharpe, "{f:?}");
        assert_eq!((f.trades, f.win_rate), (4, 0.5));
        assert_eq!(f.final_equity, 130.0);
    }

    #[test]
    fn holding_means_exposure_and_turns_over_against_mean_equity() {
        let mut h = Holding::default();
        assert_eq!((h.exposure(), h.turnover(100.0)), (0.0, 0.0));
        h.sample(100.0, 0.5);
        h.sample(300.0, 0.0);
        assert_eq!(h.exposure(), 0.25);
        assert_eq!(h.turnover(400.0), 2.0);
    }

    #[test]
    fn a_flat_curve_has_no_ratios() {
        let f = figures(&[(0, 5.0), (DAY, 5.0)], DAY, &[]);
        assert_eq!((f.sharpe, f.sortino, f.total_return), (0.0, 0.0, 0.0));
    }
}
