//! Decisions out of the coordinator: onto the durable stream, in order, from a task of their own
//! (`bus::publisher`), and printed once published.

use crate::bus::nats::NatsBus;
use crate::bus::publisher::{publish_in_order, Backlog, PublishError};
use crate::bus::Bus;
use protocol::messages::{Decision, Message};
use serde_json::json;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

/// The publisher's task: decisions sent to the returned sender go to `subject` (exactly once per
/// cycle id, in order) and are printed; `ready` is false while some are not on the stream yet, and
/// `backlog` counts them out as they go.
pub fn spawn_publisher(
    bus: NatsBus,
    subject: String,
    strategy: String,
    (ready, backlog): (Arc<AtomicBool>, Arc<Backlog>),
    json_lines: bool,
) -> (
    UnboundedSender<Decision>,
    JoinHandle<Result<u64, PublishError>>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Decision>();
    let task = tokio::spawn(async move {
        let publish = |d: &Decision| {
            let (bus, subject) = (bus.clone(), subject.clone());
            let (id, message) = (d.id.clone(), Message::Decision(d.clone()));
            async move {
                bus.publish_durable(&subject, &id, &message)
                    .await
                    .map(|_| ())
            }
        };
        publish_in_order(&strategy, rx, ready, publish, |decision| {
            backlog.published();
            print_decision(decision, json_lines)
        })
        .await
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
