//! Who a component is on NATS, and what it may do there: one identity per component of a team
//! (coordinator, executor, auditor, operator, each voting role), authenticated by an nkey (the
//! server holds the public key, the component its seed) and held by server-side permissions to its
//! own subjects. `trading-agent nats-config` writes the server's configuration and one seed file
//! per identity from these grants. See docs/architecture.md, "NATS subjects and messages".

use protocol::subjects::{Subjects, PRESENCE_BUCKET, STREAM_AUDIT, STREAM_DECISIONS};
use protocol::Role;

/// How a process authenticates to NATS.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum NatsAuth {
    /// No credentials (a server without authorization).
    #[default]
    Anonymous,
    /// An nkey seed (`SU…`), read from a file.
    Nkey {
        /// The seed itself (secret; never logged).
        seed: String,
    },
    /// A user and password.
    Password {
        /// The user name.
        user: String,
        /// The password (secret; never logged).
        password: String,
    },
}

impl std::fmt::Debug for NatsAuth {
    /// Never shows a seed or a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatsAuth::Anonymous => f.write_str("Anonymous"),
            NatsAuth::Nkey { .. } => f.write_str("Nkey(..)"),
            NatsAuth::Password { user, .. } => write!(f, "Password({user}, ..)"),
        }
    }
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

/// The inbox prefix of `identity`: replies to its requests come here, and nobody else may read it.
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

/// The grants of a team: its coordinator, executor, auditor, the operator, and each role in
/// `voters`.
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
            identity: "coordinator".into(),
            publish: vec![format!("{team}.>"), "$JS.API.>".into()],
            subscribe: vec![
                format!("{team}.>"),
                format!("{}.>", inbox_prefix("coordinator")),
            ],
            allow_responses: false,
        },
        // follows the decision stream and relays annotations' answers to escalations
        Grant {
            identity: "operator".into(),
            publish: vec![subjects.all_escalations(), "$JS.API.>".into()],
            subscribe: vec![
                subjects.all_escalations(),
                subjects.audit(),
                format!("{}.>", inbox_prefix("operator")),
            ],
            allow_responses: false,
        },
    ];
    for (identity, role, extra_publish) in [
        (
            "executor",
            Role::Executor,
            vec![subjects.order(), subjects.fill()],
        ),
        // reads the audit anchor (`audit verify --nats`), publishes nothing of the team's
        (
            "auditor",
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
        let mut publish = stream_setup();
        publish.push(presence(role));
        grants.push(Grant {
            identity: role.as_str().into(),
            publish,
            subscribe: vec![
                subjects.analyze(role),
                format!("{}.>", inbox_prefix(role.as_str())),
            ],
            allow_responses: true,
        });
    }
    grants
}

/// The `authorization` block of a nats-server configuration: each grant with its nkey.
pub fn server_config(grants: &[(Grant, String)]) -> String {
    let list = |subjects: &[String]| {
        subjects
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::from(
        "# Written by `trading-agent nats-config`: one nkey identity per component of the team, each\n\
         # allowed only its own subjects. Start with: nats-server -js -sd DIR -c nats.conf\n\
         authorization {\n  users = [\n",
    );
    for (grant, public_key) in grants {
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

    /// Whether the NATS subject pattern `pattern` (`*` one token, `>` the rest) covers `subject`.
    fn covers(pattern: &str, subject: &str) -> bool {
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

    #[test]
    fn only_the_coordinator_publishes_the_audit_anchor_and_the_operator_reads_it() {
        assert!(covers("ia.t.s.>", "ia.t.s.audit") && covers("ia.*.*.audit", "ia.t.s.audit"));
        assert!(!covers("ia.t.s.escalation.*", "ia.t.s.audit") && !covers("ia.t.s", "ia.t.s.x"));
        let subjects = Subjects::new("trading", "btc").unwrap();
        let anchor = subjects.audit();
        let grants = grants(&subjects, &Role::DEFAULT_VOTERS);
        let publishers: Vec<&str> = grants
            .iter()
            .filter(|g| g.publish.iter().any(|p| covers(p, &anchor)))
            .map(|g| g.identity.as_str())
            .collect();
        assert_eq!(publishers, ["coordinator"]);
        let grant = |name: &str| grants.iter().find(|g| g.identity == name).unwrap();
        assert!(grant("operator").subscribe.contains(&anchor));
        let message_get = format!("$JS.API.STREAM.MSG.GET.{STREAM_AUDIT}");
        for reader in ["operator", "auditor", "coordinator"] {
            assert!(
                grant(reader)
                    .publish
                    .iter()
                    .any(|p| covers(p, &message_get)),
                "{reader} reads the anchor from the stream"
            );
        }
        // every component creates or looks up the audit stream at start
        for g in &grants {
            let info = format!("$JS.API.STREAM.INFO.{STREAM_AUDIT}");
            assert!(
                g.publish.iter().any(|p| covers(p, &info)),
                "{}: {:?}",
                g.identity,
                g.publish
            );
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
        let config = server_config(&[(technical.clone(), "UABC".into())]);
        assert!(config.contains("nkey: \"UABC\"") && config.contains("allow_responses: true"));
        assert_eq!(
            format!(
                "{:?}",
                NatsAuth::Nkey {
                    seed: "SUsecret".into()
                }
            ),
            "Nkey(..)"
        );
    }
}
