//! Who a component is on NATS, and what it may do there (issue 17): one identity per component of a
//! team (coordinator, executor, auditor, operator, each reasoning role), authenticated by an nkey
//! (the server holds the public key, the component its seed) and held by server-side permissions
//! to its own subjects. Pure data: `trading-agent nats-config` (a bare machine) and the operator
//! (a managed NATS) both write the server's `authorization` block from these grants, each with the
//! public keys of seeds it generated itself. See docs/architecture.md, "Identities and
//! permissions".

use crate::subjects::{Subjects, PRESENCE_BUCKET, STREAM_AUDIT, STREAM_DECISIONS};
use crate::Role;

/// The coordinator's identity: the hub, which asks the voters, decides and anchors the audit chain.
pub const COORDINATOR: &str = "coordinator";
/// The operator's identity: it follows the decision stream and relays escalation answers.
pub const OPERATOR: &str = "operator";
/// The executor's identity (the `executor` role).
pub const EXECUTOR: &str = "executor";
/// The auditor's identity (the `auditor` role; also `trading-agent audit verify --nats`).
pub const AUDITOR: &str = "auditor";

/// The identity a TradingAssistant of `role` connects as: the role's name (`technicalAnalyst`,
/// `executor`, `auditor`, …).
pub fn identity_of(role: Role) -> &'static str {
    role.as_str()
}

/// What one identity may publish and subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The component's name: `coordinator`, `executor`, `auditor`, `operator`, or a role's.
    pub identity: String,
    /// Subjects it may publish to (NATS patterns: `*` and `>` wildcards).
    pub publish: Vec<String>,
    /// Subjects it may subscribe to (NATS patterns), its own inbox included.
    pub subscribe: Vec<String>,
    /// May answer requests made to it (on the requester's reply subject, once).
    pub allow_responses: bool,
}

impl Grant {
    /// Whether this identity may publish to `subject` (a literal subject).
    pub fn may_publish(&self, subject: &str) -> bool {
        self.publish.iter().any(|p| covers(p, subject))
    }

    /// Whether this identity may subscribe to `subject` (a literal subject).
    pub fn may_subscribe(&self, subject: &str) -> bool {
        self.subscribe.iter().any(|p| covers(p, subject))
    }
}

/// Whether the NATS subject pattern `pattern` (`*` one token, `>` the rest) covers the literal
/// `subject`, as the server matches a permission.
pub fn covers(pattern: &str, subject: &str) -> bool {
    let mut subject = subject.split('.');
    for token in pattern.split('.') {
        match (token, subject.next()) {
            (">", Some(_)) => return true,
            (_, None) => return false,
            ("*", Some(_)) => {}
            (t, Some(s)) if t == s => {}
            _ => return false,
        }
    }
    subject.next().is_none()
}

/// The inbox prefix of `identity`: replies to its requests come here, and nobody else may read it.
/// Every client connects with it as its custom inbox prefix.
pub fn inbox_prefix(identity: &str) -> String {
    format!("_INBOX.{identity}")
}

/// JetStream API calls every component makes at start: the team's streams exist (looked up,
/// created when missing).
fn stream_setup() -> Vec<String> {
    [STREAM_DECISIONS, STREAM_AUDIT, PRESENCE_BUCKET]
        .iter()
        .flat_map(|s| {
            [
                format!("$JS.API.STREAM.INFO.{s}"),
                format!("$JS.API.STREAM.CREATE.{s}"),
            ]
        })
        .collect()
}

/// What the operator may publish: escalation answers, and the JetStream API calls of its two
/// consumers (`IA_DECISIONS`, `IA_AUDIT`), by name.
fn operator_publish(subjects: &Subjects) -> Vec<String> {
    let mut publish = vec![
        subjects.all_escalations(),
        format!("$JS.API.STREAM.CREATE.{STREAM_AUDIT}"),
        format!("$JS.API.STREAM.MSG.GET.{STREAM_AUDIT}"),
    ];
    for stream in [STREAM_DECISIONS, STREAM_AUDIT] {
        publish.extend([
            format!("$JS.API.STREAM.INFO.{stream}"),
            format!("$JS.API.CONSUMER.CREATE.{stream}"),
            format!("$JS.API.CONSUMER.CREATE.{stream}.>"),
            format!("$JS.API.CONSUMER.INFO.{stream}.*"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.*"),
            format!("$JS.ACK.{stream}.>"),
        ]);
    }
    publish
}

/// The grants of a team: its coordinator, the operator, the executor, the auditor, and each role
/// in `voters`, in that order, each identity once.
///
/// The audit anchor (`….audit`) is the coordinator's alone to publish (under its `<team>.>`); the
/// operator may read it (into the Strategy's status), and so may the auditor's identity, which
/// `trading-agent audit verify --nats` connects as (a JetStream message get on `IA_AUDIT`).
pub fn grants(subjects: &Subjects, voters: &[Role]) -> Vec<Grant> {
    let team = subjects.prefix();
    let presence = |role: Role| {
        format!(
            "{PRESENCE_BUCKET}.{}.{}.*",
            subjects.presence_scope(),
            role.as_str()
        )
    };
    let mut grants = vec![
        // the hub: asks the voters, decides, escalates, relays its API's answers, reads presence
        Grant {
            identity: COORDINATOR.into(),
            publish: vec![format!("{team}.>"), "$JS.API.>".into()],
            subscribe: vec![
                format!("{team}.>"),
                format!("{}.>", inbox_prefix(COORDINATOR)),
            ],
            allow_responses: false,
        },
        // follows the decision stream and the audit anchor (JetStream consumers: the stream's
        // info, a consumer, its next messages; `IA_AUDIT` created when missing) and the
        // escalations, and relays annotations' answers to escalations: nothing more of the
        // JetStream API (no stream deleted or purged)
        Grant {
            identity: OPERATOR.into(),
            publish: operator_publish(subjects),
            subscribe: vec![
                subjects.all_escalations(),
                subjects.audit(),
                subjects.portfolio(),
                format!("{}.>", inbox_prefix(OPERATOR)),
            ],
            allow_responses: false,
        },
    ];
    for (identity, role, extra_publish) in [
        (
            EXECUTOR,
            Role::Executor,
            vec![subjects.order(), subjects.fill()],
        ),
        // reads the audit anchor (`audit verify --nats`), publishes nothing of the team's
        (
            AUDITOR,
            Role::Auditor,
            vec![format!("$JS.API.STREAM.MSG.GET.{STREAM_AUDIT}")],
        ),
    ] {
        let mut publish = stream_setup();
        publish.push(presence(role));
        publish.extend(extra_publish);
        grants.push(Grant {
            identity: identity.into(),
            publish,
            subscribe: vec![format!("{}.>", inbox_prefix(identity))],
            allow_responses: false,
        });
    }
    for &role in voters {
        if grants.iter().any(|g| g.identity == identity_of(role)) {
            continue;
        }
        let mut publish = stream_setup();
        publish.push(presence(role));
        grants.push(Grant {
            identity: identity_of(role).into(),
            publish,
            subscribe: vec![
                subjects.analyze(role),
                format!("{}.>", inbox_prefix(identity_of(role))),
            ],
            allow_responses: true,
        });
    }
    grants
}

/// Every identity of a team whatever its policy: the coordinator, the operator, the executor, the
/// auditor and all five reasoning roles (a role the policy does not count may still run; its
/// grant lets it do nothing but wait to be asked). The operator provisions these for a managed
/// NATS, so that its generated Secret never has to change when the policy does.
pub fn team_grants(subjects: &Subjects) -> Vec<Grant> {
    grants(subjects, &Role::DEFAULT_VOTERS)
}

/// The `authorization` block of a nats-server configuration: each grant with its nkey's public key
/// (`U…`), in the order given. Nothing secret goes in it.
pub fn authorization(keyed: &[(Grant, String)]) -> String {
    let list = |subjects: &[String]| {
        subjects
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::from("authorization {\n  users = [\n");
    for (grant, public_key) in keyed {
        out.push_str(&format!(
            "    # {}\n    {{ nkey: \"{public_key}\", permissions: {{ publish: {{ allow: [{}] }}, subscribe: {{ allow: [{}] }}{} }} }}\n",
            grant.identity,
            list(&grant.publish),
            list(&grant.subscribe),
            if grant.allow_responses { ", allow_responses: true" } else { "" },
        ));
    }
    out.push_str("  ]\n}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_coordinator_publishes_the_audit_anchor_and_the_operator_reads_it() {
        assert!(covers("ia.t.s.>", "ia.t.s.audit") && covers("ia.*.*.audit", "ia.t.s.audit"));
        assert!(!covers("ia.t.s.escalation.*", "ia.t.s.audit") && !covers("ia.t.s", "ia.t.s.x"));
        let subjects = Subjects::new("trading", "btc").unwrap();
        let anchor = subjects.audit();
        let grants = grants(&subjects, &Role::DEFAULT_VOTERS);
        let publishers: Vec<&str> = grants
            .iter()
            .filter(|g| g.may_publish(&anchor))
            .map(|g| g.identity.as_str())
            .collect();
        assert_eq!(publishers, [COORDINATOR]);
        let grant = |name: &str| grants.iter().find(|g| g.identity == name).unwrap();
        assert!(grant(OPERATOR).subscribe.contains(&anchor));
        let message_get = format!("$JS.API.STREAM.MSG.GET.{STREAM_AUDIT}");
        for reader in [OPERATOR, AUDITOR, COORDINATOR] {
            assert!(
                grant(reader).may_publish(&message_get),
                "{reader} reads the anchor from the stream"
            );
        }
        // every component creates or looks up the audit stream at start
        for g in &grants {
            let info = format!("$JS.API.STREAM.INFO.{STREAM_AUDIT}");
            assert!(g.may_publish(&info), "{}: {:?}", g.identity, g.publish);
        }
    }

    #[test]
    fn each_identity_holds_only_its_own_subjects() {
        let subjects = Subjects::new("trading", "btc").unwrap();
        let grants = grants(&subjects, &[Role::TechnicalAnalyst, Role::RiskManager]);
        let names: Vec<&str> = grants.iter().map(|g| g.identity.as_str()).collect();
        assert_eq!(
            names,
            [
                "coordinator",
                "operator",
                "executor",
                "auditor",
                "technicalAnalyst",
                "riskManager"
            ]
        );
        let technical = &grants[4];
        assert!(technical.allow_responses);
        assert_eq!(
            technical.subscribe,
            [
                "ia.trading.btc.analyze.technicalAnalyst",
                "_INBOX.technicalAnalyst.>"
            ]
        );
        for g in &grants[2..] {
            assert!(
                !g.publish
                    .iter()
                    .any(|s| s.contains(".decision") || s.contains(".escalation")),
                "{} may not decide or resolve: {:?}",
                g.identity,
                g.publish
            );
        }
        assert!(grants[1]
            .publish
            .contains(&"ia.trading.btc.escalation.*".to_string()));
        let config = authorization(&[(technical.clone(), "UABC".into())]);
        assert!(config.contains("nkey: \"UABC\"") && config.contains("allow_responses: true"));
        assert!(config.starts_with("authorization {\n  users = [\n"));
    }

    /// What the operator's decision consumer does on the team's NATS, as the server checks it.
    #[test]
    fn the_operator_may_do_what_its_decision_consumer_does_and_no_more() {
        let subjects = Subjects::new("trading", "btc").unwrap();
        let all = team_grants(&subjects);
        let operator = all.iter().find(|g| g.identity == OPERATOR).unwrap();
        for api in [
            format!("$JS.API.STREAM.INFO.{STREAM_DECISIONS}"),
            format!("$JS.API.CONSUMER.CREATE.{STREAM_DECISIONS}"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{STREAM_DECISIONS}.abc"),
            format!("$JS.API.STREAM.CREATE.{STREAM_AUDIT}"),
            format!("$JS.API.CONSUMER.CREATE.{STREAM_AUDIT}"),
            subjects.escalation("c1").unwrap(),
        ] {
            assert!(operator.may_publish(&api), "{api}");
        }
        assert!(operator.may_subscribe(&subjects.escalation("c1").unwrap()));
        assert!(operator.may_subscribe(&subjects.portfolio()));
        assert!(operator.may_subscribe("_INBOX.operator.x.y"));
        assert!(!operator.may_subscribe("_INBOX.coordinator.x"));
        for forbidden in [
            subjects.decision(),
            subjects.audit(),
            subjects.order(),
            format!("$JS.API.STREAM.DELETE.{STREAM_DECISIONS}"),
            format!("$JS.API.STREAM.PURGE.{STREAM_AUDIT}"),
            format!("$JS.API.STREAM.CREATE.{STREAM_DECISIONS}"),
            format!("$JS.API.CONSUMER.DELETE.{STREAM_DECISIONS}.c"),
        ] {
            assert!(!operator.may_publish(&forbidden), "{forbidden}");
        }
    }

    #[test]
    fn a_team_has_every_identity_once_whatever_its_policy() {
        let subjects = Subjects::new("trading", "btc").unwrap();
        let all = team_grants(&subjects);
        let mut names: Vec<&str> = all.iter().map(|g| g.identity.as_str()).collect();
        assert_eq!(names.len(), 9);
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 9, "each identity once");
        for role in Role::ALL {
            assert!(names.contains(&identity_of(role)), "{role}");
        }
        // a policy that (wrongly) lists the executor as a voter does not duplicate it
        let odd = grants(&subjects, &[Role::Executor, Role::Strategist]);
        assert_eq!(odd.len(), 5);
    }
}
