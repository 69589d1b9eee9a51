"""Crashed guests and the BMCs' request counters, through the lab's real protocols: Nova's HTTP
API via openstacksdk, the control API, the CLI, the libvirt exporter, and IPMI (pyghmi and
ipmitool)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import openstack
import pytest
from click.testing import CliRunner

from receiver.adapters.ipmi import IpmiPower
from receiver.domain.model import BmcTarget, PowerState, Secret
from receiver.errors import BmcUnreachable
from receiver.lab.cli import lab as lab_cli
from receiver.lab.manifest import LabManifest
from receiver.lab.testing import LabControl, LabError, running_lab, wait_until
from tests.integration.lab.test_lab_exporters import base, domains_of, scrape

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),  # openstacksdk's own
]

QUICK = {"service_down_time": 2.0, "report_interval": 0.5, "evacuate_delay": 0.3, "action_delay": 0.1}
IPMI_PASSWORD_MAX_BYTES = 20


def nova_view(conn: Any, server_id: str) -> tuple[str, str, str | None, int]:
    server = conn.compute.get_server(server_id)
    return server.status, server.vm_state, server.task_state, server.power_state


def test_a_crashed_guest_is_running_for_nova_until_its_sync_stops_it(tmp_path: Path) -> None:
    workdir = tmp_path / "lab"
    with running_lab(workdir, hosts=("node-01", "node-02"), bmc=False, **QUICK) as manifest:
        control, conn = LabControl(manifest), openstack.connect(**manifest.openstack_auth())
        active = [
            s.id
            for s in conn.compute.servers(details=True, all_projects=True, compute_host="node-01")
            if s.status == "ACTIVE"
        ]
        first, second = active[0], active[1]
        libvirt = f"{base(manifest)}/node-01/libvirt/metrics"
        assert {first, second} <= set(domains_of(scrape(libvirt)[1]))

        state = control.crash(first)
        assert (state["vm_state"], state["power_state"], state["hypervisor_power_state"]) == ("active", 1, 4)
        assert nova_view(conn, first) == ("ACTIVE", "active", None, 1)  # Nova has not noticed
        assert first not in domains_of(scrape(libvirt)[1])  # libvirt lists running domains only
        assert second in domains_of(scrape(libvirt)[1])
        with pytest.raises(LabError, match="409"):
            control.crash(first)
        for bad in ({"power_state": 1}, {"power_state": True}, {"sync_after": -1}, {"sync_after": "soon"}):
            with pytest.raises(LabError, match="400"):
                control._call("POST", f"/servers/{second}/crash", bad)
        with pytest.raises(LabError, match="404"):
            control.crash("no-such-server")

        # Nova's power sync, through the CLI; a slow stop, so the race with it can be seen.
        control.settings(action_delay=3.0)
        result = CliRunner().invoke(
            lab_cli, ["crash", second, "--power-state", "6", "--sync-after", "0.2", "--workdir", str(workdir)]
        )
        assert result.exit_code == 0, result.output
        assert "hypervisor power_state 6" in result.output
        wait_until(
            lambda: nova_view(conn, second) == ("ACTIVE", "active", "powering-off", 6),
            timeout=30,
            what="Nova's sync to record CRASHED and stop the instance",
        )
        with pytest.raises(openstack.exceptions.ConflictException, match="task_state powering-off"):
            conn.compute.stop_server(second)
        wait_until(
            lambda: nova_view(conn, second) == ("SHUTOFF", "stopped", None, 4),
            timeout=30,
            what="stopped",
        )

        # Stop and start bring a crashed guest back; Nova's record was never told otherwise.
        control.settings(action_delay=0.1)
        conn.compute.stop_server(first)
        wait_until(lambda: nova_view(conn, first)[0] == "SHUTOFF", timeout=30, what="first SHUTOFF")
        conn.compute.start_server(first)
        wait_until(lambda: nova_view(conn, first) == ("ACTIVE", "active", None, 1), timeout=30, what="ACTIVE")
        assert control.server(first)["hypervisor_power_state"] == 1
        assert first in domains_of(scrape(libvirt)[1])
        conn.close()


def bmc_target(manifest: LabManifest, host: str) -> BmcTarget:
    bmc = manifest.hosts[host]
    assert bmc is not None
    return BmcTarget(
        host=host,
        address=bmc.address,
        port=bmc.port,
        username=manifest.bmc_username,
        password=Secret(manifest.bmc_password()),
    )


def test_each_bmc_counts_what_it_receives(tmp_path: Path) -> None:
    with running_lab(tmp_path / "lab", hosts=("node-01", "node-02"), **QUICK) as manifest:
        control, power = LabControl(manifest), IpmiPower(timeout_s=15)
        zero = {"requests": 0, "power_reads": 0, "power_changes": 0}
        assert control.bmc_requests() == {"node-01": zero, "node-02": zero}

        target = bmc_target(manifest, "node-01")
        assert power.power_state(target) is PowerState.ON
        counts = control.bmc_requests()
        assert counts["node-02"] == zero
        assert counts["node-01"]["power_reads"] >= 1 and counts["node-01"]["power_changes"] == 0
        assert counts["node-01"]["requests"] > counts["node-01"]["power_reads"]  # session setup too

        power.power_off(target)
        wait_until(lambda: power.power_state(target) is PowerState.OFF, timeout=30, what="OFF")
        counts = control.bmc_requests()
        assert counts["node-01"]["power_changes"] >= 1 and counts["node-02"] == zero

        # A BMC that answers nothing still counts what reached it.
        control.bmc_fault("node-02", "mute")
        with pytest.raises(BmcUnreachable):
            IpmiPower(timeout_s=3).power_state(bmc_target(manifest, "node-02"))
        muted = control.bmc_requests()["node-02"]
        assert muted["requests"] >= 1 and (muted["power_reads"], muted["power_changes"]) == (0, 0)


@pytest.mark.skipif(shutil.which("ipmitool") is None, reason="ipmitool is not installed")
def test_the_bmc_password_fits_ipmi_and_ipmitool_logs_in(tmp_path: Path) -> None:
    with running_lab(tmp_path / "lab", hosts=("node-01",), **QUICK) as manifest:
        assert len(manifest.bmc_password().encode()) <= IPMI_PASSWORD_MAX_BYTES
        bmc = manifest.hosts["node-01"]
        assert bmc is not None
        # -f: the password from the lab's file, never on a command line; -C 3: the lab's cipher suite.
        command = [
            "ipmitool", "-I", "lanplus", "-C", "3", "-H", bmc.address, "-p", str(bmc.port),
            "-U", manifest.bmc_username, "-f", str(manifest.bmc_password_file), "-N", "2", "-R", "3",
            "chassis", "power", "status",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "Chassis Power is on"
        assert LabControl(manifest).bmc_requests()["node-01"]["power_reads"] >= 1
