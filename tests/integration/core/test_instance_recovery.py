"""A crashed VM on a healthy host, against the lab: cross-checked with Nova, started (or
hard-rebooted) where it is, never fenced, no BMC touched.

The lab's crash is Nova's (receiver.lab.cloud.Cloud.crash): the hypervisor says the guest is off
while Nova's record still says active and RUNNING; Nova's power-state sync then records it and
stops the instance itself, an instance action with no user. SYNC_S stands for libvirt's 15 s
STOPPED-event delay, scaled down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from receiver.domain.record import Notification, Status
from tests.integration.core.lab_fixtures import LabRig, lab_rig, lab_settings

pytestmark = pytest.mark.integration
__all__ = ["lab_rig", "lab_settings"]

FAST: dict[str, Any] = {"instance": {"poll_interval_s": 0.2, "timeout_s": 60, "confirm_s": 30}}
SYNC_S = 0.5
HA_METADATA_KEY = "HA_Enabled"
RUNNING, SHUTDOWN, CRASHED = 1, 4, 6  # Nova's power_state codes

# What a record shows, step by step.
STOP_START_STEPS = [
    ("recovery", "started"),
    ("check", "succeeded"),
    ("stop", "skipped"),  # already SHUTOFF: Nova's own stop here, none sent by Lazarus
    ("start", "succeeded"),
    ("recovery", "finished"),
]
IGNORED_STEPS = [("recovery", "started"), ("recovery", "ignored")]


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


def actions(rig: LabRig, server_id: str) -> list[tuple[str, str | None]]:
    """Nova's instance actions, oldest first: (action, user_id); user None is Nova itself."""
    listed = rig.nova(f"/servers/{server_id}/os-instance-actions")["instanceActions"]
    return [(a["action"], a["user_id"]) for a in reversed(listed)]


def novas_stop(rig: LabRig, server_id: str) -> str:
    """The request id of Nova's own stop of the server (the newest action with no user)."""
    listed = rig.nova(f"/servers/{server_id}/os-instance-actions")["instanceActions"]
    request_id: str = next(a["request_id"] for a in listed if (a["action"], a["user_id"]) == ("stop", None))
    return request_id


def steps(record: Notification) -> list[tuple[str, str]]:
    return [(step.name, step.state) for step in record.steps]


def step_message(record: Notification, name: str) -> str:
    return next(step.message for step in record.steps if step.name == name)


def describe(record: Notification) -> str:
    """The record as a failed assertion shows it: outcome, message and every step."""
    lines = [f"{step.name} {step.state}: {step.message}" for step in record.steps]
    return "\n".join([f"{record.status.value}/{record.reason}: {record.message}", *lines])


def assert_running_where_it_was(rig: LabRig, server_id: str, host: str = "node-01") -> None:
    server = nova_server(rig, server_id)
    assert (server["status"], server["OS-EXT-STS:power_state"], server["OS-EXT-SRV-ATTR:host"]) == (
        "ACTIVE",
        RUNNING,
        host,
    )
    assert rig.control.server(server_id)["hypervisor_power_state"] == RUNNING  # the guest itself runs
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


@pytest.mark.parametrize("lab_settings", [FAST], indirect=True)
def test_a_crashed_vm_is_started_again_where_it_is(lab_rig: LabRig) -> None:
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig)
    lab_rig.control.crash(server_id, sync_after=SYNC_S)
    record = lab_rig.run(lab_rig.instance_alert(server_id))
    bmc.check()
    assert (record.status, record.reason) == (Status.FINISHED, "completed"), describe(record)
    assert steps(record) == STOP_START_STEPS, describe(record)
    assert f"stopped by Nova's own power sync ({novas_stop(lab_rig, server_id)})" in step_message(
        record, "check"
    )
    assert record.fencing == ()
    assert_running_where_it_was(lab_rig, server_id)
    # Nova stopped it (no user); Lazarus only had to start it.
    assert actions(lab_rig, server_id) == [("create", "demo"), ("stop", None), ("start", "admin")]
    bmc.check()


@pytest.mark.parametrize("lab_settings", [with_instance(method="hard_reboot")], indirect=True)
def test_hard_reboot_method(lab_rig: LabRig) -> None:
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig)
    lab_rig.control.crash(server_id, power_state=CRASHED, sync_after=SYNC_S)
    record = lab_rig.run(lab_rig.instance_alert(server_id))
    bmc.check()
    assert (record.status, record.reason) == (Status.FINISHED, "completed"), describe(record)
    assert steps(record) == [
        ("recovery", "started"),
        ("check", "succeeded"),
        ("reboot", "succeeded"),
        ("recovery", "finished"),
    ], describe(record)
    assert_running_where_it_was(lab_rig, server_id)
    assert actions(lab_rig, server_id) == [("create", "demo"), ("stop", None), ("reboot", "admin")]
    bmc.check()


@pytest.mark.parametrize("lab_settings", [FAST], indirect=True)
def test_a_vm_the_user_stopped_is_ignored(lab_rig: LabRig) -> None:
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig)
    lab_rig.services.compute().stop(server_id)
    wait_for(lambda: nova_server(lab_rig, server_id)["status"] == "SHUTOFF", what="SHUTOFF")
    assert actions(lab_rig, server_id) == [("create", "demo"), ("stop", "admin")]  # a user's stop
    record = lab_rig.run(lab_rig.instance_alert(server_id))
    assert (record.status, record.reason) == (Status.IGNORED, "instance_not_expected_running"), describe(
        record
    )
    assert steps(record) == IGNORED_STEPS, describe(record)
    assert "stopped by user admin" in record.message
    server = nova_server(lab_rig, server_id)
    assert (server["status"], server["OS-EXT-STS:task_state"]) == ("SHUTOFF", None)  # left stopped
    assert actions(lab_rig, server_id) == [("create", "demo"), ("stop", "admin")]  # nothing sent
    bmc.check()


@pytest.mark.parametrize("lab_settings", [FAST], indirect=True)
def test_a_crashed_vm_its_user_stopped_stays_ignored_after_the_crash_alert(lab_rig: LabRig) -> None:
    """The guest really crashed, but its user stopped it before Nova's sync noticed (Nova still
    recorded it active, so the stop was accepted): the newest action is the user's stop, so
    the crash alert leaves the VM off, and Nova's sync, finding a stopped instance powered
    off, changes nothing either."""
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig)
    lab_rig.control.crash(server_id, sync_after=2.0)
    lab_rig.services.compute().stop(server_id)
    wait_for(lambda: nova_server(lab_rig, server_id)["status"] == "SHUTOFF", what="the user's stop")
    record = lab_rig.run(lab_rig.instance_alert(server_id))
    assert (record.status, record.reason) == (Status.IGNORED, "instance_not_expected_running"), describe(
        record
    )
    assert steps(record) == IGNORED_STEPS, describe(record)
    assert "stopped by user admin" in record.message
    wait_for(lambda: lab_rig.control.status()["pending_operations"] == 0, what="Nova's sync")
    server = nova_server(lab_rig, server_id)
    assert (server["status"], server["OS-EXT-STS:task_state"], server["OS-EXT-STS:power_state"]) == (
        "SHUTOFF",
        None,
        SHUTDOWN,
    )
    assert lab_rig.control.server(server_id)["hypervisor_power_state"] == SHUTDOWN
    assert actions(lab_rig, server_id) == [("create", "demo"), ("stop", "admin")]
    bmc.check()


@pytest.mark.parametrize("lab_settings", [FAST], indirect=True)
def test_a_deleted_instance_is_ignored(lab_rig: LabRig) -> None:
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig)
    lab_rig.control.crash(server_id)
    lab_rig.nova(f"/servers/{server_id}", method="DELETE")
    record = lab_rig.run(lab_rig.instance_alert(server_id))
    assert (record.status, record.reason) == (Status.IGNORED, "instance_deleted"), describe(record)
    assert steps(record) == IGNORED_STEPS, describe(record)
    assert actions(lab_rig, server_id) == [("create", "demo"), ("delete", "admin")]
    bmc.check()


@pytest.mark.parametrize("lab_settings", [FAST], indirect=True)
def test_a_vm_without_ha_enabled_is_left_alone(lab_rig: LabRig) -> None:
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig, ha=False)
    lab_rig.control.crash(server_id)
    record = lab_rig.run(lab_rig.instance_alert(server_id))
    assert (record.status, record.reason) == (Status.IGNORED, "not_ha_enabled"), describe(record)
    assert steps(record) == IGNORED_STEPS, describe(record)
    assert lab_rig.control.server(server_id)["hypervisor_power_state"] == SHUTDOWN  # still off: not ours
    assert actions(lab_rig, server_id) == [("create", "demo")]  # nothing was asked of Nova
    bmc.check()


@pytest.mark.parametrize("lab_settings", [with_instance(all_instances=True)], indirect=True)
def test_all_instances_recovers_a_vm_without_ha_enabled(lab_rig: LabRig) -> None:
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig, ha=False)
    lab_rig.control.crash(server_id, sync_after=SYNC_S)
    record = lab_rig.run(lab_rig.instance_alert(server_id))
    bmc.check()
    assert (record.status, record.reason) == (Status.FINISHED, "completed"), describe(record)
    assert steps(record) == STOP_START_STEPS, describe(record)
    assert_running_where_it_was(lab_rig, server_id)
    assert actions(lab_rig, server_id) == [("create", "demo"), ("stop", None), ("start", "admin")]
    bmc.check()


@pytest.mark.parametrize("lab_settings", [with_instance(crash_loop_max=2)], indirect=True)
def test_a_crash_loop_is_left_to_a_human(lab_rig: LabRig) -> None:
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig)
    for crash in range(2):
        lab_rig.control.crash(server_id, sync_after=SYNC_S)
        uuid = lab_rig.instance_alert(server_id, starts_at=f"2026-11-25T12:0{crash}:00.000000Z")
        record = lab_rig.run(uuid)
        bmc.check()
        assert (record.status, record.reason) == (Status.FINISHED, "completed"), describe(record)
        assert steps(record) == STOP_START_STEPS, describe(record)
        assert_running_where_it_was(lab_rig, server_id)
    lab_rig.control.crash(server_id, sync_after=SYNC_S)
    record = lab_rig.run(lab_rig.instance_alert(server_id, starts_at="2026-11-25T12:05:00.000000Z"))
    assert (record.status, record.reason) == (Status.IGNORED, "crash_loop"), describe(record)
    assert steps(record) == IGNORED_STEPS, describe(record)
    assert "2 times" in record.message
    # Left as Nova's sync left it: stopped, not started a third time.
    assert nova_server(lab_rig, server_id)["status"] == "SHUTOFF"
    assert lab_rig.control.server(server_id)["hypervisor_power_state"] == SHUTDOWN
    assert actions(lab_rig, server_id) == [
        ("create", "demo"),
        *[("stop", None), ("start", "admin")] * 2,
        ("stop", None),
    ]
    bmc.check()


@pytest.mark.parametrize("lab_settings", [FAST], indirect=True)
def test_novas_power_sync_racing_the_recovery(lab_rig: LabRig) -> None:
    """Nova's sync is stopping the instance when the recovery comes: the recovery waits for
    Nova's stop to land instead of sending its own (which would get Nova's 409), then starts it."""
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig)
    lab_rig.control.settings(action_delay=3.0)  # a slow stop, so the recovery meets it
    lab_rig.control.crash(server_id, sync_after=0.0)
    wait_for(
        lambda: nova_server(lab_rig, server_id)["OS-EXT-STS:task_state"] == "powering-off",
        what="Nova's sync stopping the instance",
    )
    record = lab_rig.run(lab_rig.instance_alert(server_id))
    bmc.check()
    assert (record.status, record.reason) == (Status.FINISHED, "completed"), describe(record)
    assert steps(record) == STOP_START_STEPS, describe(record)  # no 409: no stop was sent
    assert_running_where_it_was(lab_rig, server_id)
    # One stop, Nova's.
    assert actions(lab_rig, server_id) == [("create", "demo"), ("stop", None), ("start", "admin")]
    bmc.check()


@pytest.mark.parametrize("lab_settings", [FAST], indirect=True)
def test_a_vm_novas_power_sync_stopped_before_the_alert_is_recovered(lab_rig: LabRig) -> None:
    """The usual order in production: libvirt's STOPPED event reaches nova-compute 15 s after
    the crash, before any alert can; Nova has stopped the instance by the time Lazarus looks."""
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig)
    lab_rig.control.crash(server_id, sync_after=0.0)
    wait_for(lambda: nova_server(lab_rig, server_id)["status"] == "SHUTOFF", what="Nova's stop")
    record = lab_rig.run(lab_rig.instance_alert(server_id))
    bmc.check()
    assert (record.status, record.reason) == (Status.FINISHED, "completed"), describe(record)
    assert steps(record) == STOP_START_STEPS, describe(record)
    assert novas_stop(lab_rig, server_id) in step_message(record, "check")
    assert_running_where_it_was(lab_rig, server_id)
    assert actions(lab_rig, server_id) == [("create", "demo"), ("stop", None), ("start", "admin")]
    bmc.check()


@pytest.mark.parametrize("lab_settings", [with_instance(confirm_s=1)], indirect=True)
def test_a_crash_nova_never_notices_is_recovered_on_the_alerts_word(lab_rig: LabRig) -> None:
    """A guest kept CRASHED raises no lifecycle event Nova handles; only its periodic sync (600 s)
    would notice. After confirm_s with Nova's record still RUNNING and no task, the alert (the
    hypervisor's exporter) is believed: stop, start, ACTIVE where it was."""
    bmc = NoBmcTouched(lab_rig)
    server_id = a_running_server(lab_rig)
    lab_rig.control.crash(server_id)
    record = lab_rig.run(lab_rig.instance_alert(server_id))
    assert (record.status, record.reason) == (Status.FINISHED, "completed"), describe(record)
    assert "recovering on the alert's word" in step_message(record, "check")
    assert_running_where_it_was(lab_rig, server_id)
    assert actions(lab_rig, server_id) == [("create", "demo"), ("stop", "admin"), ("start", "admin")]
    bmc.check()
