//! The channels: how an [`Event`] becomes a request to Slack, Discord, Telegram or a webhook.

use crate::Event;
use protocol::crd::{NotificationEvent, NotificationKind, NotificationTarget, NotificationsSpec};
use serde_json::{json, Value};

/// Telegram's Bot API.
pub const TELEGRAM_API: &str = "https://api.telegram.org";

/// Discord refuses messages longer than this.
const DISCORD_MAX_CHARS: usize = 2000;

/// A target whose address is known (read from its Secret).
#[derive(Clone)]
pub struct Target {
    /// The target's name in the spec: what logs and metrics show.
    pub name: String,
    kind: NotificationKind,
    /// The webhook URL, or for Telegram the sendMessage URL with the bot token in it.
    address: String,
    chat_id: Option<String>,
    events: Vec<NotificationEvent>,
}

/// Debug output never shows the address: it is a credential.
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// Why a target cannot be used; no variant carries the secret value.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TargetError {
    /// The environment variable that should hold the target's secret is not set.
    #[error("notification target {target}: {variable} is not set (the operator sets it from the target's secretRef)")]
    Missing {
        /// The target's name, as in the spec.
        target: String,
        /// The variable looked up (`IA_NOTIFY_<NAME>`).
        variable: String,
    },
    /// A Slack, Discord or webhook target whose secret is not an `http://` or `https://` URL.
    #[error("notification target {target}: the value of its secretRef is not an http(s) URL")]
    NotAUrl {
        /// The target's name, as in the spec.
        target: String,
    },
    /// A Telegram target whose secret is empty or has characters a bot token cannot have.
    #[error(
        "notification target {target}: the value of its secretRef is not a Telegram bot token"
    )]
    NotAToken {
        /// The target's name, as in the spec.
        target: String,
    },
}

impl Target {
    /// The target `spec` with `secret`, the value of its secretRef.
    pub fn new(spec: &NotificationTarget, secret: &str) -> Result<Self, TargetError> {
        Self::with_telegram_api(spec, secret, TELEGRAM_API)
    }

    /// As [`Target::new`], with Telegram's API at `telegram_api` (a local server in tests).
    pub fn with_telegram_api(
        spec: &NotificationTarget,
        secret: &str,
        telegram_api: &str,
    ) -> Result<Self, TargetError> {
        let secret = secret.trim();
        let address = match spec.kind {
            NotificationKind::Telegram => {
                let token_like = !secret.is_empty()
                    && secret
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'));
                if !token_like {
                    return Err(TargetError::NotAToken {
                        target: spec.name.clone(),
                    });
                }
                format!(
                    "{}/bot{secret}/sendMessage",
                    telegram_api.trim_end_matches('/')
                )
            }
            _ if secret.starts_with("https://") || secret.starts_with("http://") => {
                secret.to_string()
            }
            _ => {
                return Err(TargetError::NotAUrl {
                    target: spec.name.clone(),
                })
            }
        };
        Ok(Self {
            name: spec.name.clone(),
            kind: spec.kind,
            address,
            chat_id: spec.chat_id.clone(),
            events: spec.events.clone(),
        })
    }

    /// Every target of `spec`, each with its secret from `lookup(variable)`: the coordinator's
    /// environment, where the operator puts each target's Secret key as `IA_NOTIFY_<NAME>`.
    pub fn all_from(
        spec: &NotificationsSpec,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<Self>, TargetError> {
        spec.targets
            .iter()
            .map(|t| {
                let variable = t.env_name();
                let secret = lookup(&variable).ok_or_else(|| TargetError::Missing {
                    target: t.name.clone(),
                    variable,
                })?;
                Self::new(t, &secret)
            })
            .collect()
    }

    /// Whether this target wants `event`.
    pub fn wants(&self, event: NotificationEvent) -> bool {
        self.events.contains(&event)
    }

    /// The URL to post to (a credential: never logged).
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// The JSON body that carries `event` on this channel.
    pub fn body(&self, event: &Event) -> Value {
        let text = match &event.link {
            Some(link) if !event.text.contains(link.as_str()) => format!("{} {link}", event.text),
            _ => event.text.clone(),
        };
        match self.kind {
            NotificationKind::Slack => json!({"text": text}),
            NotificationKind::Discord => {
                json!({"content": text.chars().take(DISCORD_MAX_CHARS).collect::<String>()})
            }
            NotificationKind::Telegram => json!({
                "chat_id": self.chat_id.clone().unwrap_or_default(),
                "text": text,
                "disable_web_page_preview": true,
            }),
            NotificationKind::Webhook => serde_json::to_value(event).unwrap_or(Value::Null),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::crd::SecretKeyRef;

    fn spec(kind: NotificationKind) -> NotificationTarget {
        NotificationTarget {
            name: "ops".into(),
            kind,
            secret_ref: SecretKeyRef {
                name: "hooks".into(),
                key: "ops".into(),
            },
            chat_id: (kind == NotificationKind::Telegram).then(|| "-100123".into()),
            events: NotificationEvent::all(),
        }
    }

    #[test]
    fn each_channel_gets_its_own_body() {
        let event = Event::kill_switch("btc", true);
        let slack =
            Target::new(&spec(NotificationKind::Slack), "https://hooks.slack.test/x").unwrap();
        assert!(slack.body(&event)["text"]
            .as_str()
            .unwrap()
            .contains("kill switch is on"));
        let discord =
            Target::new(&spec(NotificationKind::Discord), "https://discord.test/x").unwrap();
        assert!(discord.body(&event)["content"].is_string());
        let telegram = Target::with_telegram_api(
            &spec(NotificationKind::Telegram),
            "123:abc",
            "http://127.0.0.1:9/",
        )
        .unwrap();
        assert_eq!(
            telegram.address(),
            "http://127.0.0.1:9/bot123:abc/sendMessage"
        );
        assert_eq!(telegram.body(&event)["chat_id"], "-100123");
        let webhook =
            Target::new(&spec(NotificationKind::Webhook), "http://127.0.0.1:9/hook").unwrap();
        assert_eq!(webhook.body(&event)["details"]["kind"], "killSwitch");
        assert_eq!(webhook.body(&event)["strategy"], "btc");
    }

    #[test]
    fn bad_secrets_are_named_by_target_never_shown() {
        let error =
            Target::new(&spec(NotificationKind::Slack), "not a url secret-value").unwrap_err();
        assert_eq!(
            error,
            TargetError::NotAUrl {
                target: "ops".into()
            }
        );
        assert!(!error.to_string().contains("secret-value"));
        assert!(Target::new(&spec(NotificationKind::Telegram), "a b").is_err());
        let debug = format!(
            "{:?}",
            Target::new(
                &spec(NotificationKind::Slack),
                "https://hooks.slack.test/SECRET"
            )
            .unwrap()
        );
        assert!(!debug.contains("SECRET"), "{debug}");
    }

    #[test]
    fn every_target_reads_its_own_variable() {
        let spec = NotificationsSpec {
            console_url: None,
            targets: vec![spec(NotificationKind::Webhook)],
        };
        let missing = Target::all_from(&spec, |_| None).unwrap_err();
        assert!(
            missing.to_string().contains("IA_NOTIFY_OPS is not set"),
            "{missing}"
        );
        let found = Target::all_from(&spec, |v| {
            (v == "IA_NOTIFY_OPS").then(|| "http://h/x".into())
        })
        .unwrap();
        assert_eq!(found[0].name, "ops");
    }
}
