"""Every built-in Kubernetes object under config/ and every CRD under crds/, validated against
Kubernetes' own OpenAPI schemas with kubernetes-validate (strict: unknown fields are errors).

ia-agents custom resources are validated against the generated CRDs by the Rust test
operator/tests/manifests.rs; here they are only counted, so that a file cannot be skipped silently.
"""

import pathlib

import kubernetes_validate
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
KUBERNETES_VERSION = "1.33.0"
OUR_GROUP = "trading.ia-agents.dev/"


KUSTOMIZE = "kustomize.config.k8s.io/"


def all_documents():
    docs = []
    for path in sorted((ROOT / "config").rglob("*.yaml")) + sorted((ROOT / "crds").glob("*.yaml")):
        for index, doc in enumerate(d for d in yaml.safe_load_all(path.read_text()) if d):
            docs.append((f"{path.relative_to(ROOT)}#{index}", doc))
    return docs


def built_in(docs):
    return [(i, d) for i, d in docs if not d["apiVersion"].startswith((OUR_GROUP, KUSTOMIZE))]


BUILT_IN = built_in(all_documents())


@pytest.mark.parametrize("doc", [d for _, d in BUILT_IN], ids=[i for i, _ in BUILT_IN])
def test_built_in_manifest_is_valid(doc):
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_document_is_checked_somewhere():
    docs = all_documents()
    kinds = {d["kind"] for _, d in docs}
    assert {"CustomResourceDefinition", "Deployment", "ClusterRole", "Strategy"} <= kinds
    ours = [d for _, d in docs if d["apiVersion"].startswith(OUR_GROUP)]
    assert len(ours) == 9, "config/samples: 1 policy, 1 strategy, 7 assistants (validated by operator/tests/manifests.rs)"
    assert len(BUILT_IN) + len(ours) + sum(d["apiVersion"].startswith(KUSTOMIZE) for _, d in docs) == len(docs)


def test_validator_rejects_what_an_api_server_would():
    """The validator is real: a Deployment with a typo and a wrong type is rejected."""
    bad = yaml.safe_load((ROOT / "config/manager/manager.yaml").read_text())
    bad["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)
    bad = yaml.safe_load((ROOT / "config/manager/manager.yaml").read_text())
    bad["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


def test_operator_runs_restricted():
    manager = yaml.safe_load((ROOT / "config/manager/manager.yaml").read_text())
    pod = manager["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_cluster_role_is_least_privilege():
    role = yaml.safe_load((ROOT / "config/rbac/role.yaml").read_text())
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"], rule
        assert "delete" not in rule["verbs"] and "deletecollection" not in rule["verbs"], rule
        if "secrets" in rule["resources"]:
            assert set(rule["verbs"]) <= {"get", "create"}, "secrets are never listed or watched"


def test_kustomizations_list_existing_files():
    for kustomization in (ROOT / "config").rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        for resource in spec.get("resources", []) + spec.get("bases", []):
            assert (kustomization.parent / resource).exists(), f"{kustomization}: {resource} is missing"


def rendered():
    """What `trading-operator render` produces for config/samples (the operator's dry run)."""
    import subprocess

    binary = ROOT / "target" / "debug" / "trading-operator"
    files = sorted(str(p) for p in (ROOT / "config" / "samples").glob("*.yaml") if p.name != "kustomization.yaml")
    out = subprocess.run([str(binary), "render", *sum((["-f", f] for f in files), [])],
                         check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


RENDERED = rendered()


def test_render_produces_the_whole_team():
    kinds = [d["kind"] for d in RENDERED]
    assert kinds.count("Deployment") == 8  # the coordinator and seven assistants
    assert kinds.count("StatefulSet") == 2  # managed NATS and Postgres
    assert kinds.count("NetworkPolicy") == 10  # one for each of those pods


def test_every_rendered_pod_has_a_policy_for_both_directions():
    policies = [d["spec"] for d in RENDERED if d["kind"] == "NetworkPolicy"]
    for workload in (d for d in RENDERED if d["kind"] in ("Deployment", "StatefulSet", "Job")):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        guarding = [p for p in policies if p["podSelector"]["matchLabels"].items() <= labels.items()]
        assert len(guarding) == 1, workload["metadata"]["name"]
        assert guarding[0]["policyTypes"] == ["Ingress", "Egress"], workload["metadata"]["name"]


@pytest.mark.parametrize("doc", RENDERED, ids=[f'{d["kind"]}/{d["metadata"]["name"]}' for d in RENDERED])
def test_rendered_object_is_valid(doc):
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
