"""Hung hosts and dead nova-computes, seen through the lab's real protocols: IPMI for the BMC,
Nova's HTTP API through openstacksdk, the control API and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openstack
import pytest
from click.testing import CliRunner

from receiver.adapters.ipmi import IpmiPower
from receiver.domain.model import BmcTarget, PowerState, Secret
from receiver.lab.cli import lab as lab_cli
from receiver.lab.manifest import LabManifest
from receiver.lab.testing import LabControl, LabError, running_lab, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),  # openstacksdk's own
]

QUICK = {"service_down_time": 2.0, "report_interval": 0.5, "evacuate_delay": 0.3, "action_delay": 0.1}


def bmc_of(manifest: LabManifest, host: str) -> BmcTarget:
    bmc = manifest.hosts[host]
    assert bmc is not None
    return BmcTarget(
        host=host,
        address=bmc.address,
        port=bmc.port,
        username=manifest.bmc_username,
        password=Secret(manifest.bmc_password()),
    )


def service_state(conn: Any, host: str) -> str:
    services = list(conn.compute.services(binary="nova-compute", host=host))
    assert len(services) == 1
    state: str = services[0].state
    return state


def test_a_hung_host_says_on_until_powered_off_through_ipmi(tmp_path: Path) -> None:
    options: dict[str, Any] = {"hosts": ("node-01", "node-02"), **QUICK}
    with running_lab(tmp_path / "lab", **options) as manifest:
        control, power = LabControl(manifest), IpmiPower(timeout_s=15)
        target = bmc_of(manifest, "node-01")
        conn = openstack.connect(**manifest.openstack_auth())
        server = next(
            s
            for s in conn.compute.servers(details=True, all_projects=True, compute_host="node-01")
            if s.status == "ACTIVE"
        )
        state = control.hang("node-01")
        assert (state["condition"], state["power"]) == ("hung", "on")
        wait_until(lambda: service_state(conn, "node-01") == "down", timeout=60, what="node-01 down")
        assert power.power_state(target) is PowerState.ON  # the BMC still says ON
        shown = conn.compute.get(f"/servers/{server.id}", microversion="2.16").json()["server"]
        assert (shown["status"], shown["host_status"]) == ("ACTIVE", "UNKNOWN")
        # Nova accepts the stop; the hung compute never carries it out.
        conn.compute.stop_server(server)
        assert conn.compute.get_server(server.id).task_state == "powering-off"
        wait_until(
            lambda: control.status()["waiting_operations"] == {"node-01": 1},
            what="the stop waits for node-01",
        )

        power.power_off(target)
        wait_until(lambda: power.power_state(target) is PowerState.OFF, timeout=30, what="BMC says OFF")
        assert control.status()["hosts"]["node-01"]["condition"] == "off"
        power.power_on(target)
        wait_until(lambda: power.power_state(target) is PowerState.ON, timeout=30, what="BMC says ON")
        assert control.status()["hosts"]["node-01"]["condition"] == "running"
        wait_until(lambda: service_state(conn, "node-01") == "up", timeout=60, what="node-01 up")
        # The restarted compute takes the stop from its queue.
        wait_until(lambda: conn.compute.get_server(server.id).status == "SHUTOFF", what="stopped at last")


def test_nova_compute_dead_on_a_live_host(tmp_path: Path) -> None:
    options: dict[str, Any] = {"hosts": ("node-01", "node-02"), "bmc": False, **QUICK}
    with running_lab(tmp_path / "lab", **options) as manifest:
        control = LabControl(manifest)
        conn = openstack.connect(**manifest.openstack_auth())
        state = control.compute("node-02", running=False)
        assert (state["condition"], state["power"]) == ("compute_dead", "on")
        wait_until(lambda: service_state(conn, "node-02") == "down", timeout=60, what="node-02 down")
        servers = list(conn.compute.servers(details=True, all_projects=True, compute_host="node-02"))
        assert servers and all(s.power_state == 1 for s in servers)  # the guests keep running
        conn.compute.evacuate_server(servers[0])
        wait_until(lambda: conn.compute.get_server(servers[0].id).compute_host == "node-01", what="evacuated")
        control.compute("node-02", running=True)
        wait_until(lambda: service_state(conn, "node-02") == "up", timeout=60, what="node-02 up")
        records = conn.compute.get("/os-migrations?source_compute=node-02", microversion="2.59").json()
        assert [m["status"] for m in records["migrations"]] == ["completed"]  # init_host ran


def test_cli_hang_and_compute(tmp_path: Path) -> None:
    workdir = tmp_path / "lab"
    runner = CliRunner()

    def lab(*arguments: str) -> Any:
        return runner.invoke(lab_cli, [*arguments, "--workdir", str(workdir)])

    with running_lab(workdir, bmc=False) as manifest:
        result = lab("hang", "node-02")
        assert result.exit_code == 0 and "node-02: hung (power on" in result.output, result.output
        result = lab("status", "--json")
        assert json.loads(result.output)["hosts"]["node-02"]["condition"] == "hung"
        result = lab("compute", "node-02", "stop")
        assert result.exit_code != 0 and "409" in result.output  # a hung host's processes are frozen
        assert lab("hang", "node-02", "--recover").exit_code == 0
        result = lab("compute", "node-02", "stop")
        assert result.exit_code == 0 and "node-02: compute_dead" in result.output, result.output
        result = lab("status")
        assert "compute_dead" in result.output
        assert lab("compute", "node-02", "start").exit_code == 0
        lab("kill", "node-03")
        result = lab("hang", "node-03")
        assert result.exit_code != 0 and "powered off" in result.output
        with pytest.raises(LabError, match="404"):
            LabControl(manifest).hang("no-such-host")
        with pytest.raises(LabError, match="400"):
            LabControl(manifest)._call("POST", "/hosts/node-01/compute", {"running": "yes"})
