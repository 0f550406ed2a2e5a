//! The agent's Prometheus metrics (names `ia_agent_<what>_<unit>`), registered once in the default
//! registry that `/metrics` serves. The bus, LLM and market-data counters live beside their code.

use prometheus::{
    register_gauge_vec, register_histogram_vec, register_int_counter_vec, register_int_gauge_vec,
    GaugeVec, HistogramVec, IntCounterVec, IntGaugeVec,
};
use protocol::messages::{Decision, Fill};
use std::sync::LazyLock;

/// Decisions by strategy, action and outcome (consensus, no_consensus, escalated, vetoed, rejected).
pub static DECISIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "ia_agent_decisions_total",
        "Decisions by strategy, action and outcome",
        &["strategy", "action", "outcome"]
    )
    .expect("registered once")
});

/// Wall time of whole cycles and of their rounds, in seconds.
pub static CYCLE_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "ia_agent_cycle_duration_seconds",
        "Wall time of a consensus cycle, by strategy",
        &["strategy"],
        prometheus::exponential_buckets(0.0001, 2.0, 20).expect("valid buckets")
    )
    .expect("registered once")
});

/// Wall time of one round (ask every voter, tally), in seconds.
pub static ROUND_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "ia_agent_round_duration_seconds",
        "Wall time of one consensus round, by strategy",
        &["strategy"],
        prometheus::exponential_buckets(0.00005, 2.0, 20).expect("valid buckets")
    )
    .expect("registered once")
});

/// Time an assistant takes to form an opinion, by role.
pub static OPINION_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "ia_agent_opinion_duration_seconds",
        "Time to form an opinion, by role",
        &["role"],
        prometheus::exponential_buckets(0.000001, 4.0, 14).expect("valid buckets")
    )
    .expect("registered once")
});

/// Orders and fills by strategy, side and status.
pub static ORDERS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "ia_agent_orders_total",
        "Orders by strategy, side and status (filled, rejected)",
        &["strategy", "side", "status"]
    )
    .expect("registered once")
});

/// Live books corrected to the exchange account's balances.
pub static RECONCILED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "ia_agent_reconciled_total",
        "Times a live book's position differed from the account's balance and was corrected",
        &["strategy", "symbol"]
    )
    .expect("registered once")
});

/// Equity and PnL of the paper portfolio, in the quote asset.
pub static PORTFOLIO: LazyLock<GaugeVec> = LazyLock::new(|| {
    register_gauge_vec!(
        "ia_agent_portfolio_quote",
        "Equity and PnL of the portfolio in the quote asset, by strategy",
        &["strategy", "figure"]
    )
    .expect("registered once")
});

/// Decisions made and held in memory while the store does not answer (a database outage).
pub static UNSTORED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "ia_agent_unstored_decisions",
        "Decisions made and held in memory because the store does not answer, by strategy",
        &["strategy"]
    )
    .expect("registered once")
});

/// Decisions made and not yet on the durable stream (behind while NATS is away).
pub static UNPUBLISHED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "ia_agent_unpublished_decisions",
        "Decisions made and not yet published to the decision stream, by strategy",
        &["strategy"]
    )
    .expect("registered once")
});

/// Cycles not run because their symbol waits for an answer to its escalation.
pub static HELD_FOR_ESCALATION: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "ia_agent_cycles_held_for_escalation_total",
        "Cycles skipped while their symbol's escalation is open, by strategy and symbol",
        &["strategy", "symbol"]
    )
    .expect("registered once")
});

/// Heartbeats of assistants the declared team does not name (ignored: they are never voters).
pub static UNDECLARED_HEARTBEATS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "ia_agent_undeclared_heartbeats_total",
        "Heartbeats of assistants the declared team does not name, by strategy",
        &["strategy"]
    )
    .expect("registered once")
});

/// Answers to one role's round request that claimed another role (dropped), by strategy and the
/// role asked: an assistant trying to speak for another.
pub static MISATTRIBUTED_OPINIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "ia_agent_misattributed_opinions_total",
        "Answers to a role's round request that claimed another role (dropped), by strategy and role asked",
        &["strategy", "role"]
    )
    .expect("registered once")
});

/// Voters that gave no opinion in a cycle's last round, by role (an assistant that stopped answering).
pub static MISSING_OPINIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "ia_agent_missing_opinions_total",
        "Voters silent in the last round of a cycle, by strategy and role",
        &["strategy", "role"]
    )
    .expect("registered once")
});

/// Each voter's current weight (learned, or its spec.weight).
pub static WEIGHTS: LazyLock<GaugeVec> = LazyLock::new(|| {
    register_gauge_vec!(
        "ia_agent_assistant_weight",
        "Current vote weight of each assistant (learned by the multiplicative-weights loop, or static)",
        &["strategy", "assistant"]
    )
    .expect("registered once")
});

/// Drawdown from the 30-day equity peak and the Strategy's limit on it, as fractions.
pub static RISK: LazyLock<GaugeVec> = LazyLock::new(|| {
    register_gauge_vec!(
        "ia_agent_risk_ratio",
        "Drawdown from the 30-day equity peak (figure=drawdown) and spec.risk.maxDrawdown (figure=max_drawdown), by strategy",
        &["strategy", "figure"]
    )
    .expect("registered once")
});

/// Sets the drawdown gauges.
pub fn risk(strategy: &str, drawdown: f64, max_drawdown: f64) {
    RISK.with_label_values(&[strategy, "drawdown"])
        .set(drawdown);
    RISK.with_label_values(&[strategy, "max_drawdown"])
        .set(max_drawdown);
}

/// Counts a decision.
pub fn decided(d: &Decision) {
    let outcome = if d.vetoed {
        "vetoed"
    } else if d.rejected {
        "rejected"
    } else if d.escalated {
        "escalated"
    } else if d.consensus_reached {
        "consensus"
    } else {
        "no_consensus"
    };
    DECISIONS
        .with_label_values(&[&d.strategy, d.action.as_str(), outcome])
        .inc();
}

/// Counts an order and its fill (or refusal).
pub fn ordered(strategy: &str, side: protocol::messages::Side, fill: Option<&Fill>) {
    let side = match side {
        protocol::messages::Side::Buy => "BUY",
        protocol::messages::Side::Sell => "SELL",
    };
    let status = if fill.is_some() { "filled" } else { "rejected" };
    ORDERS.with_label_values(&[strategy, side, status]).inc();
}

/// Counts a live position corrected to the account.
pub fn reconciled(strategy: &str, symbol: &str) {
    RECONCILED.with_label_values(&[strategy, symbol]).inc();
}

/// Sets the portfolio gauges.
pub fn portfolio(strategy: &str, equity: f64, capital: f64) {
    PORTFOLIO
        .with_label_values(&[strategy, "equity"])
        .set(equity);
    PORTFOLIO
        .with_label_values(&[strategy, "pnl"])
        .set(equity - capital);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_appear_in_the_exposition() {
        portfolio("metrics-test", 10_500.0, 10_000.0);
        ordered("metrics-test", protocol::messages::Side::Buy, None);
        CYCLE_SECONDS
            .with_label_values(&["metrics-test"])
            .observe(0.001);
        let mut text = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&prometheus::gather(), &mut text)
            .unwrap();
        assert!(
            text.contains("ia_agent_portfolio_quote{figure=\"pnl\",strategy=\"metrics-test\"} 500")
        );
        assert!(text.contains(
            "ia_agent_orders_total{side=\"BUY\",status=\"rejected\",strategy=\"metrics-test\"} 1"
        ));
        assert!(text.contains("ia_agent_cycle_duration_seconds_bucket"));
    }
}
