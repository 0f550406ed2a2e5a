"""The Helm chart, with real Helm (v4, embedded by helm-python-sdk): lint --strict, render with the
default and with non-default values, every rendered object validated with kubernetes-validate,
values.schema.json rejecting bad values, and the chart kept identical to the generated CRDs and to
the kustomize install under config/ (same RBAC, same operator container).
"""

import json
import pathlib
import re

import kubernetes_validate
import pytest
import yaml
from helm_python import chart as helm
from helm_python.errors import HelmError

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "ia-agents"
KUBERNETES_VERSION = "1.33.0"
MONITORING = "monitoring.coreos.com/"

NON_DEFAULT = {
    "replicaCount": 2,
    "image": {"tag": "1.2.3", "pullPolicy": "Always"},
    "imagePullSecrets": ["registry"],
    "agentImage": "registry.example.com/trading-agent:1.2.3",
    "watchNamespace": "trading",
    "decisions": {"enabled": False},
    "logging": {"level": "debug", "format": "text"},
    "serviceAccount": {"name": "custom-sa", "annotations": {"iam.example.com/role": "ops"}},
    "podAnnotations": {"example.com/team": "quant"},
    "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}],
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                           "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "trading-operator"}}}}]}},
    "priorityClassName": "system-cluster-critical",
    "metrics": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "podMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True, "stuckFor": "10m"},
    },
    "dashboard": {"enabled": True, "namespace": "monitoring"},
    "networkPolicy": {
        "apiFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
                     "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}}},
                    {"ipBlock": {"cidr": "172.18.0.0/16"}}],
        "metricsFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
        "internetTo": [{"ipBlock": {"cidr": "203.0.113.10/32"}}],
        "apiServerPorts": [6443],
        "extraEgress": [{"ports": [{"port": 4333, "protocol": "TCP"}]}],
    },
}


def render(values=None):
    manifests = helm.Chart.load(str(CHART)).render(values, name="ia", namespace="ia-agents-system")
    docs = []
    for path, text in manifests.items():
        if path.endswith("NOTES.txt"):
            continue
        docs.extend((path, d) for d in yaml.safe_load_all(text) if d)
    return docs, manifests


def by_kind(docs, kind):
    return [d for _, d in docs if d["kind"] == kind]


def test_lint_strict_passes():
    for values in (None, NON_DEFAULT):
        report = helm.lint(str(CHART), values, strict=True)
        assert report["errors"] == [], report
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert problems == [], report


@pytest.mark.parametrize("values", [None, NON_DEFAULT], ids=["defaults", "non-defaults"])
def test_rendered_objects_are_valid_kubernetes(values):
    docs, _ = render(values)
    checked = 0
    for path, doc in docs:
        if doc["apiVersion"].startswith(MONITORING):
            continue  # Prometheus Operator kinds: checked in test_monitoring_objects
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 7, [d["kind"] for _, d in docs]


def test_defaults_install_the_operator_with_leader_election_and_least_privilege():
    docs, manifests = render()
    kinds = sorted(d["kind"] for _, d in docs)
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "Deployment", "NetworkPolicy", "Role", "RoleBinding", "Service",
                     "ServiceAccount"]
    deployment = by_kind(docs, "Deployment")[0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/ia-agents/trading-operator:0.1.0"
    assert container["args"] == ["run", "--leader-election"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["IA_AGENT_IMAGE"] == "ghcr.io/ia-agents/trading-agent:0.1.0"
    assert env["IA_LOG_FORMAT"] == "json"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    notes = manifests["ia-agents/templates/NOTES.txt"]
    assert "kubectl -n trading apply -k" in notes and "trading.ia-agents.dev/approve" in notes


def test_non_default_values_reach_the_objects():
    docs, _ = render(NON_DEFAULT)
    deployment = by_kind(docs, "Deployment")[0]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert deployment["spec"]["replicas"] == 2
    assert container["image"] == "ghcr.io/ia-agents/trading-operator:1.2.3"
    assert container["args"] == ["run", "--leader-election", "--no-decisions"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["IA_WATCH_NAMESPACE"] == "trading"
    assert env["IA_AGENT_IMAGE"] == "registry.example.com/trading-agent:1.2.3"
    assert env["HTTPS_PROXY"] == "http://proxy:3128"
    assert env["RUST_LOG"] == "debug"
    assert pod["serviceAccountName"] == "custom-sa"
    assert pod["imagePullSecrets"] == [{"name": "registry"}]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert by_kind(docs, "ServiceAccount")[0]["metadata"]["name"] == "custom-sa"
    dashboard = by_kind(docs, "ConfigMap")[0]
    assert dashboard["metadata"]["namespace"] == "monitoring"
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    json.loads(dashboard["data"]["ia-agents.json"])


def metric_names_in_code():
    names = set()
    for path in list((ROOT / "agent/src").rglob("*.rs")) + list((ROOT / "operator/src").rglob("*.rs")):
        names |= set(re.findall(r'"(ia_(?:agent|operator)_[a-z_]+)"', path.read_text()))
    return names


def metrics_in(text):
    found = set(re.findall(r"\b(ia_(?:agent|operator)_[a-z_]+?)(?:_bucket|_count|_sum)?\b", text))
    return {re.sub(r"_(bucket|count|sum)$", "", m) for m in found}


def test_monitoring_objects_scrape_and_alert_on_metrics_that_exist():
    docs, _ = render(NON_DEFAULT)
    monitor = by_kind(docs, "ServiceMonitor")[0]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    pod_monitor = by_kind(docs, "PodMonitor")[0]
    assert pod_monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/managed-by"] == "trading-operator"
    rules = by_kind(docs, "PrometheusRule")[0]
    alerts = {r["alert"]: r for g in rules["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {"IaAgentsOperatorReconcileFailing", "IaAgentsOperatorStuck",
                           "IaAgentsAssistantSilent", "IaAgentsDrawdownOverLimit"}
    assert alerts["IaAgentsOperatorStuck"]["for"] == "10m"
    known = metric_names_in_code()
    for name, rule in alerts.items():
        used = metrics_in(rule["expr"])
        assert used and used <= known, (name, used - known)
        # Prometheus' own templating survives Helm's
        assert "{{ $labels" in rule["annotations"]["summary"] or "$labels" not in rule["annotations"]["summary"]


def test_dashboard_panels_query_metrics_that_exist():
    dashboard = json.loads((CHART / "dashboards/ia-agents.json").read_text())
    known = metric_names_in_code()
    titles = [p["title"] for p in dashboard["panels"]]
    for wanted in ("Decisions by outcome", "Consensus latency (cycle)", "Equity per strategy", "PnL per strategy",
                   "LLM fallbacks (deterministic reasoning used)", "Operator reconcile errors"):
        assert wanted in titles
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used = metrics_in(target["expr"])
            assert used and used <= known, (panel["title"], used - known)


@pytest.mark.parametrize("values, field", [
    ({"replicaCount": -1}, "replicaCount"),
    ({"replicaCount": 2, "leaderElection": {"enabled": False}}, "leaderElection"),
    ({"logging": {"format": "xml"}}, "format"),
    ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    ({"metrics": {"serviceMonitor": {"interval": "often"}}}, "interval"),
    ({"replicas": 1}, "replicas"),
], ids=["negative-replicas", "replicas-without-leader-election", "log-format", "pull-policy", "interval", "unknown-key"])
def test_schema_rejects_bad_values(values, field):
    c = helm.Chart.load(str(CHART))
    with pytest.raises(HelmError) as error:
        c.validate_schema(values)
    assert field in str(error.value)
    c.validate_schema(NON_DEFAULT)


def test_chart_crds_are_the_generated_ones():
    chart_crds = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    generated = sorted(p.name for p in (ROOT / "crds").glob("*.yaml") if p.name != "kustomization.yaml")
    assert chart_crds == generated
    for name in generated:
        assert (CHART / "crds" / name).read_text() == (ROOT / "crds" / name).read_text(), (
            f"charts/ia-agents/crds/{name} is stale: cp crds/{name} charts/ia-agents/crds/")


def test_chart_and_kustomize_install_the_same_operator():
    docs, _ = render()
    config = lambda p: [d for d in yaml.safe_load_all((ROOT / "config" / p).read_text()) if d]
    assert by_kind(docs, "ClusterRole")[0]["rules"] == config("rbac/role.yaml")[0]["rules"]
    assert by_kind(docs, "Role")[0]["rules"] == config("rbac/leader_election_role.yaml")[0]["rules"]
    chart_container = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    kustomize_container = config("manager/manager.yaml")[0]["spec"]["template"]["spec"]["containers"][0]
    for field in ("args", "ports", "livenessProbe", "readinessProbe", "securityContext", "resources"):
        assert chart_container[field] == kustomize_container[field], field
    assert {e["name"] for e in kustomize_container["env"]} <= {e["name"] for e in chart_container["env"]}


def kustomize(directory):
    """`kubectl kustomize` (Debian's kubernetes-client; scripts/test.sh installs it)."""
    import os
    import shutil
    import subprocess

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("IA_REQUIRE_SERVICES"):
            pytest.fail("kubectl is not installed but IA_REQUIRE_SERVICES is set: scripts/test.sh installs it")
        pytest.skip("kubectl not installed (scripts/test.sh installs kubernetes-client)")
    out = subprocess.run([kubectl, "kustomize", str(ROOT / directory)], check=True, capture_output=True, text=True)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def ports(rule):
    return [(p["port"], p["protocol"]) for p in rule["ports"]]


def test_the_operator_network_policy_lets_in_only_scrapers_and_out_only_what_it_needs():
    docs, _ = render()
    policy = by_kind(docs, "NetworkPolicy")[0]["spec"]
    pod_labels = by_kind(docs, "Deployment")[0]["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == [], "nobody scrapes unless metricsFrom says who"
    dns, api_server, nats = policy["egress"]
    assert dns["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}]
    assert ports(dns) == [(53, "UDP"), (53, "TCP")]
    assert "to" not in api_server and ports(api_server) == [(443, "TCP"), (6443, "TCP")]
    # the managed NATS the operator's policies create carry these labels (operator/src/resources)
    assert nats["to"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "ia-agents",
                                                           "app.kubernetes.io/component": "nats"}
    assert ports(nats) == [(4222, "TCP")]
    env = {e["name"]: e.get("value") for e in by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert json.loads(env["IA_NETWORK_DNS_TO"]) == dns["to"]
    assert not {"IA_NETWORK_API_FROM", "IA_NETWORK_METRICS_FROM", "IA_NETWORK_INTERNET_TO"} & set(env)


def test_network_policy_values_reach_the_operator_and_its_policy():
    docs, _ = render(NON_DEFAULT)
    values = NON_DEFAULT["networkPolicy"]
    policy = by_kind(docs, "NetworkPolicy")[0]["spec"]
    assert policy["ingress"] == [{"from": values["metricsFrom"], "ports": [{"port": 8080, "protocol": "TCP"}]}]
    # decisions are off in NON_DEFAULT: no NATS rule; the extra rule comes last
    assert [ports(r) for r in policy["egress"]] == [[(53, "UDP"), (53, "TCP")], [(6443, "TCP")], [(4333, "TCP")]]
    container = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert json.loads(env["IA_NETWORK_API_FROM"]) == values["apiFrom"]
    assert json.loads(env["IA_NETWORK_METRICS_FROM"]) == values["metricsFrom"]
    assert json.loads(env["IA_NETWORK_INTERNET_TO"]) == values["internetTo"]
    docs, manifests = render({"networkPolicy": {"enabled": False}, "metrics": {"podMonitor": {"enabled": True}}})
    assert by_kind(docs, "NetworkPolicy") == []
    assert "networkPolicy.metricsFrom is empty" in manifests["ia-agents/templates/NOTES.txt"]


@pytest.mark.parametrize("values", [
    {"networkPolicy": {"apiFrom": [{}]}},
    {"networkPolicy": {"metricsFrom": [{"namespaceSelecter": {}}]}},
    {"networkPolicy": {"dnsTo": []}},
    {"networkPolicy": {"apiServerPorts": [0]}},
], ids=["empty-peer", "misspelt-peer", "no-dns", "port-zero"])
def test_schema_rejects_bad_network_policy_values(values):
    with pytest.raises(HelmError) as error:
        helm.Chart.load(str(CHART)).validate_schema(values)
    assert "networkPolicy" in str(error.value)


def test_chart_and_kustomize_guard_the_operator_alike():
    docs, _ = render()
    chart = by_kind(docs, "NetworkPolicy")[0]["spec"]
    kustomize = yaml.safe_load((ROOT / "config/manager/network_policy.yaml").read_text())["spec"]
    for field in ("policyTypes", "ingress", "egress"):
        assert chart[field] == kustomize[field], field
    pod_labels = yaml.safe_load((ROOT / "config/manager/manager.yaml").read_text())["spec"]["template"]["metadata"]["labels"]
    assert kustomize["podSelector"]["matchLabels"].items() <= pod_labels.items()


def test_kustomize_builds_the_same_operator_install_as_the_chart():
    built = kustomize("config/default")
    for doc in built:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    kinds = sorted(d["kind"] for d in built)
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "CustomResourceDefinition",
                     "CustomResourceDefinition", "Deployment", "Namespace", "NetworkPolicy", "Role", "RoleBinding",
                     "Service", "ServiceAccount"]
    chart_docs, _ = render()
    # the chart installs its CRDs from crds/ and leaves the namespace to `helm install --create-namespace`
    assert sorted(d["kind"] for _, d in chart_docs) == [k for k in kinds if k not in ("CustomResourceDefinition", "Namespace")]
    assert by_kind(chart_docs, "ClusterRole")[0]["rules"] == [d for d in built if d["kind"] == "ClusterRole"][0]["rules"]


def test_samples_build_with_kustomize():
    samples = kustomize("config/samples")
    assert sorted({d["kind"] for d in samples}) == ["ConsensusPolicy", "Strategy", "TradingAssistant"]
    assert len(samples) == 9
