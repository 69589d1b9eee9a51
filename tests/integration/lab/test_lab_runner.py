"""The lab as a process: its files, its CLI, its BMCs, and its size."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import openstack
import pytest
import yaml
from click.testing import CliRunner

from receiver.adapters.ipmi import IpmiPower
from receiver.domain.model import BmcTarget, PowerState, Secret
from receiver.lab.cli import lab as lab_cli
from receiver.lab.manifest import LabManifest
from receiver.lab.testing import LabControl, LabError, running_lab, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),  # openstacksdk's own, see other module
]


def test_demo_lab_writes_its_files(tmp_path: Path) -> None:
    with running_lab(tmp_path / "lab", bmc=False, token="lab-test-token-4711") as manifest:
        workdir = manifest.workdir
        assert manifest.token == "lab-test-token-4711"
        assert b"lab-test-token-4711" not in Path(f"/proc/{manifest.pid}/cmdline").read_bytes()
        assert (
            json.loads((workdir / "manifest.json").read_text())["nova"]["endpoint"] == manifest.nova_endpoint
        )
        assert stat.S_IMODE((workdir / "bmc-password").stat().st_mode) == 0o600
        assert len(manifest.bmc_password()) >= 16
        clouds = yaml.safe_load(manifest.clouds_yaml.read_text())["clouds"]["lazarus-lab"]
        assert clouds == {
            "auth_type": "admin_token",
            "auth": {"endpoint": manifest.nova_endpoint, "token": manifest.token},
            "compute_api_version": "2.94",
        }
        segment = yaml.safe_load(manifest.inventory.read_text())["segments"][0]
        assert (segment["name"], segment["recovery_method"], segment["service_type"]) == (
            "lab",
            "auto",
            "COMPUTE",
        )
        assert [h["name"] for h in segment["hosts"]] == ["node-01", "node-02", "node-03"]
        assert not any((workdir / name).exists() for name in ("manifest.json.tmp",))
        status = LabControl(manifest).status()
        assert {name: h["servers"] for name, h in status["hosts"].items()} == {
            "node-01": 4,
            "node-02": 2,
            "node-03": 2,
        }
    assert not (workdir / "manifest.json").exists()  # a stopped lab leaves no stale manifest


def test_cli_kill_fault_and_status(tmp_path: Path) -> None:
    workdir = tmp_path / "lab"
    runner = CliRunner()
    with running_lab(workdir, bmc=False, service_down_time=2.0, report_interval=0.5) as manifest:
        result = runner.invoke(lab_cli, ["kill", "node-02", "--workdir", str(workdir)])
        assert result.exit_code == 0, result.output
        result = runner.invoke(lab_cli, ["fault", "api-delay", "5", "--workdir", str(workdir)])
        assert result.exit_code == 0, result.output
        result = runner.invoke(lab_cli, ["status", "--json", "--workdir", str(workdir)])
        report = json.loads(result.output)
        assert report["hosts"]["node-02"]["power"] == "off"
        assert report["faults"]["api_delay_ms"] == 5
        result = runner.invoke(lab_cli, ["fault", "bmc", "node-01", "mute", "--workdir", str(workdir)])
        assert result.exit_code != 0 and "without BMC simulators" in result.output
        with pytest.raises(LabError, match="404"):
            LabControl(manifest).power("no-such-host", on=False)
    result = runner.invoke(lab_cli, ["status", "--workdir", str(workdir)])
    assert result.exit_code != 0 and "no running lab" in result.output


def test_bmc_power_off_is_the_host_power(tmp_path: Path) -> None:
    options: dict[str, Any] = {
        "hosts": ("node-01", "node-02"),
        "service_down_time": 2.0,
        "report_interval": 0.5,
    }
    with running_lab(tmp_path / "lab", **options) as manifest:
        bmc = manifest.hosts["node-01"]
        assert bmc is not None
        target = BmcTarget(
            host="node-01",
            address=bmc.address,
            port=bmc.port,
            username=manifest.bmc_username,
            password=Secret(manifest.bmc_password()),
        )
        power = IpmiPower(timeout_s=15)
        assert power.power_state(target) is PowerState.ON
        power.power_off(target)
        wait_until(lambda: power.power_state(target) is PowerState.OFF, timeout=30, what="BMC says OFF")
        control = LabControl(manifest)
        assert control.status()["hosts"]["node-01"]["power"] == "off"
        conn = openstack.connect(**manifest.openstack_auth())
        wait_until(
            lambda: next(iter(conn.compute.services(binary="nova-compute", host="node-01"))).state == "down",
            timeout=60,
            what="node-01's service down",
        )
        control.bmc_fault("node-01", "stuck_on")
        assert control.status()["faults"]["bmc"] == {"node-01": "stuck_on"}
        assert power.power_state(target) is PowerState.ON  # the BMC lies, as the fault says
        control.clear_faults()
        assert power.power_state(target) is PowerState.OFF


def test_a_thousand_hosts_and_twenty_thousand_servers(tmp_path: Path) -> None:
    """Loads, answers and evacuates a host; timing belongs in the benchmarks, not here."""
    options: dict[str, Any] = {
        "host_count": 1000,
        "servers_per_host": 20,
        "bmc_hosts": ("node-0001",),
        "evacuate_delay": 0.2,
    }
    with running_lab(tmp_path / "lab", **options) as lab:
        manifest: LabManifest = lab
        assert manifest.hosts["node-0001"] is not None and manifest.hosts["node-0002"] is None
        conn = openstack.connect(**manifest.openstack_auth())
        assert len(list(conn.compute.services(binary="nova-compute"))) == 1000
        on_host = list(conn.compute.servers(details=True, all_projects=True, compute_host="node-0500"))
        assert len(on_host) == 20 and {s.compute_host for s in on_host} == {"node-0500"}
        every = list(conn.compute.servers(details=False, all_projects=True))
        assert len(every) == 20000 and len({s.id for s in every}) == 20000
        assert len(list(conn.compute.hypervisors())) == 1000

        LabControl(manifest).kill("node-0500")
        service = next(iter(conn.compute.services(binary="nova-compute", host="node-0500")))
        conn.compute.update_service_forced_down(service, "node-0500", "nova-compute", forced=True)
        for server in on_host:
            conn.compute.evacuate_server(server)

        def moved() -> bool:
            left = conn.compute.servers(details=True, all_projects=True, compute_host="node-0500")
            return not list(left)

        wait_until(moved, timeout=120, what="node-0500's servers evacuated")
        records = conn.compute.get(
            "/os-migrations?migration_type=evacuation&source_compute=node-0500", microversion="2.59"
        ).json()["migrations"]
        assert len(records) == 20 and {m["status"] for m in records} == {"done"}
        # The scheduler spreads them: each lands where the most RAM is free at that moment.
        assert len({m["dest_compute"] for m in records}) == 20
        one = on_host[0].id
        mine = conn.compute.get(f"/os-migrations?instance_uuid={one}", microversion="2.59").json()
        assert [m["instance_uuid"] for m in mine["migrations"]] == [one]


def test_settings_change_all_or_nothing(tmp_path: Path) -> None:
    with running_lab(tmp_path / "lab", bmc=False, service_down_time=5.0, report_interval=1.0) as manifest:
        control = LabControl(manifest)
        with pytest.raises(LabError, match="400"):
            control.settings(evacuate_delay=9.0, service_down_time=0.5)
        assert control.status()["settings"]["evacuate_delay"] == 1.0
        assert control.settings(evacuate_delay=9.0)["evacuate_delay"] == 9.0
