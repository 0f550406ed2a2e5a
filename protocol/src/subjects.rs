//! NATS subjects of one team: `ia.<namespace>.<strategy>.…` (docs/architecture.md, "NATS subjects
//! and messages").
//!
//! Every token is checked, so that a namespace or symbol can never inject a wildcard (`*`, `>`) or an
//! extra level (`.`) into a subject.

use crate::Role;
use std::fmt;

/// Root of every subject.
pub const ROOT: &str = "ia";
/// JetStream stream of decisions, orders and fills.
pub const STREAM_DECISIONS: &str = "IA_DECISIONS";
/// The subjects the decision stream keeps, for every namespace and strategy.
pub const STREAM_DECISIONS_SUBJECTS: [&str; 3] = ["ia.*.*.decision", "ia.*.*.order", "ia.*.*.fill"];
/// JetStream stream of the audit anchors: the head of each Strategy's audit chain, published by its
/// coordinator after each batch of audit rows is stored. It keeps the last message per subject (one
/// anchor per team): the anchor is a pointer, only the newest matters, and a stream of its own is
/// created on its own by every component (an existing `IA_DECISIONS` would keep its old subjects).
pub const STREAM_AUDIT: &str = "IA_AUDIT";
/// The subjects the audit stream keeps, for every namespace and strategy.
pub const STREAM_AUDIT_SUBJECTS: [&str; 1] = ["ia.*.*.audit"];
/// KV bucket of assistant presence (TTL = the bucket's max_age).
pub const PRESENCE_BUCKET: &str = "ia-assistants";

/// The consumer of the presence bucket for the team of `scope` (`<ns>.<strategy>`, as
/// [`Subjects::presence_scope`] says it): `ia_<ns>_<strategy>_presence`, named like the team's
/// other consumers ([`Subjects::consumer`]).
pub fn presence_consumer(scope: &str) -> String {
    format!("{ROOT}_{}_presence", scope.replace('.', "_"))
}

/// A token that cannot be part of a subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} cannot be a NATS subject token: use letters, digits, '-' and '_' only")]
pub struct InvalidToken {
    /// Which token was at fault (`namespace`, `strategy`, `symbol`, `escalation id`, `instance`).
    pub what: &'static str,
    /// The rejected value.
    pub value: String,
}

/// The JetStream stream that keeps a durable subject: [`STREAM_AUDIT`] for `….audit`,
/// [`STREAM_DECISIONS`] for the others (`….decision`, `….order`, `….fill`).
pub fn stream_for(subject: &str) -> &'static str {
    if subject.rsplit('.').next() == Some("audit") {
        STREAM_AUDIT
    } else {
        STREAM_DECISIONS
    }
}

fn check(what: &'static str, value: &str) -> Result<(), InvalidToken> {
    let ok = !value.is_empty()
        && value.len() <= 253
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(InvalidToken {
            what,
            value: value.to_string(),
        })
    }
}

/// The subjects of one Strategy in one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// Subjects for `strategy` in `namespace`; both must be plain tokens.
    pub fn new(namespace: &str, strategy: &str) -> Result<Self, InvalidToken> {
        check("namespace", namespace)?;
        check("strategy", strategy)?;
        Ok(Self {
            prefix: format!("{ROOT}.{namespace}.{strategy}"),
        })
    }

    /// `ia.<ns>.<strategy>`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Candles and ticker snapshots of a symbol (core NATS).
    pub fn market(&self, symbol: &str) -> Result<String, InvalidToken> {
        check("symbol", symbol)?;
        Ok(format!("{}.market.{symbol}", self.prefix))
    }

    /// Monitor alerts of a symbol; each starts a cycle (core NATS).
    pub fn alert(&self, symbol: &str) -> Result<String, InvalidToken> {
        check("symbol", symbol)?;
        Ok(format!("{}.alert.{symbol}", self.prefix))
    }

    /// Alerts of every symbol (for the coordinator's subscription).
    pub fn all_alerts(&self) -> String {
        format!("{}.alert.*", self.prefix)
    }

    /// Analysis requests for one role; replicas of the role share them through a queue group.
    pub fn analyze(&self, role: Role) -> String {
        format!("{}.analyze.{}", self.prefix, role.as_str())
    }

    /// The queue group replicas of one role join.
    pub fn analyze_queue_group(&self, role: Role) -> String {
        format!("{}-{}", self.prefix.replace('.', "-"), role.as_str())
    }

    /// The name of the team's JetStream consumer `kind` on a shared stream:
    /// `ia_<ns>_<strategy>_<kind>`. Kubernetes names hold no `_`, so no two teams' names meet
    /// (with `-`, `a-b`/`c` and `a`/`b-c` would); a grant names a consumer by it.
    pub fn consumer(&self, kind: &str) -> String {
        format!("{}_{kind}", self.prefix.replace('.', "_"))
    }

    /// The durable JetStream consumer of a service role on the decision stream, over
    /// `….decision` (the coordinator's candles and decisions): `ia_<ns>_<strategy>_<role>`, one
    /// per team and role, shared by its replicas.
    pub fn service_consumer(&self, role: Role) -> String {
        self.consumer(role.as_str())
    }

    /// The auditor's second durable consumer, over `….order` (the executor's reports):
    /// `ia_<ns>_<strategy>_auditor-orders`.
    pub fn auditor_orders_consumer(&self) -> String {
        self.consumer("auditor-orders")
    }

    /// Every subject of the team as a pattern (`ia.<ns>.<strategy>.>`): what a service may name
    /// as its consumer's filter (it names one subject of it: nats-server 2.9 refuses a filter
    /// wider than the stream's subjects).
    pub fn everything(&self) -> String {
        format!("{}.>", self.prefix)
    }

    /// Decisions (JetStream).
    pub fn decision(&self) -> String {
        format!("{}.decision", self.prefix)
    }

    /// Orders (JetStream).
    pub fn order(&self) -> String {
        format!("{}.order", self.prefix)
    }

    /// Fills (JetStream).
    pub fn fill(&self) -> String {
        format!("{}.fill", self.prefix)
    }

    /// The audit anchor: the head of the team's audit chain once stored (JetStream, stream
    /// [`STREAM_AUDIT`], the last one kept).
    pub fn audit(&self) -> String {
        format!("{}.audit", self.prefix)
    }

    /// The team's book as the coordinator last saw it (core NATS, the latest only): the operator
    /// writes it into the Strategy's `status.portfolio`.
    pub fn portfolio(&self) -> String {
        format!("{}.portfolio", self.prefix)
    }

    /// The executor's book of a live Strategy (core NATS, the latest only): the coordinator's view
    /// of the book follows it in services mode.
    pub fn book(&self) -> String {
        format!("{}.book", self.prefix)
    }

    /// Approve / reject of one escalation (core NATS).
    pub fn escalation(&self, id: &str) -> Result<String, InvalidToken> {
        check("escalation id", id)?;
        Ok(format!("{}.escalation.{id}", self.prefix))
    }

    /// Every escalation subject of this team (the Escalations and their answers).
    pub fn all_escalations(&self) -> String {
        format!("{}.escalation.*", self.prefix)
    }

    /// The part of presence keys shared by this team's assistants (`<ns>.<strategy>`).
    pub fn presence_scope(&self) -> &str {
        self.prefix.trim_start_matches("ia.")
    }

    /// The team's consumer of the presence bucket: `ia_<ns>_<strategy>_presence`.
    pub fn presence_consumer(&self) -> String {
        presence_consumer(self.presence_scope())
    }

    /// Key of an assistant instance in the presence bucket (`<ns>.<strategy>.<role>.<instance>` flattened).
    pub fn presence_key(&self, role: Role, instance: &str) -> Result<String, InvalidToken> {
        check("instance", instance)?;
        Ok(format!(
            "{}.{}.{instance}",
            self.presence_scope(),
            role.as_str()
        ))
    }
}

impl fmt::Display for Subjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_design_subjects() {
        let s = Subjects::new("trading", "btc-eth-paper").unwrap();
        assert_eq!(
            s.market("BTCUSDT").unwrap(),
            "ia.trading.btc-eth-paper.market.BTCUSDT"
        );
        assert_eq!(
            s.alert("ETHUSDT").unwrap(),
            "ia.trading.btc-eth-paper.alert.ETHUSDT"
        );
        assert_eq!(s.all_alerts(), "ia.trading.btc-eth-paper.alert.*");
        assert_eq!(
            s.analyze(Role::RiskManager),
            "ia.trading.btc-eth-paper.analyze.riskManager"
        );
        assert_eq!(s.decision(), "ia.trading.btc-eth-paper.decision");
        assert_eq!(s.order(), "ia.trading.btc-eth-paper.order");
        assert_eq!(s.fill(), "ia.trading.btc-eth-paper.fill");
        assert_eq!(s.audit(), "ia.trading.btc-eth-paper.audit");
        assert_eq!(
            s.escalation("c42").unwrap(),
            "ia.trading.btc-eth-paper.escalation.c42"
        );
        assert_eq!(
            s.presence_key(Role::Strategist, "pod-1").unwrap(),
            "trading.btc-eth-paper.strategist.pod-1"
        );
    }

    #[test]
    fn each_durable_subject_has_its_stream() {
        let s = Subjects::new("trading", "audit").unwrap();
        assert_eq!(stream_for(&s.audit()), STREAM_AUDIT);
        for subject in [s.decision(), s.order(), s.fill()] {
            assert_eq!(stream_for(&subject), STREAM_DECISIONS, "{subject}");
        }
        let token = |pattern: &str| pattern.rsplit('.').next().unwrap().to_string();
        assert_eq!(token(STREAM_AUDIT_SUBJECTS[0]), token(&s.audit()));
    }

    #[test]
    fn wildcards_and_dots_are_refused_naming_the_input() {
        assert_eq!(Subjects::new("a.b", "s").unwrap_err().what, "namespace");
        let s = Subjects::new("ns", "s").unwrap();
        for bad in ["BTC.USDT", "*", ">", "", "BTC USDT"] {
            let err = s.market(bad).unwrap_err();
            assert_eq!(err.what, "symbol");
            assert!(err.to_string().contains(&format!("{bad:?}")));
        }
    }
}
