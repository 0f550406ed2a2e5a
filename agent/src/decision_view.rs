//! The decision view of the reports (docs/architecture.md, "The console"): `report.html` and
//! `evaluate.html` embed their decisions as JSON and render them with the console's own
//! `decisions.js` and `decisions.css`, inlined so that a report stays one self-contained file:
//! the same table, filters by action and outcome, and each decision's debate.

use crate::api::console::{DECISIONS_SCRIPT, DECISIONS_STYLE};
use crate::engine::DecisionRecord;
use serde_json::Value;

/// The view's style and script, once per page (in its `<head>`).
pub fn head() -> String {
    format!("<style>{DECISIONS_STYLE}</style><script>{DECISIONS_SCRIPT}</script>")
}

/// A block of decisions the page renders where it stands: each the protocol's `Decision` (with
/// its debate) and what the desk did with it (`execution`), newest first.
pub fn block<'a>(records: impl IntoIterator<Item = &'a DecisionRecord>) -> String {
    let decisions: Vec<Value> = records.into_iter().map(record_json).collect();
    let json = serde_json::to_string(&decisions).unwrap_or_else(|_| "[]".into());
    // JSON never has `<` outside its strings, so escaping it keeps any `</script>` in a reasoning
    // from ending the block
    format!(
        "<script type=\"application/json\" class=\"ia-decisions\">{}</script>",
        json.replace('<', "\\u003c")
    )
}

fn record_json(record: &DecisionRecord) -> Value {
    let mut value = serde_json::to_value(&record.decision).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut value {
        fields.insert("execution".into(), Value::String(record.execution.clone()));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::messages::Decision;
    use protocol::Action;

    #[test]
    fn a_reasoning_cannot_close_the_block() {
        let decision = Decision {
            id: "d1".into(),
            strategy: "s".into(),
            symbol: "BTCUSDT".into(),
            action: Action::Hold,
            confidence: 0.5,
            consensus_reached: false,
            escalated: false,
            vetoed: false,
            rejected: false,
            resolved_by: None,
            rounds: vec![],
            transcript: vec![],
            price: 1.0,
            decided_at: 0,
        };
        let record = DecisionRecord {
            decision,
            trigger: crate::engine::Trigger::Schedule,
            execution: "</script><script>alert(1)</script>".into(),
            fill: None,
        };
        let html = block([&record]);
        assert_eq!(html.matches("</script>").count(), 1, "{html}");
        let json = html
            .trim_start_matches("<script type=\"application/json\" class=\"ia-decisions\">")
            .trim_end_matches("</script>");
        let parsed: Value = serde_json::from_str(json).unwrap();
        assert_eq!(parsed[0]["execution"], "</script><script>alert(1)</script>");
        assert_eq!(parsed[0]["decidedAt"], 0);
    }
}
