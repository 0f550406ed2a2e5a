//! `spec.notifications` of a Strategy: where the team tells people what needs them (an escalation
//! waiting for a human, the kill switch, a risk limit hit, fills, the team degraded).
//!
//! The address of a target (a Slack, Discord or generic webhook URL, a Telegram bot token) is a
//! credential: it is only ever referenced by Secret, never written in the spec.

use super::SecretKeyRef;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the Strategy's notifications go.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new("self.targets.all(t, self.targets.exists_one(u, u.name == t.name))")
    .message("every notification target needs its own name")
    .field_path(".targets")
    .reason(Reason::FieldValueDuplicate))]
#[serde(rename_all = "camelCase")]
pub struct NotificationsSpec {
    /// Where people open the coordinator's console (e.g. an Ingress in front of its Service);
    /// an escalation's message links to `<consoleUrl>/#escalation/<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^\s@]+$"))]
    pub console_url: Option<String>,
    /// The channels, each with the events it wants.
    #[schemars(length(min = 1, max = 10))]
    pub targets: Vec<NotificationTarget>,
}

/// One channel notifications are posted to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.kind == 'telegram' ? has(self.chatId) : !has(self.chatId)")
    .message("chatId is required for a telegram target and means nothing for the others")
    .field_path(".chatId")
    .reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase")]
pub struct NotificationTarget {
    /// The target's name, as logs and metrics show it; the coordinator reads its Secret's value
    /// from `IA_NOTIFY_<NAME>` (upper case, `-` as `_`).
    #[schemars(
        length(min = 1, max = 40),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// slack and discord: an incoming webhook; telegram: a bot's sendMessage; webhook: a JSON POST.
    pub kind: NotificationKind,
    /// The Secret key holding the webhook URL (slack, discord, webhook) or the bot token (telegram).
    pub secret_ref: SecretKeyRef,
    /// The Telegram chat the bot writes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^(-?[0-9]+|@[A-Za-z0-9_]{5,32})$")
    )]
    pub chat_id: Option<String>,
    /// The events sent to this target (default: all of them).
    #[serde(default = "NotificationEvent::all")]
    #[schemars(length(min = 1, max = 4))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub events: Vec<NotificationEvent>,
}

/// The kinds of channel: `slack`, `discord`, `telegram` or `webhook`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum NotificationKind {
    /// Slack: the Secret holds an incoming-webhook URL.
    Slack,
    /// Discord: the Secret holds a channel webhook URL.
    Discord,
    /// Telegram's Bot API: the Secret holds the bot's token, and `chatId` says where to post.
    Telegram,
    /// Any HTTP endpoint: the Secret holds the URL the event is POSTed to as JSON.
    Webhook,
}

/// What people are told about.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum NotificationEvent {
    /// The team could not agree and waits for a human's answer.
    Escalation,
    /// The kill switch (spec.paused) was thrown or released, or a risk limit stopped a trade.
    Risk,
    /// An order filled.
    Fill,
    /// An assistant the policy counts on stopped answering (and when it is back).
    Degraded,
}

impl NotificationEvent {
    /// Every event, the default of a target.
    pub fn all() -> Vec<Self> {
        vec![Self::Escalation, Self::Risk, Self::Fill, Self::Degraded]
    }
}

impl NotificationTarget {
    /// The environment variable the coordinator reads this target's Secret value from.
    pub fn env_name(&self) -> String {
        format!(
            "{}{}",
            crate::env::NOTIFY_PREFIX,
            self.name.to_uppercase().replace('-', "_")
        )
    }

    /// Whether this target wants `event`.
    pub fn wants(&self, event: NotificationEvent) -> bool {
        self.events.contains(&event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_default_to_every_event_and_name_their_variable() {
        let target: NotificationTarget = serde_json::from_value(serde_json::json!({
            "name": "ops-slack",
            "kind": "slack",
            "secretRef": {"name": "hooks", "key": "slack"}
        }))
        .unwrap();
        assert_eq!(target.events, NotificationEvent::all());
        assert_eq!(target.env_name(), "IA_NOTIFY_OPS_SLACK");
        assert!(target.wants(NotificationEvent::Fill));
    }
}
