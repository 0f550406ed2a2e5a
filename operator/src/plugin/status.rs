//! `kubectl ia-agents status STRATEGY`: one screen, like `kubectl cnpg status`.

use super::PluginError;
use kube::Client;
use protocol::crd::{DecisionSummary, PendingEscalation, PortfolioSummary, TradingAssistant};
use serde::Serialize;
use std::fmt::Write;

/// What `status` shows.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    /// Name of the Strategy.
    pub strategy: String,
    /// Its namespace.
    pub namespace: String,
    /// `paper` or `live` (spec.mode).
    pub mode: String,
    /// spec.paused: the kill switch is on and the team is scaled to zero.
    pub paused: bool,
    /// The symbols it trades (spec.symbols).
    pub symbols: Vec<String>,
    /// Starting capital in the quote asset (spec.capital).
    pub capital: f64,
    /// The Strategy's conditions, as in its status.
    pub conditions: Vec<ConditionView>,
    /// `status.lastDecision`; `None` before the first decision.
    pub last_decision: Option<DecisionSummary>,
    /// `status.pendingEscalations`: what waits for a human.
    pub pending_escalations: Vec<PendingEscalation>,
    /// `status.portfolio`; `None` until something writes it.
    pub portfolio: Option<PortfolioSummary>,
    /// The TradingAssistants bound to the Strategy.
    pub assistants: Vec<AssistantView>,
    /// The Secret holding the coordinator API's token (`status.apiTokenSecret`), once created.
    pub api_token_secret: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionView {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssistantView {
    pub name: String,
    pub role: String,
    pub replicas: i32,
    pub ready_replicas: i32,
    pub weight: f64,
    pub last_opinion: Option<String>,
}

/// Reads the Strategy and the TradingAssistants bound to it.
pub async fn status(
    client: Client,
    namespace: &str,
    strategy: &str,
) -> Result<StatusView, PluginError> {
    let s = super::strategy(&client, namespace, strategy).await?;
    let assistants = super::assistants_of(&client, namespace, strategy)
        .await?
        .into_iter()
        .map(assistant_view)
        .collect();
    let status = s.status.clone().unwrap_or_default();
    Ok(StatusView {
        strategy: strategy.to_string(),
        namespace: namespace.to_string(),
        mode: serde_json::to_value(s.spec.mode)
            .ok()
            .and_then(|m| m.as_str().map(String::from))
            .unwrap_or_default(),
        paused: s.spec.paused,
        symbols: s.spec.symbols.clone(),
        capital: s.spec.capital,
        conditions: status
            .conditions
            .iter()
            .map(|c| ConditionView {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
            })
            .collect(),
        last_decision: status.last_decision,
        pending_escalations: status.pending_escalations,
        portfolio: status.portfolio,
        assistants,
        api_token_secret: status.api_token_secret,
    })
}

fn assistant_view(a: TradingAssistant) -> AssistantView {
    let status = a.status.unwrap_or_default();
    AssistantView {
        name: a.metadata.name.unwrap_or_default(),
        role: a.spec.role.as_str().to_string(),
        replicas: a.spec.replicas,
        ready_replicas: status.ready_replicas,
        weight: status.weight.unwrap_or(a.spec.weight),
        last_opinion: status.last_opinion.map(|o| {
            format!(
                "{} {} {:.0}% ({})",
                o.symbol,
                o.action,
                100.0 * o.confidence,
                o.at
            )
        }),
    }
}

/// How the last decision ended: a consensus, a veto, or neither.
fn outcome(d: &DecisionSummary) -> &'static str {
    match (d.consensus_reached, d.vetoed) {
        (true, _) => ", consensus",
        (false, true) => ", vetoed",
        (false, false) => ", no consensus",
    }
}

/// The screen.
pub fn text(v: &StatusView) -> String {
    let mut out = String::new();
    let ready = v
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map_or("Unknown", |c| c.status.as_str());
    let _ = writeln!(
        out,
        "Strategy {}/{}  mode {}{}  Ready={ready}",
        v.namespace,
        v.strategy,
        v.mode,
        if v.paused { "  PAUSED" } else { "" }
    );
    let _ = writeln!(
        out,
        "symbols {}  capital {:.2}",
        v.symbols.join(", "),
        v.capital
    );
    if let Some(p) = &v.portfolio {
        let _ = writeln!(
            out,
            "equity {:.2}  pnl {:+.2}  open positions {}",
            p.equity, p.pnl, p.open_positions
        );
    }
    let _ = writeln!(out, "\nConditions");
    for c in &v.conditions {
        let _ = writeln!(
            out,
            "  {:<18} {:<6} {:<18} {}",
            c.type_, c.status, c.reason, c.message
        );
    }
    let _ = writeln!(out, "\nLast decision");
    match &v.last_decision {
        Some(d) => {
            let _ = writeln!(
                out,
                "  {} {} {} {:.0}% in {} round(s){}  {}",
                d.at,
                d.symbol,
                d.action,
                100.0 * d.confidence,
                d.rounds,
                outcome(d),
                d.id
            );
        }
        None => out.push_str("  none yet\n"),
    }
    let _ = writeln!(
        out,
        "\nPending escalations ({})",
        v.pending_escalations.len()
    );
    for e in &v.pending_escalations {
        let _ = writeln!(
            out,
            "  {}  {} since {}  (kubectl ia-agents approve|reject {})",
            e.id, e.symbol, e.since, e.id
        );
    }
    let _ = writeln!(out, "\nAssistants");
    let _ = writeln!(
        out,
        "  {:<22} {:<19} {:>5} {:>7}  last opinion",
        "name", "role", "ready", "weight"
    );
    for a in &v.assistants {
        let _ = writeln!(
            out,
            "  {:<22} {:<19} {:>5} {:>7.3}  {}",
            a.name,
            a.role,
            format!("{}/{}", a.ready_replicas, a.replicas),
            a.weight,
            a.last_opinion.as_deref().unwrap_or("-")
        );
    }
    if let Some(secret) = &v.api_token_secret {
        let _ = writeln!(out, "\nAPI token: Secret {secret} (key token); console: kubectl -n {} port-forward deploy/{}-coordinator 8080", v.namespace, v.strategy);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(consensus_reached: bool, reason: &str) -> StatusView {
        StatusView {
            strategy: "btc".into(),
            namespace: "trading".into(),
            mode: "paper".into(),
            paused: false,
            symbols: vec!["BTCUSDT".into()],
            capital: 10_000.0,
            conditions: vec![ConditionView {
                type_: "ConsensusReached".into(),
                status: consensus_reached.to_string(),
                reason: reason.into(),
                message: "decision btc_BTCUSDT_1_schedule: HOLD BTCUSDT".into(),
            }],
            last_decision: Some(DecisionSummary {
                id: "btc_BTCUSDT_1_schedule".into(),
                symbol: "BTCUSDT".into(),
                action: protocol::Action::Hold,
                confidence: 1.0,
                consensus_reached,
                vetoed: reason == "Vetoed",
                rounds: 1,
                votes: Default::default(),
                at: "2020-01-01T00:00:00Z".into(),
            }),
            pending_escalations: vec![],
            portfolio: None,
            assistants: vec![],
            api_token_secret: None,
        }
    }

    #[test]
    fn the_last_decision_says_how_it_ended() {
        assert!(text(&view(true, "Consensus")).contains("in 1 round(s), consensus"));
        assert!(text(&view(false, "Vetoed")).contains("in 1 round(s), vetoed"));
        assert!(text(&view(false, "NoConsensus")).contains("in 1 round(s), no consensus"));
    }
}
