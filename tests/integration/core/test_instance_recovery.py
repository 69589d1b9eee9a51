"""A crashed VM on a healthy host, against the lab: cross-checked with Nova, stopped and started
(or hard-rebooted) where it is, never fenced. The lab's crash is Nova's: the hypervisor says the
guest is off while Nova's record still says active and RUNNING, until Nova's own power-state
sync records it and stops the instance (receiver.lab.cloud.Cloud.crash)."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from receiver.domain.record import Notification, Status
from tests.integration.core.lab_fixtures import LabRig, lab_rig, lab_settings

pytestmark = pytest.mark.integration
__all__ = ["lab_rig", "lab_settings"]

FAST: dict[str, Any] = {"instance": {"poll_interval_s": 0.2, "timeout_s": 60}}
HA_METADATA_KEY = "HA_Enabled"

# Workflow issue (reported to the lead, not patched here): judge_instance reads "the hypervisor
# says it is not running" from OS-EXT-STS:power_state, which is Nova's database copy. Nova only
# refreshes it in _sync_instance_power_state (libvirt's STOPPED event, 15 s after the stop, or
# the periodic sync, 600 s), and that same call then stops the instance. So Nova shows
# active + power_state 1 (-> ignored instance_running) until its sync, then powering-off
# (-> task_in_progress), then stopped (-> instance_not_expected_running): never "act".
# strict: these turn red once the workflow recovers a crashed VM, so the marker goes then.
NOVA_RECORD_LAGS = pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="workflow: OS-EXT-STS:power_state is Nova's record, which says RUNNING until Nova's "
    "own power sync stops the instance; judge_instance never acts on a crashed VM",
)
NOVA_SYNC_STOP_IGNORED = pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="workflow: once Nova's power sync handles the crash, the instance is powering-off "
    "(ignored task_in_progress), then stopped (ignored instance_not_expected_running, as if a user "
    "had stopped it)",
)


def with_instance(**values: Any) -> dict[str, Any]:
    return {"instance": {**FAST["instance"], **values}}


def wait_for(condition: Callable[[], object], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.1)


def a_running_server(rig: LabRig, host: str = "node-01", *, ha: bool = True) -> str:
    """An ACTIVE server on `host`, with (ha=True) or without HA_Enabled=True metadata."""
    for server in rig.servers_on(host):
        enabled = server["metadata"].get(HA_METADATA_KEY, "").lower() == "true"
        if server["status"] == "ACTIVE" and enabled == ha:
            server_id: str = server["id"]
            return server_id
    raise AssertionError(f"the lab has no ACTIVE server on {host} with ha={ha}")


def nova_server(rig: LabRig, server_id: str) -> dict[str, Any]:
    server: dict[str, Any] = rig.nova(f"/servers/{server_id}")["server"]
    return server


def delete_server(rig: LabRig, server_id: str) -> None:
    request = urllib.request.Request(f"{rig.lab.nova_endpoint}/servers/{server_id}", method="DELETE")
    request.add_header("X-Auth-Token", rig.lab.token)
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 204


def steps(record: Notification) -> list[tuple[str, str]]:
    return [(step.name, step.state) for step in record.steps]


def describe(record: Notification) -> str:
    """The record as a failed assertion shows it: outcome, message and every step."""
    lines = [f"{step.name} {step.state}: {step.message}" for step in record.steps]
    return "\n".join([f"{record.status.value}/{record.reason}: {record.message}", *lines])


def assert_running_where_it_was(rig: LabRig, server_id: str, host: str = "node-01") -> None:
    server = nova_server(rig, server_id)
    assert (server["status"], server["OS-EXT-STS:power_state"], server["OS-EXT-SRV-ATTR:host"]) == (
        "ACTIVE",
        1,
        host,
    )
    assert rig.control.server(server_id)["hypervisor_power_state"] == 1  # the guest itself runs
    assert rig.evacuations() == []


class NoBmcTouched:
    """Zero BMC calls, twice over: the workflow's power port saw none, and no simulated BMC
    received a single IPMI message."""

    def __init__(self, rig: LabRig) -> None:
        self.rig = rig
        self.before = rig.bmc_requests()

    def check(self) -> None:
        assert self.rig.power.calls == []
        assert self.rig.bmc_requests() == self.before


@NOVA_RECORD_LAGS
@pytest.mark.parametrize("lab_settings", [FAST], indirect=True)
def test_a_crashed_vm_is_stopped_and_started_where_it_is(lab_rig: LabRig) -> None:
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig)
    lab_rig.control.crash(server_id)
    record = lab_rig.run(lab_rig.instance_alert(server_id))
    bmc.check()
    assert (record.status, record.reason) == (Status.FINISHED, "completed"), describe(record)
    assert ("stop", "succeeded") in steps(record) and ("start", "succeeded") in steps(record)
    assert record.fencing == ()
    assert_running_where_it_was(lab_rig, server_id)
    bmc.check()


@NOVA_RECORD_LAGS
@pytest.mark.parametrize("lab_settings", [with_instance(method="hard_reboot")], indirect=True)
def test_hard_reboot_method(lab_rig: LabRig) -> None:
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig)
    lab_rig.control.crash(server_id, power_state=6)
    record = lab_rig.run(lab_rig.instance_alert(server_id))
    bmc.check()
    assert (record.status, record.reason) == (Status.FINISHED, "completed"), describe(record)
    assert ("reboot", "succeeded") in steps(record)
    assert not any(name in ("stop", "start") for name, _ in steps(record))
    assert_running_where_it_was(lab_rig, server_id)
    bmc.check()


@pytest.mark.parametrize("lab_settings", [FAST], indirect=True)
def test_a_vm_the_user_stopped_is_ignored(lab_rig: LabRig) -> None:
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig)
    lab_rig.services.compute().stop(server_id)
    wait_for(lambda: nova_server(lab_rig, server_id)["status"] == "SHUTOFF", what="SHUTOFF")
    record = lab_rig.run(lab_rig.instance_alert(server_id))
    assert (record.status, record.reason) == (Status.IGNORED, "instance_not_expected_running"), describe(
        record
    )
    server = nova_server(lab_rig, server_id)
    assert (server["status"], server["OS-EXT-STS:task_state"]) == ("SHUTOFF", None)  # left stopped
    bmc.check()


@pytest.mark.parametrize("lab_settings", [FAST], indirect=True)
def test_a_deleted_instance_is_ignored(lab_rig: LabRig) -> None:
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig)
    lab_rig.control.crash(server_id)
    delete_server(lab_rig, server_id)
    record = lab_rig.run(lab_rig.instance_alert(server_id))
    assert (record.status, record.reason) == (Status.IGNORED, "instance_deleted"), describe(record)
    bmc.check()


@pytest.mark.parametrize("lab_settings", [FAST], indirect=True)
def test_a_vm_without_ha_enabled_is_left_alone(lab_rig: LabRig) -> None:
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig, ha=False)
    lab_rig.control.crash(server_id)
    record = lab_rig.run(lab_rig.instance_alert(server_id))
    assert (record.status, record.reason) == (Status.IGNORED, "not_ha_enabled"), describe(record)
    assert lab_rig.control.server(server_id)["hypervisor_power_state"] == 4  # still off: not ours
    assert nova_server(lab_rig, server_id)["OS-EXT-STS:task_state"] is None  # nothing was asked
    bmc.check()


@NOVA_RECORD_LAGS
@pytest.mark.parametrize("lab_settings", [with_instance(all_instances=True)], indirect=True)
def test_all_instances_recovers_a_vm_without_ha_enabled(lab_rig: LabRig) -> None:
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig, ha=False)
    lab_rig.control.crash(server_id)
    record = lab_rig.run(lab_rig.instance_alert(server_id))
    bmc.check()
    assert (record.status, record.reason) == (Status.FINISHED, "completed"), describe(record)
    assert_running_where_it_was(lab_rig, server_id)
    bmc.check()


@NOVA_RECORD_LAGS
@pytest.mark.parametrize("lab_settings", [with_instance(crash_loop_max=2)], indirect=True)
def test_a_crash_loop_is_left_to_a_human(lab_rig: LabRig) -> None:
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig)
    for crash in range(2):
        lab_rig.control.crash(server_id)
        uuid = lab_rig.instance_alert(server_id, starts_at=f"2026-11-25T12:0{crash}:00.000000Z")
        record = lab_rig.run(uuid)
        bmc.check()
        assert (record.status, record.reason) == (Status.FINISHED, "completed"), describe(record)
    lab_rig.control.crash(server_id)
    record = lab_rig.run(lab_rig.instance_alert(server_id, starts_at="2026-11-25T12:05:00.000000Z"))
    assert (record.status, record.reason) == (Status.IGNORED, "crash_loop"), describe(record)
    assert "2 times" in record.message
    assert lab_rig.control.server(server_id)["hypervisor_power_state"] == 4  # not restarted again
    bmc.check()


@NOVA_SYNC_STOP_IGNORED
@pytest.mark.parametrize("lab_settings", [FAST], indirect=True)
def test_novas_power_sync_racing_the_recovery(lab_rig: LabRig) -> None:
    """Nova's sync is stopping the instance when the recovery comes: a stop now gets Nova's
    409 (task_state powering-off), which the workflow notes as progress and waits through."""
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig)
    lab_rig.control.settings(action_delay=5.0)  # a long powering-off, so the recovery meets it
    lab_rig.control.crash(server_id, sync_after=0.0)
    wait_for(
        lambda: nova_server(lab_rig, server_id)["OS-EXT-STS:task_state"] == "powering-off",
        what="Nova's sync stopping the instance",
    )
    record = lab_rig.run(lab_rig.instance_alert(server_id))
    bmc.check()
    assert (record.status, record.reason) == (Status.FINISHED, "completed"), describe(record)
    assert ("stop", "progress") in steps(record)
    assert_running_where_it_was(lab_rig, server_id)
    bmc.check()


@NOVA_SYNC_STOP_IGNORED
@pytest.mark.parametrize("lab_settings", [FAST], indirect=True)
def test_a_vm_novas_power_sync_already_stopped_is_recovered(lab_rig: LabRig) -> None:
    """The common case in production: libvirt's STOPPED event reaches nova-compute 15 s after
    the crash, before an alert can; Nova has stopped the instance by the time Lazarus looks."""
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig)
    lab_rig.control.crash(server_id, sync_after=0.0)
    wait_for(lambda: nova_server(lab_rig, server_id)["status"] == "SHUTOFF", what="Nova's stop")
    record = lab_rig.run(lab_rig.instance_alert(server_id))
    bmc.check()
    assert (record.status, record.reason) == (Status.FINISHED, "completed"), describe(record)
    assert_running_where_it_was(lab_rig, server_id)
