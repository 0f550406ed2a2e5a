//! The backtest's outputs: `report.json` (machine-readable figures), `report.html` (equity and
//! drawdown charts as inline SVG, the decision log) and the terminal table.

use super::Backtested;
use crate::engine::figures::Figures;
use crate::engine::Outcome;
use chrono::{TimeZone, Utc};
use serde_json::{json, Map, Value};
use std::fmt::Write as _;

/// What the run was about, for the report's header.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunInfo {
    /// The Strategy's name (empty when the manifest has none).
    pub strategy: String,
    /// The symbols traded, in the Strategy's order.
    pub symbols: Vec<String>,
    /// The candle interval, as the Strategy writes it (`1h`).
    pub interval: String,
    /// Where each symbol's candles came from: a file path, or the bundled data with its attribution.
    pub data: Vec<String>,
    /// Starting capital, in the quote currency.
    pub capital: f64,
    /// Fee per fill as a fraction of its notional (0.001 = 0.1%).
    pub fee_rate: f64,
    /// Slippage on market orders, in basis points.
    pub slippage_bps: f64,
    /// The ConsensusPolicy's spec, as JSON.
    pub policy: Value,
    /// How long the run took, in seconds of wall-clock time.
    pub wall_seconds: f64,
}

/// `report.json`.
pub fn json_report(run: &Backtested, info: &RunInfo) -> Value {
    let outcome = &run.outcome;
    json!({
        "strategy": outcome.figures,
        "baselines": run.baselines(),
        "decisions": outcome.decisions,
        "candles": outcome.candles,
        "cycles": outcome.cycles,
        "first_open_time": outcome.first_open_time,
        "last_open_time": outcome.last_open_time,
        "first_open": utc(outcome.first_open_time),
        "last_open": utc(outcome.last_open_time),
        "fees_paid": outcome.fees_paid.to_string(),
        "exits": exits(outcome),
        "weights": outcome.weights,
        "learning_updates": outcome.learning_updates,
        "audit": outcome.audit,
        "run": info,
        "generated_by": concat!("trading-agent ", env!("CARGO_PKG_VERSION")),
    })
}

/// Closed trades by why they closed (a SELL decision, the stop-loss, the take-profit), with their
/// count, total PnL and mean holding time in hours.
fn exits(outcome: &Outcome) -> Value {
    let mut by: std::collections::BTreeMap<&str, (u64, f64, f64)> = Default::default();
    for t in &outcome.trades {
        let e = by.entry(t.reason.as_str()).or_default();
        e.0 += 1;
        e.1 += rust_decimal::prelude::ToPrimitive::to_f64(&t.pnl).unwrap_or(0.0);
        e.2 += (t.closed_at - t.opened_at) as f64 / 3_600_000.0;
    }
    by.into_iter()
        .map(|(reason, (n, pnl, hours))| {
            (
                reason.to_string(),
                json!({"trades": n, "pnl": pnl, "mean_hours_held": hours / n as f64}),
            )
        })
        .collect::<Map<String, Value>>()
        .into()
}

/// `ms` since the epoch as `YYYY-MM-DD HH:MM` UTC; the bare number when out of range.
pub fn utc(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms).single().map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M").to_string(),
    )
}

fn pct(x: f64) -> String {
    format!("{:+.2}%", x * 100.0)
}

/// The terminal table: our team against the baselines, then decisions by outcome.
pub fn table(run: &Backtested, info: &RunInfo) -> String {
    let outcome = &run.outcome;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} on {} ({}), {} → {} UTC: {} candles, {} cycles",
        info.strategy,
        info.symbols.join(", "),
        info.interval,
        utc(outcome.first_open_time),
        utc(outcome.last_open_time),
        outcome.candles,
        outcome.cycles
    );
    let _ = writeln!(
        out,
        "\n{:<16} {:>11} {:>11} {:>7} {:>8} {:>9} {:>9} {:>7}",
        "", "return", "annualised", "Sharpe", "Sortino", "max DD", "win rate", "trades"
    );
    let mut row = |name: &str, f: &Figures| {
        let _ = writeln!(
            out,
            "{:<16} {:>11} {:>11} {:>7.2} {:>8.2} {:>9} {:>9} {:>7}",
            name,
            pct(f.total_return),
            pct(f.annualized_return),
            f.sharpe,
            f.sortino,
            format!("{:.2}%", f.max_drawdown * 100.0),
            format!("{:.1}%", f.win_rate * 100.0),
            f.trades
        );
    };
    row("ia-agents team", &outcome.figures);
    for (name, f) in &run.baselines() {
        row(name, f);
    }
    let d = &outcome.decisions;
    let _ = writeln!(
        out,
        "\ndecisions: {} total; {} by consensus, {} escalated, {} vetoed, {} rejected; {} BUY, {} SELL, {} HOLD",
        d.total, d.consensus, d.escalated, d.vetoed, d.rejected, d.buy, d.sell, d.hold
    );
    let _ = writeln!(
        out,
        "final equity {:.2} from {:.2}; fees paid {}",
        outcome.figures.final_equity,
        info.capital,
        outcome.fees_paid.round_dp(2)
    );
    if let Some(audit) = &outcome.audit {
        let _ = writeln!(
            out,
            "audit chain: {} entries, head {}{}",
            audit.entries,
            audit.head,
            if audit.keyed {
                " (HMAC-keyed)"
            } else {
                " (UNKEYED: set IA_AUDIT_KEY so that the database alone cannot re-hash it)"
            }
        );
    }
    out
}

/// A named, coloured line of (time ms, value) points.
type Line<'a> = (&'a str, &'a str, &'a [(i64, f64)]);

/// An SVG polyline chart of one or more series over time (at most ~1,000 points each).
fn svg_chart(title: &str, series: &[Line<'_>], percent: bool) -> String {
    const W: f64 = 960.0;
    const H: f64 = 260.0;
    const PAD: f64 = 48.0;
    let points: Vec<(i64, f64)> = series.iter().flat_map(|s| s.2.iter().copied()).collect();
    if points.is_empty() {
        return String::new();
    }
    let (t0, t1) = (
        points.iter().map(|p| p.0).min().unwrap_or(0),
        points.iter().map(|p| p.0).max().unwrap_or(1),
    );
    let (lo, hi) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let x = |t: i64| PAD + (t - t0) as f64 / ((t1 - t0).max(1) as f64) * (W - 2.0 * PAD);
    let y = |v: f64| H - PAD / 2.0 - (v - lo) / span * (H - PAD);
    let mut svg = format!(
        r##"<svg viewBox="0 0 {W} {H}" width="100%" role="img" aria-label="{title}"><rect width="{W}" height="{H}" fill="#fff"/>"##
    );
    for k in 0..=4 {
        let v = lo + span * k as f64 / 4.0;
        let label = if percent {
            format!("{:.0}%", v * 100.0)
        } else {
            format!("{v:.0}")
        };
        let row = y(v);
        let _ = write!(
            svg,
            r##"<line x1="{PAD}" x2="{}" y1="{row:.1}" y2="{row:.1}" stroke="#eee"/><text x="4" y="{:.1}" font-size="11" fill="#666">{label}</text>"##,
            W - PAD,
            row + 4.0,
        );
    }
    for (i, (name, colour, data)) in series.iter().enumerate() {
        let step = (data.len() / 1000).max(1);
        let path: Vec<String> = data
            .iter()
            .step_by(step)
            .chain(data.last())
            .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1)))
            .collect();
        let _ = write!(
            svg,
            r##"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/><text x="{}" y="{}" font-size="12" fill="{colour}">{name}</text>"##,
            path.join(" "),
            PAD + 10.0 + 160.0 * i as f64,
            16
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{PAD}" y="{}" font-size="11" fill="#666">{}</text><text x="{}" y="{}" font-size="11" fill="#666" text-anchor="end">{}</text></svg>"##,
        H - 4.0,
        utc(t0),
        W - PAD,
        H - 4.0,
        utc(t1)
    );
    svg
}

fn drawdown_curve(curve: &[(i64, f64)]) -> Vec<(i64, f64)> {
    let mut peak = f64::MIN;
    curve
        .iter()
        .map(|&(t, e)| {
            peak = peak.max(e);
            (t, if peak > 0.0 { -(1.0 - e / peak) } else { 0.0 })
        })
        .collect()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Decisions shown in the HTML log (the latest ones; the database holds them all).
const LOG_ROWS: usize = 300;

/// `report.html`: one self-contained file (its only script is the decision view's, inlined).
pub fn html_report(run: &Backtested, info: &RunInfo) -> String {
    let outcome = &run.outcome;
    let mut html = String::from(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ia-agents backtest</title><style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}
table{border-collapse:collapse;width:100%;margin:1em 0}td,th{border-bottom:1px solid #ddd;padding:4px 6px;text-align:right}
td:first-child,th:first-child{text-align:left}.log td{text-align:left;font-size:12px}.BUY{color:#060}.SELL{color:#a00}
</style>"#,
    );
    html.push_str(&crate::decision_view::head());
    html.push_str("</head><body>");
    let _ = write!(
        html,
        "<h1>ia-agents backtest: {}</h1><p>{} · {} · {} → {} UTC · {} candles · {} cycles · data: {}</p><pre>{}</pre>",
        escape(&info.strategy),
        escape(&info.symbols.join(", ")),
        escape(&info.interval),
        utc(outcome.first_open_time),
        utc(outcome.last_open_time),
        outcome.candles,
        outcome.cycles,
        escape(&info.data.join(", ")),
        escape(&table(run, info))
    );
    html.push_str("<h2>Equity</h2>");
    html.push_str(&svg_chart(
        "equity",
        &[
            ("ia-agents team", "#1f5fbf", &outcome.curve),
            ("buy and hold", "#999", run.buy_and_hold_curve()),
        ],
        false,
    ));
    html.push_str("<h2>Drawdown</h2>");
    html.push_str(&svg_chart(
        "drawdown",
        &[("ia-agents team", "#bf1f1f", &drawdown_curve(&outcome.curve))],
        true,
    ));
    let _ = write!(
        html,
        "<h2>Decisions</h2><p>The latest {} of {} decisions that traded, escalated, were vetoed or were not HOLD (every decision is in ia-agents.db). Click one for its debate.</p>{}",
        outcome.records.len().min(LOG_ROWS),
        outcome.notable,
        crate::decision_view::block(outcome.records.iter().rev().take(LOG_ROWS))
    );
    html.push_str("</body></html>\n");
    html
}
