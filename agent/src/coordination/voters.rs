//! Who votes: the assistants present on the bus, as far as the declared team admits them, waited
//! for until the policy's roles are there; their weights resumed from the store.

use super::CoordinationError;
use crate::bus::Bus;
use crate::consensus::bus_transport::voters_from_presence;
use crate::consensus::Voter;
use crate::store::Store;
use protocol::Role;
use std::time::{Duration, Instant};

/// What the coordinator waits for.
pub struct Expected<'a> {
    /// The Strategy's name, as the heartbeats carry it.
    pub strategy: &'a str,
    /// The policy's voting roles.
    pub roles: &'a [Role],
    /// The declared team (`--team-file`); `None`: whoever announces itself votes.
    pub declared: Option<&'a [Voter]>,
    /// How long to wait for every role before starting with those present.
    pub patience: Duration,
    /// The bus's address, for the error.
    pub server: &'a str,
}

/// The voters present once every expected role is (or, after `patience`, those present then).
pub async fn wait_for_voters<B: Bus>(
    bus: &B,
    scope: &str,
    expected: &Expected<'_>,
) -> Result<Vec<Voter>, CoordinationError> {
    let started = Instant::now();
    loop {
        let present = voters_from_presence(
            &bus.present(scope).await?,
            expected.strategy,
            expected.declared,
        );
        // the policy's roles, as far as the declared team fills them
        let missing: Vec<Role> = expected
            .roles
            .iter()
            .copied()
            .filter(|r| {
                expected
                    .declared
                    .is_none_or(|team| team.iter().any(|v| v.role == *r))
            })
            .filter(|r| !present.iter().any(|v| v.role == *r))
            .collect();
        if missing.is_empty() {
            return Ok(present);
        }
        if started.elapsed() >= expected.patience {
            if present.is_empty() {
                return Err(CoordinationError::NoVoters {
                    strategy: expected.strategy.to_string(),
                    server: expected.server.to_string(),
                    waited_s: expected.patience.as_secs(),
                });
            }
            tracing::warn!(?missing, "starting without every voter; quorum decides");
            return Ok(present);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The roles of `roles` some voter fills: those the quorum counts on.
pub fn counted(roles: &[Role], voters: &[Voter]) -> Vec<Role> {
    roles
        .iter()
        .copied()
        .filter(|r| voters.iter().any(|v| v.role == *r))
        .collect()
}

/// Gives `voters` the weights `strategy`'s team had learned, as stored; how many were resumed.
pub async fn resume_weights(
    store: &Store,
    strategy: &str,
    voters: &mut [Voter],
) -> Result<usize, CoordinationError> {
    let learned = store.weights(strategy).await?;
    let mut resumed = 0;
    for voter in voters {
        let weight = learned
            .iter()
            .find(|w| w.assistant == voter.assistant)
            .map(|w| w.weight);
        if let Some(weight) = weight {
            voter.weight = weight;
            resumed += 1;
        }
    }
    Ok(resumed)
}
