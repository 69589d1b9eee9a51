"""The deployment files agree with each other and with what the rules and dashboards expect.
(The real tools check them in tests/e2e/test_deploy.py.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from receiver.monitoring.rules import ROOT, load_timings, render_templates

pytestmark = pytest.mark.unit
DEPLOY = ROOT / "deploy"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def jobs_in_rules() -> set[str]:
    text = "\n".join(render_templates(load_timings()).values())
    return set(re.findall(r'job="([^"]+)"', text)) | set(re.findall(r'job=~"([^"]+)"', text)[0].split("|"))


@pytest.mark.parametrize("config", ["prometheus.yml", "compose/prometheus.yml"])
def test_prometheus_configs_scrape_every_job_the_rules_read(config: str) -> None:
    jobs = {job["job_name"] for job in load(DEPLOY / config)["scrape_configs"]}
    assert jobs_in_rules() <= jobs
    assert "alertmanager" in jobs  # LazarusAlertDeliveryFailing


def test_compose_alertmanager_routes_as_deploy_does() -> None:
    deployed, compose = load(DEPLOY / "alertmanager.yml"), load(DEPLOY / "compose" / "alertmanager.yml")
    assert compose["route"] == deployed["route"]
    assert compose["inhibit_rules"] == deployed["inhibit_rules"]
    assert [r["name"] for r in compose["receivers"]] == [r["name"] for r in deployed["receivers"]]


def test_compose_runs_the_whole_stack_from_files_that_exist() -> None:
    compose = load(DEPLOY / "compose.yaml")
    services = compose["services"]
    assert {"lab", "redis", "prometheus", "alertmanager", "grafana"} <= set(services)
    lazarus = [
        s["command"][0]
        for s in services.values()
        if s.get("image") == "lazarus:dev" and "entrypoint" not in s
    ]
    assert (lazarus.count("serve"), lazarus.count("worker")) == (2, 2)
    build = services["lab"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source}"
            else:
                assert source in compose["volumes"], f"{name}: {source}"
    redis_conf = (DEPLOY / "redis.conf").read_text()
    assert "appendonly yes" in redis_conf


def test_dockerfile_is_multi_stage_non_root_and_handles_multiprocess_metrics() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    assert re.search(r"^USER lazarus$", text, re.M)
    assert "PROMETHEUS_MULTIPROC_DIR=/run/lazarus/metrics" in text
    # The same install as `make venv`: the package from pyproject.toml (without the dev extras).
    assert "pip install --no-cache-dir ." in text
    assert "COPY pyproject.toml" in text


def test_kubernetes_manifests_hang_together() -> None:
    k8s = DEPLOY / "k8s"
    listed = load(k8s / "kustomization.yaml")["resources"]
    assert sorted(listed) == sorted(p.name for p in k8s.glob("*.yaml") if p.name != "kustomization.yaml")
    docs = [d for name in listed for d in load_all(k8s / name)]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    receiver = next(d for d in by_kind["Deployment"] if d["metadata"]["name"] == "lazarus-receiver")
    container = receiver["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"name": "PROMETHEUS_MULTIPROC_DIR", "value": "/run/lazarus/metrics"} in container["env"]
    assert receiver["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    [pdb] = by_kind["PodDisruptionBudget"]
    assert pdb["spec"]["selector"]["matchLabels"] == receiver["spec"]["selector"]["matchLabels"]
    [redis] = by_kind["StatefulSet"]
    assert redis["spec"]["volumeClaimTemplates"]
    assert "appendonly yes" in next(
        d["data"]["redis.conf"] for d in by_kind["ConfigMap"] if "redis.conf" in d.get("data", {})
    )
    assert any(s["metadata"]["name"] == "lazarus-bmc" for s in by_kind["Secret"])
    [monitor] = by_kind["ServiceMonitor"]
    service = next(s for s in by_kind["Service"] if s["metadata"]["name"] == "lazarus-receiver")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "lazarus"  # job="lazarus"


def test_systemd_units_wipe_the_metrics_dir_per_start() -> None:
    unit = (DEPLOY / "systemd" / "lazarus-receiver.service").read_text()
    assert "RuntimeDirectory=lazarus/metrics" in unit
    assert "Environment=PROMETHEUS_MULTIPROC_DIR=/run/lazarus/metrics" in unit
    assert "User=lazarus" in unit
    worker = (DEPLOY / "systemd" / "lazarus-worker@.service").read_text()
    assert "ExecStart=/opt/lazarus/bin/lazarus worker" in worker
