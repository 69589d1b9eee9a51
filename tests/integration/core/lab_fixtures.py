"""A lab (simulated Nova + IPMI BMCs, as a subprocess) wired to services on a private Redis."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from receiver import jobs
from receiver.bootstrap import Services, build, utc_now
from receiver.domain.alerts import parse_webhook
from receiver.domain.model import BmcTarget, PowerState
from receiver.domain.record import Notification
from receiver.inventory import load_inventory
from receiver.lab.manifest import LabManifest
from receiver.lab.testing import LabControl, running_lab
from receiver.ports import PowerController
from receiver.settings import Settings
from tests.integration.core.helpers import host_alert, webhook

FAST_LAB: dict[str, Any] = {
    "hosts": ("node-01", "node-02", "node-03"),
    "service_down_time": 3.0,
    "report_interval": 0.5,
    "evacuate_delay": 0.3,
    "action_delay": 0.1,
}


class CountingPower:
    """The real IPMI adapter, with a log of every call the workflow made through it."""

    def __init__(self, inner: PowerController) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str]] = []

    def power_off(self, target: BmcTarget) -> None:
        self.calls.append(("power_off", target.host))
        self.inner.power_off(target)

    def power_on(self, target: BmcTarget) -> None:
        self.calls.append(("power_on", target.host))
        self.inner.power_on(target)

    def power_state(self, target: BmcTarget) -> PowerState:
        self.calls.append(("power_state", target.host))
        return self.inner.power_state(target)


@dataclass
class LabRig:
    lab: LabManifest
    control: LabControl
    services: Services
    power: CountingPower

    def alert(self, host: str = "node-01", **kwargs: Any) -> str:
        """Deliver a host-down alert through the intake; returns the record's uuid."""
        [result] = self.services.intake().accept(parse_webhook(webhook(host_alert(host, **kwargs))))
        return result.notification_uuid

    def process_alert(self, host: str = "node-01", process: str = "nova-compute") -> str:
        labels = {"alertname": "LazarusNovaComputeDown", "recovery": "process", "process": process}
        return self.alert(host, labels=labels)

    def instance_alert(self, instance: str, host: str = "node-01", **kwargs: Any) -> str:
        labels = {"alertname": "LazarusInstanceCrashed", "recovery": "instance", "uuid": instance}
        return self.alert(host, labels=labels, **kwargs)

    def service(self, host: str) -> dict[str, Any]:
        services: list[dict[str, Any]] = self.nova(f"/os-services?binary=nova-compute&host={host}")[
            "services"
        ]
        return services[0]

    def run(self, uuid: str) -> Notification:
        jobs.configure(self.services)
        jobs.run_recovery(uuid)
        return self.services.store.get(uuid)

    def nova(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(self.lab.nova_endpoint + path, method=method)
        request.add_header("X-Auth-Token", self.lab.token)
        request.add_header("OpenStack-API-Version", "compute 2.94")
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            return json.loads(body) if body else None

    def servers_on(self, host: str) -> list[dict[str, Any]]:
        servers: list[dict[str, Any]] = self.nova(f"/servers/detail?all_tenants=1&host={host}")["servers"]
        return servers

    def bmc_requests(self) -> dict[str, dict[str, int]]:
        """What each simulated BMC received (IPMI messages, power reads, power changes): the
        protocol-level proof, beside `power.calls`, that a flow never touched a BMC."""
        counts = self.control.bmc_requests()
        assert set(counts) == set(self.lab.hosts), "every lab host has a counting BMC"
        return counts

    def evacuations(self) -> list[dict[str, Any]]:
        migrations: list[dict[str, Any]] = self.nova("/os-migrations?migration_type=evacuation")["migrations"]
        return migrations


@pytest.fixture
def lab_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings overrides for `lab_rig`; parametrize indirectly to change them."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def lab_rig(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    redis_client: Any,
    *,
    monkeypatch: pytest.MonkeyPatch,
    lab_settings: dict[str, Any],
    lab_options: dict[str, Any],
) -> Iterator[LabRig]:
    with running_lab(tmp_path / "lab", **{**FAST_LAB, **lab_options}) as lab:
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(lab.clouds_yaml))
        services = build(make_settings(nova={"cloud": lab.cloud_name}, **lab_settings))
        services.inventory.apply(load_inventory(lab.inventory), utc_now())
        power = CountingPower(services.power("ipmi"))
        services._power["ipmi"] = power
        yield LabRig(lab, LabControl(lab), services, power)
