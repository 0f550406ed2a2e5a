//! The team's health as the coordinator sees it: which of the policy's voting roles still have a
//! live assistant (a heartbeat within [`HEALTHY_WITHIN_MS`]). It feeds the API's view of the
//! assistants and tells people when the team degrades and when it is whole again.

use crate::bus::Bus;
use notify::{Event, Notifier};
use protocol::messages::Heartbeat;
use protocol::Role;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A heartbeat older than this is a missing assistant (three missed 5-second beats).
pub const HEALTHY_WITHIN_MS: i64 = 15_000;

/// How often the coordinator reads the heartbeats.
pub const WATCH_EVERY: Duration = Duration::from_secs(5);

/// The roles of `roles` that no assistant of `strategy` has answered for within the health window.
pub fn missing_roles(
    beats: &[Heartbeat],
    strategy: &str,
    roles: &[Role],
    now_ms: i64,
) -> Vec<Role> {
    roles
        .iter()
        .copied()
        .filter(|role| {
            !beats.iter().any(|b| {
                b.strategy == strategy && b.role == *role && now_ms - b.at <= HEALTHY_WITHIN_MS
            })
        })
        .collect()
}

/// Remembers the last missing set, to tell only of changes.
#[derive(Debug, Default)]
pub struct HealthWatch {
    missing: Vec<Role>,
}

impl HealthWatch {
    /// The event to send when `missing` differs from what was seen before (the team starts whole:
    /// the coordinator waited for its voters).
    pub fn observe(&mut self, strategy: &str, missing: Vec<Role>) -> Option<Event> {
        if missing == self.missing {
            return None;
        }
        self.missing = missing;
        let names: Vec<String> = self.missing.iter().map(|r| r.to_string()).collect();
        Some(Event::team_health(strategy, &names))
    }
}

/// Reads the heartbeats every [`WATCH_EVERY`] until the process ends: into `presence` (the API's
/// copy, when it runs) and, on every change of the missing roles, to `notifier`.
pub async fn watch<B: Bus>(
    bus: B,
    scope: String,
    strategy: String,
    roles: Vec<Role>,
    presence: Option<Arc<RwLock<Vec<Heartbeat>>>>,
    notifier: Notifier,
) {
    let mut health = HealthWatch::default();
    loop {
        match bus.present(&scope).await {
            Ok(beats) => {
                let now = chrono::Utc::now().timestamp_millis();
                let missing = missing_roles(&beats, &strategy, &roles, now);
                if let Some(event) = health.observe(&strategy, missing) {
                    tracing::warn!(text = %event.text, "team health changed");
                    notifier.notify(event);
                }
                if let Some(presence) = &presence {
                    *presence.write().unwrap_or_else(|e| e.into_inner()) = beats;
                }
            }
            Err(error) => tracing::debug!(%error, "reading the assistants' presence failed"),
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(role: Role, at: i64) -> Heartbeat {
        Heartbeat {
            assistant: role.to_string(),
            role,
            instance: "pod-0".into(),
            strategy: "btc".into(),
            weight: 1.0,
            at,
        }
    }

    #[test]
    fn a_role_is_missing_once_its_heartbeats_are_stale() {
        let roles = [Role::Strategist, Role::RiskManager];
        let beats = [
            beat(Role::Strategist, 100_000),
            beat(Role::RiskManager, 80_000),
        ];
        assert!(missing_roles(&beats, "btc", &roles, 90_000).is_empty());
        assert_eq!(
            missing_roles(&beats, "btc", &roles, 100_000),
            vec![Role::RiskManager]
        );
        assert_eq!(missing_roles(&beats, "eth", &roles, 90_000), roles.to_vec());
    }

    #[test]
    fn only_changes_are_told() {
        let mut watch = HealthWatch::default();
        assert!(watch.observe("btc", vec![]).is_none());
        let degraded = watch.observe("btc", vec![Role::RiskManager]).unwrap();
        assert!(
            degraded.text.contains("no healthy riskManager"),
            "{}",
            degraded.text
        );
        assert!(watch.observe("btc", vec![Role::RiskManager]).is_none());
        let whole = watch.observe("btc", vec![]).unwrap();
        assert_eq!(whole.details["kind"], "recovered");
    }
}
