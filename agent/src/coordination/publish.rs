//! Decisions out of the coordinator: onto the durable stream, in order, from a task of their own
//! (`bus::publisher`), and printed once published. With executor and auditor services, each scored
//! candle goes on `….decision` too, ahead of the decision taken on it.

use crate::bus::nats::NatsBus;
use crate::bus::publisher::{publish_in_order, Backlog, Identified, PublishError};
use crate::bus::Bus;
use protocol::messages::{Decision, MarketCandle, Message};
use protocol::subjects::Subjects;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

/// What the coordinator puts on the decision stream, in the order it happened.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A decision, on `….decision`.
    Decision(Decision),
    /// A scored candle, on `….decision` ahead of its decision (executor and auditor services only).
    Candle(MarketCandle),
}

impl Identified for Outgoing {
    fn id(&self) -> String {
        match self {
            Self::Decision(d) => d.id.to_string(),
            Self::Candle(c) => format!("{}_{}", c.symbol, c.open_time),
        }
    }
}

impl Outgoing {
    /// Its subject, message id (deduplicated by the stream) and message.
    fn addressed(&self, subjects: &Subjects) -> (String, String, Message) {
        match self {
            Self::Decision(d) => (
                subjects.decision(),
                d.id.to_string(),
                Message::Decision(d.clone()),
            ),
            Self::Candle(c) => (
                subjects.decision(),
                format!("candle_{}_{}", c.symbol, c.open_time),
                Message::Candle(c.clone()),
            ),
        }
    }
}

/// The publisher's task: what is sent to the returned sender goes to its subject of `subjects`
/// (exactly once per id, in order) and decisions are printed; `ready` is false while some are not
/// on the stream yet, and `backlog` counts them out as they go. Returns how many decisions it
/// published.
pub fn spawn_publisher(
    bus: NatsBus,
    subjects: Subjects,
    strategy: String,
    (ready, backlog): (Arc<AtomicBool>, Arc<Backlog>),
    json_lines: bool,
) -> (
    UnboundedSender<Outgoing>,
    JoinHandle<Result<u64, PublishError>>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Outgoing>();
    let task = tokio::spawn(async move {
        let decisions = AtomicU64::new(0);
        let publish = |out: &Outgoing| {
            let (bus, addressed) = (bus.clone(), out.addressed(&subjects));
            async move {
                let (subject, id, message) = addressed;
                bus.publish_durable(&subject, &id, &message)
                    .await
                    .map(|_| ())
            }
        };
        publish_in_order(&strategy, rx, ready, publish, |out| {
            backlog.published();
            if let Outgoing::Decision(decision) = out {
                decisions.fetch_add(1, Ordering::Relaxed);
                print_decision(decision, json_lines)
            }
        })
        .await?;
        Ok(decisions.load(Ordering::Relaxed))
    });
    (tx, task)
}

/// Prints a published decision: one JSON line (`--json`) or one line for people.
pub fn print_decision(decision: &Decision, json_lines: bool) {
    if json_lines {
        println!("{}", decision_line(decision));
        return;
    }
    let flag = |on: bool, text: &'static str| if on { text } else { "" };
    println!(
        "{} {} {} confidence {:.2} ({} rounds{}{}{})",
        decision.id,
        decision.symbol,
        decision.action,
        decision.confidence,
        decision.rounds.len(),
        flag(decision.escalated, ", escalated"),
        flag(decision.vetoed, ", vetoed"),
        flag(decision.rejected, ", rejected"),
    );
}

/// A decision as `--json` prints it: one line per decision.
pub fn decision_line(d: &Decision) -> serde_json::Value {
    let votes: Vec<_> = d
        .rounds
        .last()
        .map(|r| {
            r.votes
                .iter()
                .map(|v| json!({"assistant": v.assistant, "role": v.role, "action": v.action, "confidence": v.confidence, "weight": v.weight, "veto": v.veto}))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "id": d.id,
        "symbol": d.symbol,
        "action": d.action,
        "confidence": d.confidence,
        "consensus_reached": d.consensus_reached,
        "rounds": d.rounds.len(),
        "votes": votes,
        "escalated": d.escalated,
        "vetoed": d.vetoed,
        "rejected": d.rejected,
        "price": d.price,
        "decided_at": d.decided_at,
    })
}
