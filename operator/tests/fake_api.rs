//! The in-memory API server answers as an API server does where leader election relies on it,
//! through kube-rs's client: optimistic concurrency on `resourceVersion` (409 `Conflict`), 404 for
//! a missing object, 409 `AlreadyExists` for a second create, server-side apply's field manager
//! conflicts, and strategic merge patches (built-in kinds only).

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::Api;
use operator::fake_api::FakeApi;
use serde_json::json;

const NS: &str = "ia-agents-system";

fn code<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason, status.message),
        other => panic!("not an API error: {other:?}"),
    }
}

fn lease(holder: &str) -> Lease {
    Lease {
        metadata: kube::api::ObjectMeta {
            name: Some("leader".into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            ..Default::default()
        }),
    }
}

fn holder(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref()?.holder_identity.as_deref()
}

#[tokio::test]
async fn a_write_naming_a_stale_resource_version_conflicts() {
    let (client, _api) = FakeApi::start();
    let leases: Api<Lease> = Api::namespaced(client, NS);
    let post = PostParams::default();
    assert_eq!(code(leases.get("leader").await).0, 404);
    assert_eq!(
        code(leases.replace("leader", &post, &lease("a")).await).0,
        404
    );

    let created = leases.create(&post, &lease("a")).await.unwrap();
    assert_eq!(created.metadata.namespace.as_deref(), Some(NS));
    let (status, reason, _) = code(leases.create(&post, &lease("a")).await);
    assert_eq!((status, reason.as_str()), (409, "AlreadyExists"));

    // a replace naming the current version succeeds, and makes that version stale
    let mut mine = created.clone();
    mine.spec.as_mut().unwrap().holder_identity = Some("b".into());
    let replaced = leases.replace("leader", &post, &mine).await.unwrap();
    assert_eq!(holder(&replaced), Some("b"));
    assert_ne!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );
    let (status, reason, _) = code(leases.replace("leader", &post, &mine).await);
    assert_eq!((status, reason.as_str()), (409, "Conflict"));
    let stale = json!({"metadata": {"resourceVersion": created.metadata.resource_version},
                       "spec": {"holderIdentity": "c"}});
    let (status, reason, _) = code(
        leases
            .patch("leader", &PatchParams::default(), &Patch::Merge(&stale))
            .await,
    );
    assert_eq!((status, reason.as_str()), (409, "Conflict"));
    assert_eq!(holder(&leases.get("leader").await.unwrap()), Some("b"));

    // without a version, a replace is unconditional
    let unconditional = leases.replace("leader", &post, &lease("d")).await.unwrap();
    assert_eq!(holder(&unconditional), Some("d"));
}

#[tokio::test]
async fn server_side_apply_conflicts_on_fields_another_manager_owns_unless_forced() {
    let (client, _api) = FakeApi::start();
    let leases: Api<Lease> = Api::namespaced(client, NS);
    let apply = |holder: &str| {
        Patch::Apply(
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 3}}),
        )
    };
    let by = PatchParams::apply;
    let applied = leases.patch("leader", &by("a"), &apply("a")).await.unwrap();
    assert_eq!(applied.metadata.name.as_deref(), Some("leader"));
    assert_eq!(holder(&applied), Some("a"));

    // another manager changing a's field conflicts; applying the same value shares it
    let (status, reason, message) = code(leases.patch("leader", &by("b"), &apply("b")).await);
    assert_eq!((status, reason.as_str()), (409, "Conflict"));
    assert_eq!(
        message,
        "Apply failed with 1 conflict: conflict with \"a\": .spec.holderIdentity"
    );
    leases.patch("leader", &by("b"), &apply("a")).await.unwrap();

    // a field another write removed is nobody's any more
    let release = Patch::Strategic(json!({"spec": {"holderIdentity": null}}));
    let released = leases
        .patch("leader", &PatchParams::default(), &release)
        .await
        .unwrap();
    assert_eq!(holder(&released), None);
    assert_eq!(released.spec.unwrap().lease_duration_seconds, Some(3));
    leases.patch("leader", &by("c"), &apply("c")).await.unwrap();

    // force takes the field
    let (status, _, _) = code(leases.patch("leader", &by("a"), &apply("a")).await);
    assert_eq!(status, 409);
    let forced = leases
        .patch("leader", &by("a").force(), &apply("a"))
        .await
        .unwrap();
    assert_eq!(holder(&forced), Some("a"));
}

#[tokio::test]
async fn strategic_merge_patches_only_built_in_kinds() {
    let (client, api) = FakeApi::start();
    api.insert(json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "c", "namespace": NS}, "data": {"a": "1", "b": "2"}}));
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let patch = Patch::Strategic(json!({"data": {"a": null, "c": "3"}}));
    let patched = config_maps
        .patch("c", &PatchParams::default(), &patch)
        .await
        .unwrap();
    let data = patched.data.unwrap();
    assert_eq!(data.keys().collect::<Vec<_>>(), ["b", "c"]);

    let gvk = GroupVersionKind::gvk("trading.ia-agents.dev", "v1alpha1", "Strategy");
    let strategy = json!({"apiVersion": "trading.ia-agents.dev/v1alpha1", "kind": "Strategy",
                          "metadata": {"name": "s", "namespace": NS}, "spec": {}});
    api.insert(strategy);
    let strategies: Api<DynamicObject> =
        Api::namespaced_with(client, NS, &ApiResource::from_gvk(&gvk));
    let patch = Patch::Strategic(json!({"metadata": {"labels": {"a": "b"}}}));
    let (status, reason, _) = code(strategies.patch("s", &PatchParams::default(), &patch).await);
    assert_eq!((status, reason.as_str()), (415, "UnsupportedMediaType"));
}
