"""The lab's exporter-like endpoints over real HTTP, in the real exporters' text format, following
each host's condition: powered off, hung, nova-compute dead, a BMC that does not answer."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from receiver.lab.manifest import LabManifest
from receiver.lab.testing import LabControl, running_lab, wait_until

pytestmark = pytest.mark.integration

QUICK = {"service_down_time": 2.0, "report_interval": 0.5, "evacuate_delay": 0.3, "action_delay": 0.1}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def base(manifest: LabManifest) -> str:
    return manifest.nova_endpoint.removesuffix("/v2.1") + "/exporters"


def scrape(url: str) -> tuple[int, Samples]:
    """Status and samples, parsed with prometheus_client's parser of the exposition format."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return 200, samples


def value(samples: Samples, metric: str, **labels: str) -> float:
    return samples[(metric, tuple(sorted(labels.items())))]


def domains_of(samples: Samples) -> dict[str, float]:
    states = {k: v for k, v in samples.items() if k[0] == "libvirt_domain_state_code"}
    return {dict(labels)["uuid"]: v for (_, labels), v in states.items()}


def nova(manifest: LabManifest, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(manifest.nova_endpoint + path, data=data, method=method)
    request.add_header("X-Auth-Token", manifest.token)
    request.add_header("Content-Type", "application/json")
    request.add_header("OpenStack-API-Version", "compute 2.94")
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
        return json.loads(raw) if raw else None


def test_exporters_follow_the_host_conditions(tmp_path: Path) -> None:
    with running_lab(tmp_path / "lab", hosts=("node-01", "node-02", "node-03"), **QUICK) as manifest:
        url, control = base(manifest), LabControl(manifest)
        running = [
            s for s in nova(manifest, "GET", "/servers/detail?all_tenants=1&host=node-01")["servers"]
            if s["status"] == "ACTIVE"
        ]  # fmt: skip
        assert running

        # A healthy host: every exporter answers; running domains only, named as Nova names them.
        status, node = scrape(f"{url}/node-01/node/metrics")
        assert status == 200
        unit = {"name": "nova-compute.service", "type": "service"}  # the label `name`, hence `metric`
        assert value(node, "node_systemd_unit_state", state="active", **unit) == 1
        assert value(node, "node_systemd_unit_state", state="failed", **unit) == 0
        status, libvirt = scrape(f"{url}/node-01/libvirt/metrics")
        assert status == 200
        assert domains_of(libvirt) == {s["id"]: 1.0 for s in running}
        assert value(libvirt, "libvirt_up") == 1
        assert value(libvirt, "libvirt_domains_number") == len(running)
        assert scrape(f"{url}/probe?module=icmp&target=node-01")[1][("probe_success", ())] == 1
        _, ipmi = scrape(f"{url}/ipmi?target=node-01")
        assert value(ipmi, "ipmi_up", collector="chassis") == 1
        assert value(ipmi, "ipmi_chassis_power_state") == 1

        # A guest stopped through Nova leaves the running-only listing.
        stopped = running[0]["id"]
        nova(manifest, "POST", f"/servers/{stopped}/action", {"os-stop": None})
        wait_until(
            lambda: stopped not in domains_of(scrape(f"{url}/node-01/libvirt/metrics")[1]),
            timeout=30,
            what="the stopped domain to leave the listing",
        )

        # nova-compute dies: the node answers, the unit is failed, guests and network carry on.
        control.compute("node-02", running=False)
        _, node = scrape(f"{url}/node-02/node/metrics")
        assert value(node, "node_systemd_unit_state", state="failed", **unit) == 1
        assert value(node, "node_systemd_unit_state", state="active", **unit) == 0
        assert scrape(f"{url}/node-02/libvirt/metrics")[0] == 200
        assert scrape(f"{url}/probe?target=node-02")[1][("probe_success", ())] == 1

        # Hung: no exporter answers, no ping, but the BMC says ON.
        control.hang("node-03")
        assert scrape(f"{url}/node-03/node/metrics")[0] == 503
        assert scrape(f"{url}/node-03/libvirt/metrics")[0] == 503
        assert scrape(f"{url}/probe?module=icmp&target=node-03")[1][("probe_success", ())] == 0
        assert value(scrape(f"{url}/ipmi?target=node-03")[1], "ipmi_chassis_power_state") == 1

        # Powered off: the same silence, and the BMC says OFF.
        control.kill("node-01")
        assert scrape(f"{url}/node-01/node/metrics")[0] == 503
        assert scrape(f"{url}/probe?target=node-01")[1][("probe_success", ())] == 0
        assert value(scrape(f"{url}/ipmi?target=node-01")[1], "ipmi_chassis_power_state") == 0

        # A BMC that does not answer: ipmi_up 0 and no power reading.
        control.bmc_fault("node-02", "mute")
        _, ipmi = scrape(f"{url}/ipmi?target=node-02")
        assert value(ipmi, "ipmi_up", collector="chassis") == 0
        assert not any(name == "ipmi_chassis_power_state" for name, _ in ipmi)

        # Unknown hosts and modules are errors, not healthy hosts.
        assert scrape(f"{url}/node-99/node/metrics")[0] == 404
        assert scrape(f"{url}/probe?module=http_2xx&target=node-02")[0] == 400
