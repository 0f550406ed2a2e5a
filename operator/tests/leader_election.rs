//! Leader election (issue #16): two operators, one Lease, on the in-memory API server, each with
//! its own client. One leads and renews while the other stands by; when the leader steps down
//! (releasing the Lease) or dies (never releasing it), the other takes over, and the Lease's
//! `holderIdentity` names each in turn. Real time: the election reads the wall clock, so the
//! Lease lasts seconds here; every wait has a generous deadline instead of a tight one.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use operator::controllers::leader::{Election, LeaseConfig};
use operator::fake_api::FakeApi;
use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

const NS: &str = "ia-agents-system";
const LEASE: &str = "trading-operator-leader";
/// Seconds the Lease lasts unrenewed.
const DURATION: u64 = 3;
/// The leader renews this long before expiry: every second, with two seconds to spare on a
/// loaded machine before the follower may take the Lease.
const GRACE: u64 = 2;
/// What "soon" means here (taking over needs about one Lease duration).
const DEADLINE: Duration = Duration::from_secs(20);

fn config(identity: &str) -> LeaseConfig {
    LeaseConfig::new(NS, LEASE, identity).with_timing(DURATION, GRACE)
}

fn lease(api: &FakeApi) -> Lease {
    let lease = api
        .get("coordination.k8s.io/v1", "Lease", NS, LEASE)
        .expect("the Lease exists");
    serde_json::from_value(lease).expect("a Lease")
}

fn holder(api: &FakeApi) -> Option<String> {
    lease(api).spec.and_then(|s| s.holder_identity)
}

fn renewed(api: &FakeApi) -> Option<Timestamp> {
    lease(api).spec.and_then(|s| s.renew_time).map(|t| t.0)
}

fn transitions(api: &FakeApi) -> Option<i32> {
    lease(api).spec.and_then(|s| s.lease_transitions)
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {DEADLINE:?}"))
}

/// For longer than a Lease lasts, `leader` holds the Lease and renews it, and `follower` does
/// not lead (had the leader stopped renewing, the follower would have taken over by then).
async fn stands_by(api: &FakeApi, leader: &str, follower: &Election) {
    let start = Instant::now();
    let mut renewals = HashSet::new();
    while start.elapsed() < Duration::from_secs(DURATION + 1) {
        assert_eq!(holder(api).as_deref(), Some(leader));
        assert!(!follower.is_leading(), "the follower leads too");
        renewals.insert(renewed(api));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        renewals.len() > 1,
        "the leader renews the Lease: {renewals:?}"
    );
}

#[tokio::test]
async fn one_leads_and_the_other_takes_over_when_it_steps_down() {
    let api = FakeApi::default();
    // both start at once: both create the Lease (one gets AlreadyExists), both apply
    // themselves as its holder (one gets a field manager conflict)
    let (config_a, config_b) = (config("operator-a"), config("operator-b"));
    let (a, b) = tokio::join!(
        Election::start(api.client(), &config_a),
        Election::start(api.client(), &config_b),
    );
    let (mut a, mut b) = (a.unwrap(), b.unwrap());
    within("one of them leads", async {
        tokio::select! {
            acquired = a.acquired() => acquired,
            acquired = b.acquired() => acquired,
        }
    })
    .await
    .unwrap();
    let (leader, mut follower, (leader_id, follower_id)) = if a.is_leading() {
        (a, b, ("operator-a", "operator-b"))
    } else {
        (b, a, ("operator-b", "operator-a"))
    };
    assert_eq!(holder(&api).as_deref(), Some(leader_id));
    assert_eq!(transitions(&api), Some(1));

    let watched = async {
        stands_by(&api, leader_id, &follower).await;
        assert!(leader.is_leading(), "the leader still leads");
    };
    watched.await;

    // stepping down releases the Lease: the follower takes it when it next looks, at the
    // latest when the Lease it last saw would have expired
    let stepped_down = Instant::now();
    within("the leader steps down", leader.release()).await;
    within("the follower takes over", follower.acquired())
        .await
        .unwrap();
    eprintln!("took over {:?} after the release", stepped_down.elapsed());
    assert_eq!(holder(&api).as_deref(), Some(follower_id));
    assert_eq!(transitions(&api), Some(2));

    within("the new leader steps down", follower.release()).await;
    assert_eq!(holder(&api), None, "released");
}

#[tokio::test]
async fn the_other_takes_over_once_the_lease_of_a_dead_leader_expires() {
    let api = FakeApi::default();
    // operator-a runs on a runtime of its own, on a thread of its own: ending the thread drops
    // its election and its client mid-flight, as a crash would, and nothing releases the Lease
    let (led, leading) = tokio::sync::oneshot::channel();
    let (kill, killed) = tokio::sync::oneshot::channel::<()>();
    let a_api = api.clone();
    let a = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut a = Election::start(a_api.client(), &config("operator-a"))
                .await
                .unwrap();
            a.acquired().await.unwrap();
            led.send(()).unwrap();
            let _ = killed.await;
            std::mem::forget(a); // no release: a crash runs no destructors either
        });
    });
    within("operator-a leads", leading).await.unwrap();
    let mut b = Election::start(api.client(), &config("operator-b"))
        .await
        .unwrap();
    stands_by(&api, "operator-a", &b).await;

    kill.send(()).unwrap();
    tokio::task::spawn_blocking(move || a.join().unwrap())
        .await
        .unwrap();
    let last_renewal = renewed(&api).expect("operator-a's renewal");
    assert_eq!(holder(&api).as_deref(), Some("operator-a"), "not released");

    within("operator-b takes over", b.acquired()).await.unwrap();
    assert_eq!(holder(&api).as_deref(), Some("operator-b"));
    assert_eq!(transitions(&api), Some(2));
    let acquired = lease(&api).spec.and_then(|s| s.acquire_time).unwrap().0;
    let expired = last_renewal.as_microsecond() + i64::try_from(DURATION).unwrap() * 1_000_000;
    assert!(
        acquired.as_microsecond() >= expired,
        "operator-b took the Lease at {acquired}, before operator-a's expired ({last_renewal} + {DURATION}s)"
    );
    within("operator-b steps down", b.release()).await;
}

#[tokio::test]
async fn a_leader_that_finds_another_holder_in_the_lease_stops_leading() {
    let api = FakeApi::default();
    let mut a = Election::start(api.client(), &config("operator-a"))
        .await
        .unwrap();
    within("operator-a leads", a.acquired()).await.unwrap();
    // someone takes the Lease behind its back (a replica that saw it expire, say), for a
    // minute: it is still theirs when operator-a lets go
    api.update("coordination.k8s.io/v1", "Lease", NS, LEASE, |lease| {
        lease["spec"]["holderIdentity"] = "operator-b".into();
        lease["spec"]["renewTime"] = Timestamp::now().to_string().into();
        lease["spec"]["leaseDurationSeconds"] = 60.into();
    });
    // its next renewal reads the Lease back: the controllers must stop then
    within("operator-a sees it lost the Lease", a.lost()).await;
    assert!(!a.is_leading());
    within("operator-a stops", a.release()).await;
    assert_eq!(holder(&api).as_deref(), Some("operator-b"), "not released");
}
