//! What a notification says, independent of the channel it goes to.

use protocol::crd::NotificationEvent;
use protocol::messages::{Escalation, Fill};
use serde::Serialize;
use serde_json::{json, Value};

/// One notification: a line of text for chat channels, and its details for JSON webhooks.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The Strategy it concerns.
    pub strategy: String,
    /// Which of a target's `events` it belongs to.
    pub event: NotificationEvent,
    /// The message as people read it.
    pub text: String,
    /// Where to act on it (an escalation in the console), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The facts behind the text, for programs.
    pub details: Value,
}

impl Event {
    /// The team could not agree on `escalation` and waits for a human; `console_url` (the
    /// Strategy's `spec.notifications.consoleUrl`) gives the link to answer it.
    pub fn escalation(escalation: &Escalation, console_url: Option<&str>) -> Self {
        let link = console_url.map(|base| {
            format!(
                "{}/#escalation/{}",
                base.trim_end_matches('/'),
                escalation.id
            )
        });
        let answer = match &link {
            Some(link) => format!("answer it in the console: {link}"),
            None => format!(
                "answer it with `kubectl ia-agents approve|reject {}`",
                escalation.id
            ),
        };
        let text = format!(
            "{}: the team is split on {} and asks you to approve {:?} within {} s; {answer}",
            escalation.strategy, escalation.symbol, escalation.proposed, escalation.timeout_seconds
        );
        Self {
            strategy: escalation.strategy.to_string(),
            event: NotificationEvent::Escalation,
            text,
            link,
            details: json!({"kind": "escalation", "escalation": escalation}),
        }
    }

    /// The kill switch (`spec.paused`) was thrown (`engaged`) or released.
    pub fn kill_switch(strategy: &str, engaged: bool) -> Self {
        let text = if engaged {
            format!("{strategy}: the kill switch is on (spec.paused): trading stopped and the team scales to zero")
        } else {
            format!("{strategy}: the kill switch is off: the team starts again")
        };
        Self {
            strategy: strategy.into(),
            event: NotificationEvent::Risk,
            text,
            link: None,
            details: json!({"kind": "killSwitch", "engaged": engaged}),
        }
    }

    /// A risk limit stopped or closed a trade on `symbol`; `reason` names the limit.
    pub fn risk_limit(strategy: &str, symbol: &str, decision_id: &str, reason: &str) -> Self {
        Self {
            strategy: strategy.into(),
            event: NotificationEvent::Risk,
            text: format!("{strategy}: risk limit on {symbol}: {reason}"),
            link: None,
            details: json!({"kind": "riskLimit", "symbol": symbol, "decisionId": decision_id, "reason": reason}),
        }
    }

    /// An order filled.
    pub fn fill(fill: &Fill) -> Self {
        Self {
            strategy: fill.strategy.to_string(),
            event: NotificationEvent::Fill,
            text: format!(
                "{}: {:?} {} {} @ {} (fee {})",
                fill.strategy, fill.side, fill.quantity, fill.symbol, fill.price, fill.fee
            ),
            link: None,
            details: json!({"kind": "fill", "fill": fill}),
        }
    }

    /// The roles in `missing` have no healthy assistant (empty: the whole team is back).
    pub fn team_health(strategy: &str, missing: &[String]) -> Self {
        let text = if missing.is_empty() {
            format!("{strategy}: the team is whole again: every voter answers")
        } else {
            format!(
                "{strategy}: the team is degraded: no healthy {}; the quorum decides without them",
                missing.join(", ")
            )
        };
        Self {
            strategy: strategy.into(),
            event: NotificationEvent::Degraded,
            text,
            link: None,
            details: json!({"kind": if missing.is_empty() { "recovered" } else { "degraded" }, "missing": missing}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::messages::Side;
    use protocol::Action;
    use rust_decimal::Decimal;

    fn escalation() -> Escalation {
        Escalation {
            id: "btc_BTCUSDT_1_schedule".into(),
            strategy: "btc".into(),
            symbol: "BTCUSDT".into(),
            proposed: Action::Buy,
            scores: Default::default(),
            timeout_seconds: 300,
            raised_at: 1,
        }
    }

    #[test]
    fn an_escalation_links_to_the_console_or_says_how_to_answer() {
        let linked = Event::escalation(&escalation(), Some("https://ia.example.com/"));
        assert_eq!(
            linked.link.as_deref(),
            Some("https://ia.example.com/#escalation/btc_BTCUSDT_1_schedule")
        );
        assert!(
            linked.text.contains("approve Buy within 300 s"),
            "{}",
            linked.text
        );
        let unlinked = Event::escalation(&escalation(), None);
        assert!(unlinked
            .text
            .contains("kubectl ia-agents approve|reject btc_BTCUSDT_1_schedule"));
        assert_eq!(unlinked.details["escalation"]["symbol"], "BTCUSDT");
    }

    #[test]
    fn each_event_belongs_to_its_kind() {
        let fill = Fill {
            decision_id: "d".into(),
            strategy: "btc".into(),
            symbol: "BTCUSDT".into(),
            side: Side::Buy,
            quantity: Decimal::new(5, 2),
            price: Decimal::new(30_000, 0),
            fee: Decimal::new(15, 1),
            at: 0,
        };
        assert_eq!(Event::fill(&fill).event, NotificationEvent::Fill);
        assert!(Event::fill(&fill).text.contains("Buy 0.05 BTCUSDT @ 30000"));
        assert_eq!(
            Event::kill_switch("btc", true).event,
            NotificationEvent::Risk
        );
        assert_eq!(
            Event::risk_limit("btc", "BTCUSDT", "d", "stop-loss").event,
            NotificationEvent::Risk
        );
        let degraded = Event::team_health("btc", &["strategist".into()]);
        assert_eq!(degraded.details["kind"], "degraded");
        assert_eq!(Event::team_health("btc", &[]).details["kind"], "recovered");
    }
}
