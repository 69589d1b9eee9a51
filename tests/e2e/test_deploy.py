"""The deployment files, checked by the real tools that can run here: promtool, amtool, systemd's
own verifier, and the Kubernetes schemas (kubernetes-validate, offline). Docker, Kubernetes and
Grafana themselves cannot run on our machines: see the README."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES_VERSION = "1.30.0"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed")
    return path


def run(*args: str) -> str:
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


@pytest.mark.parametrize("config", ["prometheus.yml", "compose/prometheus.yml"])
def test_prometheus_configs_pass_promtool(config: str) -> None:
    assert "SUCCESS" in run(tool("promtool"), "check", "config", str(DEPLOY / config))


def test_compose_alertmanager_config_passes_amtool() -> None:
    assert "SUCCESS" in run(tool("amtool"), "check-config", str(DEPLOY / "compose" / "alertmanager.yml"))


def test_kubernetes_manifests_validate_against_the_schemas() -> None:
    try:
        import kubernetes_validate
    except ImportError:
        pytest.skip("kubernetes-validate not installed (pip install kubernetes-validate)")
    checked = 0
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc["apiVersion"].startswith(("kustomize.config.k8s.io", "monitoring.coreos.com")):
                continue  # no schema in the package: CRDs (tests/unit checks the ServiceMonitor's fields)
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            checked += 1
    assert checked >= 10


def test_systemd_units_pass_systemd_analyze(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    lazarus = Path(sys.executable).with_name("lazarus")
    units = []
    for unit in (DEPLOY / "systemd").glob("*.service"):
        # The units name the installed venv; point them at this one so the binary exists.
        target = tmp_path / unit.name.replace("@.", "@1.")
        target.write_text(unit.read_text().replace("/opt/lazarus/bin/lazarus", str(lazarus)))
        units.append(str(target))
    assert len(units) == 2
    run(analyze, "verify", *units)
