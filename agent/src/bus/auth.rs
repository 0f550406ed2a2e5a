//! How a process authenticates to NATS ([`NatsAuth`]), and the configuration `trading-agent
//! nats-config` writes for a bare machine. Who each component is and what it may do there (one nkey
//! identity per component, held by server-side permissions to its own subjects) is the protocol's
//! [`protocol::nats_auth`], shared with the operator, which provisions a managed NATS the same way.
//! See docs/architecture.md, "NATS subjects and messages".

pub use protocol::nats_auth::{authorization, grants, inbox_prefix, Grant};

use std::path::{Path, PathBuf};

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
    /// A NATS `.creds` file: a user JWT, signed by its account (which the server trusts through
    /// its operator), and the user's nkey seed. Decentralised auth: the JWT carries the user's
    /// permissions, and async-nats reads the file and signs the server's nonce with the seed.
    Creds {
        /// The file (its content is secret: never read into a log or an error).
        path: PathBuf,
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
            NatsAuth::Creds { .. } => f.write_str("Creds(..)"),
            NatsAuth::Password { user, .. } => write!(f, "Password({user}, ..)"),
        }
    }
}

impl NatsAuth {
    /// The credentials in the `.creds` file `path`, checked now with async-nats's own parser (a
    /// user JWT block and a user nkey seed block), so that a missing or malformed file fails at
    /// start rather than at the first connection. The error says what is wrong, never what the
    /// file holds.
    pub fn creds_file(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        async_nats::ConnectOptions::with_credentials(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not a NATS credentials file ({e})"),
            )
        })?;
        Ok(NatsAuth::Creds {
            path: path.to_path_buf(),
        })
    }
}

/// A nats-server configuration for a bare machine: a header saying how to start it, then the
/// `authorization` block ([`protocol::nats_auth::authorization`]): each grant with its nkey.
pub fn server_config(grants: &[(Grant, String)]) -> String {
    let mut out = String::from(
        "# Written by `trading-agent nats-config`: one nkey identity per component of the team, each\n\
         # allowed only its own subjects. Start with: nats-server -js -sd DIR -c nats.conf\n",
    );
    out.push_str(&authorization(grants));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::subjects::Subjects;
    use protocol::Role;

    #[test]
    fn the_configuration_says_how_to_start_and_credentials_never_show() {
        let subjects = Subjects::new("trading", "btc").unwrap();
        let grants = grants(&subjects, &[Role::TechnicalAnalyst]);
        let config = server_config(&[(grants[4].clone(), "UABC".into())]);
        assert!(config.starts_with("# Written by `trading-agent nats-config`"));
        assert!(config.contains("authorization {\n  users = [\n    # technicalAnalyst\n"));
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
        assert_eq!(
            format!(
                "{:?}",
                NatsAuth::Password {
                    user: "u".into(),
                    password: "secret".into()
                }
            ),
            "Password(u, ..)"
        );
    }

    #[test]
    fn a_creds_file_is_checked_at_once_and_its_content_never_shows() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.creds");
        let error = NatsAuth::creds_file(&missing).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
        let malformed = dir.path().join("user.creds");
        let secret = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY";
        std::fs::write(&malformed, format!("no JWT here\n{secret}\n")).unwrap();
        let error = NatsAuth::creds_file(&malformed).unwrap_err().to_string();
        assert!(error.starts_with("not a NATS credentials file"), "{error}");
        assert!(!error.contains(secret), "{error}");
        let creds = NatsAuth::Creds { path: malformed };
        assert_eq!(format!("{creds:?}"), "Creds(..)");
    }
}
