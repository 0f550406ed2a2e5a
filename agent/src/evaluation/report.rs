//! What `evaluate` prints and writes: the per-window table, the summary, `evaluate.json` and
//! `evaluate.html`.

use super::stats::{deflated_sharpe, moments, probabilistic_sharpe};
use super::{Scores, WindowResult};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The baselines, in the order the table shows them.
pub const BASELINES: [&str; 3] = ["buy_and_hold", "sma_crossover", "macd"];

/// The evaluation across windows.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Windows scored (over every symbol).
    pub windows: usize,
    /// Configurations tried before this one (`--trials`), for the deflated Sharpe ratio.
    pub trials: u32,
    /// Windows in which the team's Sharpe ratio beat each baseline's.
    pub won_on_sharpe: BTreeMap<&'static str, usize>,
    /// Windows in which the team's max drawdown was at most half of buy-and-hold's.
    pub drawdown_at_most_half_of_buy_and_hold: usize,
    /// Windows with a positive return net of costs.
    pub positive_return: usize,
    /// Median Sharpe ratio across windows: the team, each baseline, each voter alone.
    pub median_sharpe: BTreeMap<String, f64>,
    /// The voter alone with the best median Sharpe ratio.
    pub best_voter: Option<String>,
    /// Probability that the team's true Sharpe ratio is above 0, from every window's returns.
    pub probabilistic_sharpe_ratio: Option<f64>,
    /// The same against the best Sharpe ratio `trials` unskilled configurations would show.
    pub deflated_sharpe_ratio: Option<f64>,
    /// The issue's four targets, each met or not.
    pub targets: BTreeMap<&'static str, bool>,
}

fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Summarises `windows`, `trials` configurations having been tried.
pub fn summarise(windows: &[WindowResult], trials: u32) -> Summary {
    let n = windows.len();
    let baseline = |w: &WindowResult, name: &str| w.baselines.get(name).copied();
    let won_on_sharpe = BASELINES
        .iter()
        .map(|b| {
            let won = windows
                .iter()
                .filter(|w| baseline(w, b).is_some_and(|s| w.team.sharpe > s.sharpe))
                .count();
            (*b, won)
        })
        .collect();
    let half_dd = windows
        .iter()
        .filter(|w| {
            baseline(w, "buy_and_hold").is_some_and(|b| w.team.max_drawdown <= b.max_drawdown / 2.0)
        })
        .count();
    let positive = windows.iter().filter(|w| w.team.total_return > 0.0).count();
    let mut median_sharpe = BTreeMap::new();
    median_sharpe.insert(
        "team".to_string(),
        median(windows.iter().map(|w| w.team.sharpe).collect()),
    );
    for b in BASELINES {
        let xs = windows
            .iter()
            .filter_map(|w| baseline(w, b).map(|s| s.sharpe))
            .collect();
        median_sharpe.insert(b.to_string(), median(xs));
    }
    let roles: Vec<String> = windows
        .iter()
        .flat_map(|w| w.voters.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut best_voter: Option<(String, f64)> = None;
    for role in roles {
        let m = median(
            windows
                .iter()
                .filter_map(|w| w.voters.get(&role).map(|s| s.sharpe))
                .collect(),
        );
        if best_voter.as_ref().is_none_or(|(_, best)| m > *best) {
            best_voter = Some((role.clone(), m));
        }
        median_sharpe.insert(format!("voter:{role}"), m);
    }
    let returns: Vec<f64> = windows
        .iter()
        .flat_map(|w| w.team_returns.iter().copied())
        .collect();
    let m = moments(&returns);
    let team_median = median_sharpe["team"];
    let better_rule = median_sharpe["sma_crossover"].max(median_sharpe["macd"]);
    let mut targets = BTreeMap::new();
    targets.insert(
        "sharpe_above_buy_and_hold_in_60pct",
        n > 0 && won_on_sharpe_count(windows, "buy_and_hold") * 10 >= 6 * n,
    );
    targets.insert(
        "max_drawdown_at_most_half_in_every_window",
        n > 0 && half_dd == n,
    );
    targets.insert(
        "positive_return_in_two_thirds",
        n > 0 && positive * 3 >= 2 * n,
    );
    targets.insert(
        "median_sharpe_at_least_best_voter_and_better_rule",
        team_median >= best_voter.as_ref().map_or(f64::MIN, |b| b.1) && team_median >= better_rule,
    );
    Summary {
        windows: n,
        trials,
        won_on_sharpe,
        drawdown_at_most_half_of_buy_and_hold: half_dd,
        positive_return: positive,
        median_sharpe,
        best_voter: best_voter.map(|b| b.0),
        probabilistic_sharpe_ratio: m.as_ref().map(|m| probabilistic_sharpe(m, 0.0)),
        deflated_sharpe_ratio: m.as_ref().map(|m| deflated_sharpe(m, trials.max(1))),
        targets,
    }
}

fn won_on_sharpe_count(windows: &[WindowResult], name: &str) -> usize {
    windows
        .iter()
        .filter(|w| {
            w.baselines
                .get(name)
                .is_some_and(|b| w.team.sharpe > b.sharpe)
        })
        .count()
}

/// `evaluate.json`: `{"windows": [...], "summary": {...}, "run": {...}}`.
pub fn json_report(windows: &[WindowResult], summary: &Summary, run: Value) -> Value {
    json!({ "windows": windows, "summary": summary, "run": run })
}

fn pct(x: f64) -> String {
    format!("{:+.1}%", x * 100.0)
}

/// The terminal table: one line per window, then the summary.
pub fn table(windows: &[WindowResult], summary: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8} {:<23} {:>8} {:>6} {:>6} {:>5} {:>5} | {:>8} {:>6} {:>6} | {:>6} {:>6} | {:>13}",
        "symbol",
        "window",
        "team",
        "Sharpe",
        "maxDD",
        "expo",
        "turn",
        "hold",
        "Sharpe",
        "maxDD",
        "SMA",
        "MACD",
        "best voter"
    );
    for w in windows {
        let b = |n: &str| w.baselines.get(n).copied().unwrap_or_else(zero);
        let hold = b("buy_and_hold");
        let best = w
            .voters
            .iter()
            .max_by(|a, b| a.1.sharpe.total_cmp(&b.1.sharpe))
            .map_or("-".to_string(), |(r, s)| {
                format!("{} {:.2}", short(r), s.sharpe)
            });
        let _ = writeln!(
            out,
            "{:<8} {:<23} {:>8} {:>6.2} {:>6.1} {:>5.2} {:>5.1} | {:>8} {:>6.2} {:>6.1} | {:>6.2} {:>6.2} | {:>13}",
            w.symbol,
            format!("{} → {}", w.from, w.to),
            pct(w.team.total_return),
            w.team.sharpe,
            w.team.max_drawdown * 100.0,
            w.team.exposure,
            w.team.turnover,
            pct(hold.total_return),
            hold.sharpe,
            hold.max_drawdown * 100.0,
            b("sma_crossover").sharpe,
            b("macd").sharpe,
            best,
        );
    }
    let s = summary;
    let n = s.windows;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "windows won on Sharpe: {}/{n} against buy-and-hold, {}/{n} against SMA crossover, {}/{n} against MACD",
        s.won_on_sharpe["buy_and_hold"], s.won_on_sharpe["sma_crossover"], s.won_on_sharpe["macd"]
    );
    let _ = writeln!(
        out,
        "max drawdown at most half of buy-and-hold's: {}/{n}; positive return: {}/{n}",
        s.drawdown_at_most_half_of_buy_and_hold, s.positive_return
    );
    let medians: Vec<String> = s
        .median_sharpe
        .iter()
        .map(|(k, v)| format!("{} {v:.2}", k.trim_start_matches("voter:")))
        .collect();
    let _ = writeln!(out, "median Sharpe: {}", medians.join(", "));
    let _ = writeln!(
        out,
        "probabilistic Sharpe ratio {}, deflated over {} trials {}",
        s.probabilistic_sharpe_ratio
            .map_or("-".into(), |p| format!("{p:.3}")),
        s.trials,
        s.deflated_sharpe_ratio
            .map_or("-".into(), |p| format!("{p:.3}")),
    );
    for (target, met) in &s.targets {
        let _ = writeln!(
            out,
            "target {target}: {}",
            if *met { "met" } else { "NOT met" }
        );
    }
    out
}

fn zero() -> Scores {
    Scores {
        total_return: 0.0,
        sharpe: 0.0,
        sortino: 0.0,
        calmar: 0.0,
        max_drawdown: 0.0,
        exposure: 0.0,
        turnover: 0.0,
        fees: 0.0,
        trades: 0,
    }
}

fn short(role: &str) -> &str {
    match role {
        "marketMonitor" => "monitor",
        "technicalAnalyst" => "technical",
        "fundamentalAnalyst" => "fundamental",
        "riskManager" => "risk",
        other => other,
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `evaluate.html`: the same figures as a page (no external assets).
pub fn html_report(windows: &[WindowResult], summary: &Summary, run: &Value) -> String {
    let mut rows = String::new();
    for w in windows {
        let mut cells = vec![
            escape(&w.symbol),
            format!("{} → {}", w.from, w.to),
            cell(&w.team),
        ];
        for b in BASELINES {
            cells.push(w.baselines.get(b).map_or("-".into(), cell));
        }
        for s in w.voters.values() {
            cells.push(cell(s));
        }
        let _ = write!(rows, "<tr><td>{}</td></tr>", cells.join("</td><td>"));
    }
    let voters: Vec<String> = windows
        .first()
        .map(|w| w.voters.keys().map(|r| escape(short(r))).collect())
        .unwrap_or_default();
    let targets: String = summary
        .targets
        .iter()
        .map(|(t, met)| {
            format!(
                "<li class=\"{}\">{}: {}</li>",
                if *met { "met" } else { "missed" },
                escape(t),
                if *met { "met" } else { "not met" }
            )
        })
        .collect();
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ia-agents evaluate</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .5em;text-align:right;white-space:nowrap}}
small{{color:#666}}.met{{color:#080}}.missed{{color:#b00}}</style>{view}</head><body>
<h1>Walk-forward evaluation</h1>
<p>Each window is traded out of sample with fresh capital, net of fees and slippage; cells are
Sharpe / total return / max drawdown. Nothing here is investment advice.</p>
<table><thead><tr><th>symbol</th><th>window</th><th>team</th><th>buy &amp; hold</th><th>SMA crossover</th><th>MACD</th><th>{voters}</th></tr></thead>
<tbody>{rows}</tbody></table>
<h2>Summary</h2><ul>{targets}</ul>
<pre>{summary}</pre>
<h2>The team's decisions</h2><p>In each window, the latest {shown} decisions that traded, escalated,
were vetoed or were not HOLD. Click one for its debate.</p>{decisions}
<h2>Run</h2><pre>{run}</pre></body></html>
"#,
        view = crate::decision_view::head(),
        shown = super::DECISIONS_SHOWN,
        decisions = windows
            .iter()
            .map(|w| format!(
                "<h3>{} {} → {}</h3>{}",
                escape(&w.symbol),
                w.from,
                w.to,
                crate::decision_view::block(&w.decisions)
            ))
            .collect::<String>(),
        voters = voters.join("</th><th>"),
        summary = escape(&serde_json::to_string_pretty(summary).unwrap_or_default()),
        run = escape(&serde_json::to_string_pretty(run).unwrap_or_default()),
    )
}

fn cell(s: &Scores) -> String {
    format!(
        "{:.2}<br><small>{} / {:.1}%</small>",
        s.sharpe,
        pct(s.total_return),
        s.max_drawdown * 100.0
    )
}
