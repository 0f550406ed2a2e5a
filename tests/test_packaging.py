"""Static checks of what cannot run here (no Docker engine, no cluster): the Dockerfile's final
images are small, non-root and shell-free; `make images`, the chart and the operator agree on image
names; the kind end-to-end script and cluster config are well-formed."""

import os
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


def stages():
    """Dockerfile stages: name -> (base image, instructions)."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.M))
    result, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM (\S+) AS (\S+)", line)
        if m:
            base = re.sub(r"\$\{(\w+)\}", lambda a: args[a.group(1)], m.group(1))
            current = m.group(2)
            result[current] = (base, [])
        elif current:
            result[current][1].append(line)
    return result


def test_final_images_are_distroless_non_root_without_a_shell():
    s = stages()
    assert set(s) == {"build", "operator", "agent"}
    assert s["build"][0].startswith("rust:1.95")
    for target, binary in (("operator", "trading-operator"), ("agent", "trading-agent")):
        base, instructions = s[target]
        assert base.startswith("gcr.io/distroless/cc-debian12") and base.endswith(":nonroot"), base
        assert not any(i.startswith("RUN") for i in instructions), "nothing runs in the final image"
        assert "USER 65532:65532" in instructions
        entrypoint = [i for i in instructions if i.startswith("ENTRYPOINT")]
        assert entrypoint == [f'ENTRYPOINT ["/usr/local/bin/{binary}"]'], "exec form: no shell needed"
        assert any(i.startswith(f"COPY --from=build /out/{binary}") for i in instructions)


def test_image_names_agree_between_make_chart_and_operator():
    version = re.search(r'^version = "(.*)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
    make = subprocess.run(["make", "-n", "images"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    assert f"--target operator -t ghcr.io/ia-agents/trading-operator:{version}" in make
    assert f"--target agent -t ghcr.io/ia-agents/trading-agent:{version}" in make
    chart = yaml.safe_load((ROOT / "charts/ia-agents/Chart.yaml").read_text())
    values = yaml.safe_load((ROOT / "charts/ia-agents/values.yaml").read_text())
    assert chart["appVersion"] == version
    assert values["image"]["repository"] == "ghcr.io/ia-agents/trading-operator"
    assert '"ghcr.io/ia-agents/trading-agent:"' in (ROOT / "operator/src/resources/mod.rs").read_text()
    manager = yaml.safe_load((ROOT / "config/manager/manager.yaml").read_text())
    assert manager["spec"]["template"]["spec"]["containers"][0]["image"] == f"ghcr.io/ia-agents/trading-operator:{version}"


def test_every_shell_script_is_shellcheck_clean():
    """make e2e, CI and the test scripts pass shellcheck (Debian's package, installed by scripts/test.sh)."""
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        if os.environ.get("IA_REQUIRE_SERVICES") == "1":
            pytest.fail("shellcheck is required (apt install shellcheck)")
        pytest.skip("shellcheck is missing")
    scripts = sorted(str(p) for p in (ROOT / "scripts").glob("*.sh")) + [str(ROOT / ".ci/run")]
    result = subprocess.run([shellcheck, "--severity=info", *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_e2e_script_and_kind_config_are_well_formed():
    subprocess.run(["bash", "-n", str(ROOT / "scripts/e2e.sh")], check=True)
    script = (ROOT / "scripts/e2e.sh").read_text()
    for step in ("kind create cluster", "kind-cluster.yaml", "kind load docker-image", "helm upgrade --install",
                 "apply -k config/samples", "condition=Ready ta --all", "condition=Ready strategy/",
                 "scale ta/", "lastDecision", "kind delete cluster"):
        assert step in script, step
    kind = yaml.safe_load((ROOT / "kind-cluster.yaml").read_text())
    assert kind["kind"] == "Cluster" and kind["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    workflow = yaml.safe_load((ROOT / ".github/workflows/e2e.yaml").read_text())
    steps = [s.get("run", "") for s in workflow["jobs"]["kind"]["steps"]]
    assert "make e2e" in steps
    chart_steps = " ".join(s.get("run", "") for s in workflow["jobs"]["chart"]["steps"])
    assert "helm lint --strict" in chart_steps and "helm template" in chart_steps
