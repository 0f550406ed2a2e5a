//! Leader election on a coordination.k8s.io/v1 Lease (kube-lease-manager): one replica
//! reconciles, the others stand by; when the leader stops it releases the Lease and another takes
//! over at once, and when it dies without releasing, another takes over once the Lease expires.

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Which Lease, who this replica is in it, and how long a Lease lasts unrenewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (the Lease's `holderIdentity` while it leads).
    pub identity: String,
    /// Seconds the Lease lasts without a renewal; a replica that dies holding it is replaced
    /// after at most this long.
    pub duration_seconds: u64,
    /// The leader renews this many seconds before the Lease expires (less than `duration_seconds`).
    pub grace_seconds: u64,
}

impl LeaseConfig {
    /// How long the operator's Lease lasts unrenewed.
    pub const DURATION_SECONDS: u64 = 15;
    /// How long before expiry the operator renews its Lease.
    pub const GRACE_SECONDS: u64 = 5;

    /// The Lease `namespace`/`name` held as `identity`, for [`Self::DURATION_SECONDS`], renewed
    /// [`Self::GRACE_SECONDS`] before it expires.
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            duration_seconds: Self::DURATION_SECONDS,
            grace_seconds: Self::GRACE_SECONDS,
        }
    }

    /// The same Lease with other timings (tests use seconds, not tens of seconds). The grace must
    /// be at least 1 and less than the duration.
    #[must_use]
    pub fn with_timing(self, duration_seconds: u64, grace_seconds: u64) -> Self {
        Self {
            duration_seconds,
            grace_seconds,
            ..self
        }
    }
}

/// Why an election could not run.
#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    /// The Lease could not be read or created.
    #[error("setting up leader election on Lease {lease}")]
    Setup {
        /// `namespace/name` of the Lease.
        lease: String,
        /// What the API server or the lease manager said.
        #[source]
        source: LeaseManagerError,
    },
    /// The election's task ended (it panicked) before this replica led.
    #[error("leader election on Lease {lease} stopped")]
    Stopped {
        /// `namespace/name` of the Lease.
        lease: String,
    },
}

/// A running election: a background task that acquires the Lease, renews it while this replica
/// leads, and releases it when the election is [released](Self::release) or dropped.
pub struct Election {
    lease: String,
    /// Whether this replica holds the Lease; the task's end closes it.
    leading: watch::Receiver<bool>,
    task: JoinHandle<Result<LeaseManager, LeaseManagerError>>,
}

impl Election {
    /// Creates the Lease if it is missing and starts competing for it.
    pub async fn start(client: Client, config: &LeaseConfig) -> Result<Self, ElectionError> {
        let lease = format!("{}/{}", config.namespace, config.name);
        let manager = LeaseManagerBuilder::new(client, &config.name)
            .with_namespace(&config.namespace)
            .with_identity(&config.identity)
            .with_duration(config.duration_seconds)
            .with_grace(config.grace_seconds)
            .build()
            .await
            .map_err(|source| ElectionError::Setup {
                lease: lease.clone(),
                source,
            })?;
        let (leading, task) = manager.watch().await;
        Ok(Self {
            lease,
            leading,
            task,
        })
    }

    /// Whether this replica holds the Lease now.
    pub fn is_leading(&self) -> bool {
        *self.leading.borrow()
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquired(&mut self) -> Result<(), ElectionError> {
        match self.leading.wait_for(|leading| *leading).await {
            Ok(_) => Ok(()),
            Err(_) => Err(ElectionError::Stopped {
                lease: self.lease.clone(),
            }),
        }
    }

    /// Waits until this replica no longer holds the Lease (another replica took it, or the
    /// election's task ended): a leader must stop reconciling then.
    pub async fn lost(&mut self) {
        let _ = self.leading.wait_for(|leading| !*leading).await;
    }

    /// Stops competing: releases the Lease if this replica holds it, so another replica takes
    /// over without waiting for it to expire, and waits for that.
    pub async fn release(self) {
        // the task releases the Lease once every receiver of its state is gone
        drop(self.leading);
        match self.task.await {
            Ok(Ok(_)) => tracing::info!(lease = %self.lease, "left the leader election"),
            Ok(Err(error)) => {
                tracing::warn!(lease = %self.lease, %error, "releasing the leader Lease");
            }
            Err(error) => tracing::warn!(lease = %self.lease, %error, "the leader election task"),
        }
    }
}
