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

/// The streams every component looks up at start.
const STREAMS: [&str; 3] = [STREAM_DECISIONS, STREAM_AUDIT, PRESENCE_BUCKET];

/// JetStream API calls every component makes at start: the team's streams are looked up. Only the
/// coordinator creates them ([`stream_setup`]); the others wait until they exist, so that no
/// assistant, executor or auditor can make a shared stream with a configuration of its choosing
/// (no deduplication window, a tiny limit) before the coordinator does.
fn stream_lookup() -> Vec<String> {
    STREAMS
        .iter()
        .map(|s| format!("$JS.API.STREAM.INFO.{s}"))
        .collect()
}

/// The coordinator's calls at start: each stream looked up, and created when missing.
fn stream_setup() -> Vec<String> {
    STREAMS
        .iter()
        .flat_map(|s| {
            [
                format!("$JS.API.STREAM.INFO.{s}"),
                format!("$JS.API.STREAM.CREATE.{s}"),
            ]
        })
        .collect()
}

/// The JetStream call that reads the team's last audit anchor and nothing else: a direct get of
/// the last message on `….audit`, with the subject in the request's subject (`IA_AUDIT` allows
/// direct gets). A `STREAM.MSG.GET` names its subject in the body, which no permission can check,
/// so it would read any team's anchor.
pub fn anchor_get(subjects: &Subjects) -> String {
    format!("$JS.API.DIRECT.GET.{STREAM_AUDIT}.{}", subjects.audit())
}

/// The operator's consumer of the team's decisions on [`STREAM_DECISIONS`], over `….decision`:
/// `ia_<ns>_<strategy>_operator`. An ephemeral consumer with a name (the server removes it once the
/// operator has not pulled from it for a while), so that its grant can name it.
pub fn operator_consumer(subjects: &Subjects) -> String {
    subjects.consumer("operator")
}

/// The operator's consumer of the team's audit anchor on [`STREAM_AUDIT`], over `….audit`:
/// `ia_<ns>_<strategy>_operator-audit`.
pub fn operator_audit_consumer(subjects: &Subjects) -> String {
    subjects.consumer("operator-audit")
}

/// The JetStream calls of the operator's consumer `name` on `stream` over the subject `filter`, by
/// name: delete it (each start makes it anew, from the team's last message), create it with
/// `filter` in the subject (the server refuses a body whose filter is another, error 10131), look
/// it up (async-nats does when its connection comes back), pull its next messages.
fn operator_consumer_calls(stream: &str, name: &str, filter: &str) -> [String; 4] {
    [
        format!("$JS.API.CONSUMER.DELETE.{stream}.{name}"),
        format!("$JS.API.CONSUMER.CREATE.{stream}.{name}.{filter}"),
        format!("$JS.API.CONSUMER.INFO.{stream}.{name}"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{name}"),
    ]
}

/// What the operator may publish: escalation answers, and the JetStream API calls of its two
/// consumers, each by its name and over its one subject of the team (`….decision` on
/// `IA_DECISIONS`, `….audit` on `IA_AUDIT`, which it creates when missing). They acknowledge
/// nothing (`AckPolicy::None`), so no `$JS.ACK.…` either: no other consumer's messages (the
/// services' durables), no other team's subjects.
fn operator_publish(subjects: &Subjects) -> Vec<String> {
    let mut publish = vec![
        subjects.all_escalations(),
        format!("$JS.API.STREAM.INFO.{STREAM_DECISIONS}"),
        format!("$JS.API.STREAM.INFO.{STREAM_AUDIT}"),
        format!("$JS.API.STREAM.CREATE.{STREAM_AUDIT}"),
    ];
    publish.extend(operator_consumer_calls(
        STREAM_DECISIONS,
        &operator_consumer(subjects),
        &subjects.decision(),
    ));
    publish.extend(operator_consumer_calls(
        STREAM_AUDIT,
        &operator_audit_consumer(subjects),
        &subjects.audit(),
    ));
    publish
}

/// What the coordinator may publish: the team's subjects (it alone asks the voters and publishes
/// decisions; orders, fills and the audit anchor when it carries those duties), and exactly the
/// JetStream calls it makes: the streams' look-up and creation at start, a direct get of its
/// team's last anchor on `IA_AUDIT` (which its chain must reach), and its presence reads: its team's
/// consumer of the shared bucket `ia-assistants` by name (`Subjects::presence_consumer`), deleted
/// and made anew over the team's heartbeats only for each read, pulled once (no acknowledgement),
/// so it reads no other team's presence. Its JetStream
/// publishes' acknowledgements come to its inbox. No stream update, delete or purge, no consumer of
/// `IA_DECISIONS` or `IA_AUDIT`.
fn coordinator_publish(subjects: &Subjects) -> Vec<String> {
    let mut publish = vec![format!("{}.>", subjects.prefix())];
    publish.extend(stream_setup());
    publish.push(anchor_get(subjects));
    let name = subjects.presence_consumer();
    let scope = subjects.presence_scope();
    publish.extend([
        format!("$JS.API.CONSUMER.DELETE.{PRESENCE_BUCKET}.{name}"),
        format!("$JS.API.CONSUMER.CREATE.{PRESENCE_BUCKET}.{name}.{PRESENCE_BUCKET}.{scope}.>"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{PRESENCE_BUCKET}.{name}"),
    ]);
    publish
}

/// The JetStream API calls of a service's durable consumer `name` on the decision stream (the
/// executor's and the auditor's over `….decision`, the auditor's second one over `….order`), by
/// its name, with a filter within `Subjects::everything()`: look it up,
/// create it, pull its next messages, acknowledge them and, with `may_delete`, delete it (the
/// executor re-creates its consumer at start to rebuild its paper book from the stream's first
/// message; the auditor resumes its own). No other consumer's name is in it.
///
/// What the server checks, and what it does not: async-nats creates a named consumer with a filter
/// on `$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>`, and the server refuses a request whose
/// body's filter is not the one in the subject; granting only that form, under the team's prefix,
/// holds the filter to the team's own subjects (`ia.<ns>.<strategy>.>` or narrower; a `*` or `>`
/// in place of the namespace or strategy is a different token, which the permission does not
/// cover). The unfiltered and legacy forms (`….CREATE.<stream>.<name>`,
/// `….DURABLE.CREATE.<stream>.<name>`) are not granted, so a service gives its consumer one
/// `filter_subject` (several `filter_subjects` go by the unfiltered form; the team's whole prefix
/// as a filter, wider than the stream's subjects, nats-server 2.9 refuses, error 10093, which is
/// why the services filter on one subject each). `operator/tests/nats_auth.rs` shows this on a
/// real server. A subject
/// permission says nothing of the rest of the consumer's
/// configuration (pull or push, a deliver subject, its ack policy, where it starts): those are the
/// service's own to set, on its own consumer only.
fn service_consumer_calls(subjects: &Subjects, name: &str, may_delete: bool) -> Vec<String> {
    let stream = STREAM_DECISIONS;
    let filter = subjects.everything();
    let mut calls = vec![
        format!("$JS.API.CONSUMER.INFO.{stream}.{name}"),
        format!("$JS.API.CONSUMER.CREATE.{stream}.{name}.{filter}"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{name}"),
        format!("$JS.ACK.{stream}.{name}.>"),
    ];
    if may_delete {
        calls.push(format!("$JS.API.CONSUMER.DELETE.{stream}.{name}"));
    }
    calls
}

/// What the executor publishes beyond its presence and the streams' look-up: its consumer's calls
/// (deleting it included), orders and fills (JetStream publishes: their acknowledgement comes
/// back to its inbox), and its book (core NATS), which the coordinator's view follows.
fn executor_publish(subjects: &Subjects) -> Vec<String> {
    let name = subjects.service_consumer(Role::Executor);
    let mut publish = service_consumer_calls(subjects, &name, true);
    publish.extend([subjects.order(), subjects.fill(), subjects.book()]);
    publish
}

/// What the auditor publishes beyond its presence and the streams' look-up: its consumer's calls
/// (not deleting it), the audit anchor, and a direct get of the team's last anchor (as `audit
/// verify --nats` reads it).
fn auditor_publish(subjects: &Subjects) -> Vec<String> {
    let name = subjects.service_consumer(Role::Auditor);
    let mut publish = service_consumer_calls(subjects, &name, false);
    publish.extend(service_consumer_calls(
        subjects,
        &subjects.auditor_orders_consumer(),
        false,
    ));
    publish.extend([subjects.audit(), anchor_get(subjects)]);
    publish
}

/// The grants of a team: its coordinator, the operator, the executor, the auditor, and each role
/// in `voters`, in that order, each identity once.
///
/// The audit anchor (`….audit`) is published by the auditor service and by a coordinator that
/// carries the auditor's duty (under its `<team>.>`); the operator reads it (into the Strategy's
/// status) with its consumer, the coordinator (whose chain must reach it) and the auditor's
/// identity, which `trading-agent audit verify --nats` connects as, with a direct get of the team's
/// own subject on `IA_AUDIT` ([`anchor_get`]). Decisions are the coordinator's alone; orders and fills the executor's and the
/// coordinator's. Nobody may update, delete or purge a stream.
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
            publish: coordinator_publish(subjects),
            subscribe: vec![
                format!("{team}.>"),
                format!("{}.>", inbox_prefix(COORDINATOR)),
            ],
            allow_responses: false,
        },
        // follows the team's decisions and audit anchor (its two named consumers; `IA_AUDIT`
        // created when missing) and the escalations, and relays annotations' answers to
        // escalations: nothing more of the JetStream API (no stream deleted or purged)
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
    // the services: each its own durable consumer of the decision stream, and what it publishes
    for (identity, role, extra_publish) in [
        (EXECUTOR, Role::Executor, executor_publish(subjects)),
        (AUDITOR, Role::Auditor, auditor_publish(subjects)),
    ] {
        let mut publish = stream_lookup();
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
        let mut publish = stream_lookup();
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
    fn the_auditor_and_the_coordinator_publish_the_audit_anchor_and_the_operator_reads_it() {
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
        assert_eq!(publishers, [COORDINATOR, AUDITOR]);
        let grant = |name: &str| grants.iter().find(|g| g.identity == name).unwrap();
        assert!(grant(OPERATOR).subscribe.contains(&anchor));
        let direct_get = anchor_get(&subjects);
        assert_eq!(
            direct_get,
            "$JS.API.DIRECT.GET.IA_AUDIT.ia.trading.btc.audit"
        );
        let other = Subjects::new("trading", "eth").unwrap();
        for reader in [AUDITOR, COORDINATOR] {
            assert!(
                grant(reader).may_publish(&direct_get),
                "{reader} reads its team's anchor from the stream"
            );
            // another team's anchor, or any message by a body that names it
            for refused in [
                anchor_get(&other),
                format!("$JS.API.DIRECT.GET.{STREAM_AUDIT}"),
                format!("$JS.API.STREAM.MSG.GET.{STREAM_AUDIT}"),
            ] {
                assert!(!grant(reader).may_publish(&refused), "{reader}: {refused}");
            }
        }
        // the operator reads it with its consumer of `….audit`
        assert!(!grant(OPERATOR).may_publish(&direct_get));
        // every component looks up the audit stream at start
        for g in &grants {
            let info = format!("$JS.API.STREAM.INFO.{STREAM_AUDIT}");
            assert!(g.may_publish(&info), "{}: {:?}", g.identity, g.publish);
        }
    }

    /// The executor's book, which the coordinator's view follows, comes from the executor (and the
    /// coordinator's own `<team>.>`), from no assistant.
    #[test]
    fn only_the_executor_tells_its_book() {
        let subjects = Subjects::new("trading", "btc").unwrap();
        let book = subjects.book();
        let publishers: Vec<String> = team_grants(&subjects)
            .into_iter()
            .filter(|g| g.may_publish(&book))
            .map(|g| g.identity)
            .collect();
        assert_eq!(publishers, [COORDINATOR, EXECUTOR]);
    }

    /// The shared streams are made by the coordinator (and `IA_AUDIT` also by the operator, which
    /// reads it first); every other component only looks them up, and waits for them.
    #[test]
    fn only_the_coordinator_creates_the_streams() {
        let subjects = Subjects::new("trading", "btc").unwrap();
        for grant in team_grants(&subjects) {
            for stream in STREAMS {
                let create = format!("$JS.API.STREAM.CREATE.{stream}");
                let expected = grant.identity == COORDINATOR
                    || (grant.identity == OPERATOR && stream == STREAM_AUDIT);
                assert_eq!(
                    grant.may_publish(&create),
                    expected,
                    "{}: {create}",
                    grant.identity
                );
                let info = format!("$JS.API.STREAM.INFO.{stream}");
                let looks_up = grant.identity != OPERATOR || stream != PRESENCE_BUCKET;
                assert_eq!(
                    grant.may_publish(&info),
                    looks_up,
                    "{}: {info}",
                    grant.identity
                );
            }
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
            for subject in [subjects.decision(), subjects.escalation("c1").unwrap()] {
                assert!(
                    !g.may_publish(&subject),
                    "{} may not decide or resolve: {:?}",
                    g.identity,
                    g.publish
                );
            }
        }
        assert!(grants[1]
            .publish
            .contains(&"ia.trading.btc.escalation.*".to_string()));
        let config = authorization(&[(technical.clone(), "UABC".into())]);
        assert!(config.contains("nkey: \"UABC\"") && config.contains("allow_responses: true"));
        assert!(config.starts_with("authorization {\n  users = [\n"));
    }

    /// What the operator's two consumers do on the team's NATS, as the server checks it: each by
    /// its name, over its one subject of the team.
    #[test]
    fn the_operator_may_do_what_its_consumers_do_and_no_more() {
        let subjects = Subjects::new("trading", "btc").unwrap();
        let all = team_grants(&subjects);
        let operator = all.iter().find(|g| g.identity == OPERATOR).unwrap();
        let (d, a) = (STREAM_DECISIONS, STREAM_AUDIT);
        let decisions = operator_consumer(&subjects);
        let anchors = operator_audit_consumer(&subjects);
        assert_eq!(
            (decisions.as_str(), anchors.as_str()),
            ("ia_trading_btc_operator", "ia_trading_btc_operator-audit")
        );
        let expected = [
            subjects.all_escalations(),
            format!("$JS.API.STREAM.INFO.{d}"),
            format!("$JS.API.STREAM.INFO.{a}"),
            format!("$JS.API.STREAM.CREATE.{a}"),
            format!("$JS.API.CONSUMER.DELETE.{d}.{decisions}"),
            format!("$JS.API.CONSUMER.CREATE.{d}.{decisions}.ia.trading.btc.decision"),
            format!("$JS.API.CONSUMER.INFO.{d}.{decisions}"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{d}.{decisions}"),
            format!("$JS.API.CONSUMER.DELETE.{a}.{anchors}"),
            format!("$JS.API.CONSUMER.CREATE.{a}.{anchors}.ia.trading.btc.audit"),
            format!("$JS.API.CONSUMER.INFO.{a}.{anchors}"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{a}.{anchors}"),
        ];
        assert_eq!(operator.publish, expected, "exactly these, no wildcard");
        assert!(operator.may_subscribe(&subjects.escalation("c1").unwrap()));
        assert!(operator.may_subscribe(&subjects.portfolio()));
        assert!(operator.may_subscribe("_INBOX.operator.x.y"));
        assert!(!operator.may_subscribe("_INBOX.coordinator.x"));
        for forbidden in [
            subjects.decision(),
            subjects.audit(),
            subjects.order(),
            format!("$JS.API.STREAM.DELETE.{d}"),
            format!("$JS.API.STREAM.PURGE.{a}"),
            format!("$JS.API.STREAM.UPDATE.{d}"),
            format!("$JS.API.STREAM.CREATE.{d}"),
            format!("$JS.API.STREAM.MSG.GET.{d}"),
            format!("$JS.API.STREAM.MSG.GET.{a}"),
            format!("$JS.API.CONSUMER.DELETE.{d}.{anchors}"),
            format!("$JS.API.CONSUMER.DELETE.{a}.{decisions}"),
            format!("$JS.API.CONSUMER.DELETE.{d}.c"),
        ] {
            assert!(!operator.may_publish(&forbidden), "{forbidden}");
        }
    }

    /// On a NATS shared by several teams the operator's identity of one team reads neither
    /// another team's decisions nor the services' consumers.
    #[test]
    fn the_operator_reads_only_its_team_and_only_through_its_own_consumers() {
        let subjects = Subjects::new("trading", "btc").unwrap();
        let all = team_grants(&subjects);
        let operator = all.iter().find(|g| g.identity == OPERATOR).unwrap();
        let (d, a) = (STREAM_DECISIONS, STREAM_AUDIT);
        let mine = operator_consumer(&subjects);
        let other = Subjects::new("trading", "eth").unwrap();
        let theirs = operator_consumer(&other);
        let mut refused = vec![
            // the unnamed and legacy forms, whose body may filter on any subject
            format!("$JS.API.CONSUMER.CREATE.{d}"),
            format!("$JS.API.CONSUMER.CREATE.{a}"),
            format!("$JS.API.CONSUMER.CREATE.{d}.{mine}"),
            format!("$JS.API.CONSUMER.DURABLE.CREATE.{d}.{mine}"),
            // its own name over another team's subjects, or wider than its one subject
            format!("$JS.API.CONSUMER.CREATE.{d}.{mine}.{}", other.decision()),
            format!("$JS.API.CONSUMER.CREATE.{d}.{mine}.ia.trading.btc.>"),
            format!("$JS.API.CONSUMER.CREATE.{d}.{mine}.ia.*.*.decision"),
            format!("$JS.API.CONSUMER.CREATE.{d}.{mine}.{}", subjects.order()),
            format!("$JS.API.CONSUMER.CREATE.{a}.{mine}-audit.{}", other.audit()),
            // its decisions' name on the audit stream, and the other way round
            format!("$JS.API.CONSUMER.CREATE.{a}.{mine}.{}", subjects.audit()),
            // the other team's operator's consumers
            format!("$JS.API.CONSUMER.CREATE.{d}.{theirs}.{}", other.decision()),
            format!("$JS.API.CONSUMER.MSG.NEXT.{d}.{theirs}"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{a}.{theirs}-audit"),
            format!("$JS.API.CONSUMER.INFO.{d}.{theirs}"),
            format!("$JS.API.CONSUMER.DELETE.{d}.{theirs}"),
        ];
        // the services' durable consumers: no look-up, pull, acknowledgement or deletion
        for name in [
            subjects.service_consumer(Role::Executor),
            subjects.service_consumer(Role::Auditor),
            subjects.auditor_orders_consumer(),
        ] {
            refused.extend([
                format!("$JS.API.CONSUMER.INFO.{d}.{name}"),
                format!("$JS.API.CONSUMER.CREATE.{d}.{name}.{}", subjects.decision()),
                format!("$JS.API.CONSUMER.MSG.NEXT.{d}.{name}"),
                format!("$JS.ACK.{d}.{name}.1.5.5.1700000000000000000.0"),
                format!("$JS.API.CONSUMER.DELETE.{d}.{name}"),
            ]);
        }
        for call in refused {
            assert!(!operator.may_publish(&call), "{call}");
        }
        // and the other team's operator may work none of this one's consumers, nor answer its
        // escalations (the streams themselves are shared)
        let their_grants = team_grants(&other);
        let theirs = their_grants
            .iter()
            .find(|g| g.identity == OPERATOR)
            .unwrap();
        let own = operator
            .publish
            .iter()
            .filter(|c| !c.starts_with("$JS.API.STREAM."));
        for call in own {
            assert!(!theirs.may_publish(call), "{call}");
        }
    }

    /// The coordinator's JetStream calls, as `bus::nats` makes them (seen in a nats-server's trace
    /// of the team's run, with and without the services), and nothing more of the API.
    #[test]
    fn the_coordinator_makes_only_its_own_jetstream_calls() {
        let subjects = Subjects::new("trading", "btc").unwrap();
        let all = team_grants(&subjects);
        let coordinator = all.iter().find(|g| g.identity == COORDINATOR).unwrap();
        let (d, a, p) = (STREAM_DECISIONS, STREAM_AUDIT, PRESENCE_BUCKET);
        for call in [
            // its team's subjects: the voters asked, decisions, orders, fills, the anchor, the book
            subjects.analyze(Role::RiskManager),
            subjects.decision(),
            subjects.order(),
            subjects.fill(),
            subjects.audit(),
            subjects.portfolio(),
            subjects.escalation("c1").unwrap(),
            // the streams looked up and created at start
            format!("$JS.API.STREAM.INFO.{d}"),
            format!("$JS.API.STREAM.CREATE.{d}"),
            format!("$JS.API.STREAM.INFO.{a}"),
            format!("$JS.API.STREAM.CREATE.{a}"),
            format!("$JS.API.STREAM.INFO.{p}"),
            format!("$JS.API.STREAM.CREATE.{p}"),
            // the last anchor
            format!("$JS.API.DIRECT.GET.{a}.ia.trading.btc.audit"),
            // who is present: its team's consumer of the bucket, made anew and pulled once
            format!("$JS.API.CONSUMER.DELETE.{p}.ia_trading_btc_presence"),
            format!("$JS.API.CONSUMER.CREATE.{p}.ia_trading_btc_presence.{p}.trading.btc.>"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{p}.ia_trading_btc_presence"),
        ] {
            assert!(coordinator.may_publish(&call), "{call}");
        }
        assert!(
            !coordinator
                .publish
                .iter()
                .any(|s| s.starts_with("$JS.API.>")),
            "{:?}",
            coordinator.publish
        );
        let other = Subjects::new("trading", "eth").unwrap();
        let executor = subjects.service_consumer(Role::Executor);
        for call in [
            // another team's contents, by a consumer of its own or another's
            format!("$JS.API.CONSUMER.CREATE.{d}"),
            format!("$JS.API.CONSUMER.CREATE.{d}.x.{}", other.decision()),
            format!("$JS.API.CONSUMER.CREATE.{d}.x.{}", subjects.decision()),
            format!("$JS.API.CONSUMER.DURABLE.CREATE.{d}.x"),
            format!("$JS.API.CONSUMER.CREATE.{a}"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{d}.{executor}"),
            format!("$JS.API.CONSUMER.INFO.{d}.{executor}"),
            format!("$JS.API.CONSUMER.DELETE.{d}.{executor}"),
            format!("$JS.ACK.{d}.{executor}.1.5.5.1700000000000000000.0"),
            format!("$JS.API.STREAM.MSG.GET.{d}"),
            format!("$JS.API.STREAM.MSG.GET.{a}"),
            format!("$JS.API.DIRECT.GET.{d}.{}", other.decision()),
            anchor_get(&other),
            // the streams' and the account's management
            format!("$JS.API.STREAM.DELETE.{d}"),
            format!("$JS.API.STREAM.PURGE.{d}"),
            format!("$JS.API.STREAM.UPDATE.{d}"),
            format!("$JS.API.STREAM.MSG.DELETE.{a}"),
            format!("$JS.API.CONSUMER.DELETE.{p}.x"),
            // another team's presence: its consumer, or an unnamed one over the whole bucket
            format!("$JS.API.CONSUMER.CREATE.{p}"),
            format!("$JS.API.CONSUMER.CREATE.{p}.ia_trading_btc_presence.{p}.trading.eth.>"),
            format!("$JS.API.CONSUMER.CREATE.{p}.ia_trading_btc_presence.{p}.>"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{p}.ia_trading_eth_presence"),
            format!("$JS.API.CONSUMER.DELETE.{p}.ia_trading_eth_presence"),
            "$JS.API.STREAM.CREATE.OTHER".into(),
            "$JS.API.STREAM.LIST".into(),
            "$JS.API.STREAM.NAMES".into(),
            "$JS.API.INFO".into(),
            // another team's subjects
            other.decision(),
            other.analyze(Role::RiskManager),
            other.escalation("c1").unwrap(),
        ] {
            assert!(!coordinator.may_publish(&call), "{call}");
        }
    }

    /// The JetStream calls of a service's consumer, `name` on the decision stream, as async-nats
    /// makes them (the create with the team's filter in its subject).
    fn consumer_calls(name: &str, filter: &str) -> [(&'static str, String); 5] {
        let d = STREAM_DECISIONS;
        [
            ("info", format!("$JS.API.CONSUMER.INFO.{d}.{name}")),
            (
                "create",
                format!("$JS.API.CONSUMER.CREATE.{d}.{name}.{filter}"),
            ),
            ("next", format!("$JS.API.CONSUMER.MSG.NEXT.{d}.{name}")),
            (
                "ack",
                format!("$JS.ACK.{d}.{name}.1.5.5.1700000000000000000.0"),
            ),
            ("delete", format!("$JS.API.CONSUMER.DELETE.{d}.{name}")),
        ]
    }

    #[test]
    fn each_service_works_its_own_consumer_and_only_the_executor_deletes_it() {
        let subjects = Subjects::new("trading", "btc").unwrap();
        let all = team_grants(&subjects);
        let grant = |name: &str| all.iter().find(|g| g.identity == name).unwrap();
        let (executor, auditor) = (grant(EXECUTOR), grant(AUDITOR));
        let mine = |role| subjects.service_consumer(role);
        assert_eq!(mine(Role::Executor), "ia_trading_btc_executor");
        let team = subjects.everything();
        for (what, call) in consumer_calls(&mine(Role::Executor), &team) {
            assert!(executor.may_publish(&call), "the executor's own {what}");
            assert!(!auditor.may_publish(&call), "the executor's {what}: {call}");
        }
        for (what, call) in consumer_calls(&mine(Role::Auditor), &team) {
            assert!(!executor.may_publish(&call), "the auditor's {what}: {call}");
            // the auditor resumes its durable consumer, never deletes it
            assert_eq!(auditor.may_publish(&call), what != "delete", "{what}");
        }
        // a narrower filter of the team's is its own business; another team's, or a wildcard in
        // place of the team, is not
        let create = |name: &str, filter: &str| consumer_calls(name, filter)[1].1.clone();
        let executor_name = mine(Role::Executor);
        assert!(executor.may_publish(&create(&executor_name, &subjects.order())));
        for filter in ["ia.*.*.>", ">", "ia.trading.eth.>", "ia.trading.*.decision"] {
            let call = create(&executor_name, filter);
            assert!(!executor.may_publish(&call), "{call}");
        }
        // nor the forms whose subject does not carry the filter
        let d = STREAM_DECISIONS;
        for call in [
            format!("$JS.API.CONSUMER.CREATE.{d}.{executor_name}"),
            format!("$JS.API.CONSUMER.CREATE.{d}"),
            format!("$JS.API.CONSUMER.DURABLE.CREATE.{d}.{executor_name}"),
            format!("$JS.API.CONSUMER.DELETE.{STREAM_AUDIT}.{executor_name}"),
            format!("$JS.API.STREAM.DELETE.{d}"),
            format!("$JS.API.STREAM.PURGE.{d}"),
        ] {
            assert!(
                !executor.may_publish(&call) && !auditor.may_publish(&call),
                "{call}"
            );
        }
        // both look the streams up; their deliveries and acks' answers come to their own inbox
        for service in [executor, auditor] {
            assert!(service.may_publish(&format!("$JS.API.STREAM.INFO.{d}")));
            assert_eq!(
                service.subscribe,
                [format!("{}.>", inbox_prefix(&service.identity))]
            );
        }
    }

    #[test]
    fn the_executor_may_not_decide_and_the_auditor_may_not_trade() {
        let subjects = Subjects::new("trading", "btc").unwrap();
        let all = team_grants(&subjects);
        let grant = |name: &str| all.iter().find(|g| g.identity == name).unwrap();
        let (executor, auditor) = (grant(EXECUTOR), grant(AUDITOR));
        let market = subjects.market("BTCUSDT").unwrap();
        for (subject, by_executor, by_auditor) in [
            (subjects.order(), true, false),
            (subjects.fill(), true, false),
            (subjects.audit(), false, true),
            (subjects.decision(), false, false),
            (market, false, false),
            (subjects.analyze(Role::RiskManager), false, false),
            (subjects.portfolio(), false, false),
        ] {
            assert_eq!(
                executor.may_publish(&subject),
                by_executor,
                "executor: {subject}"
            );
            assert_eq!(
                auditor.may_publish(&subject),
                by_auditor,
                "auditor: {subject}"
            );
        }
        // another team's orders and anchors are nobody's here
        let other = Subjects::new("trading", "eth").unwrap();
        assert!(!executor.may_publish(&other.order()) && !auditor.may_publish(&other.audit()));
    }

    /// No component changes a stream once made: the agents create the streams they miss and never
    /// update them (an older stream keeps its subjects), and nobody deletes or purges one.
    #[test]
    fn nobody_may_update_delete_or_purge_a_stream() {
        let subjects = Subjects::new("trading", "btc").unwrap();
        for g in team_grants(&subjects) {
            for stream in [STREAM_DECISIONS, STREAM_AUDIT, PRESENCE_BUCKET] {
                for verb in ["UPDATE", "DELETE", "PURGE"] {
                    let call = format!("$JS.API.STREAM.{verb}.{stream}");
                    assert!(!g.may_publish(&call), "{}: {call}", g.identity);
                }
            }
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
