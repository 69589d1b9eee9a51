"""A whole host recovery, in-process, against the lab over real HTTP (Nova) and UDP (IPMI)."""

from __future__ import annotations

import logging
from collections import Counter

import pytest

from receiver.domain.events import EventKind
from receiver.domain.record import MoveStatus, Notification, Phase, Status
from tests.integration.core.lab_fixtures import LabRig, lab_rig, lab_settings

pytestmark = pytest.mark.integration
__all__ = ["lab_rig", "lab_settings"]


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def publish(self, kind: EventKind, record: Notification) -> None:
        self.events.append((kind.value, record.status.value, record.notification_uuid))


def test_dead_host_is_fenced_and_evacuated(lab_rig: LabRig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    publisher = RecordingPublisher()
    lab_rig.services.events = publisher
    before = {s["id"]: s["status"] for s in lab_rig.servers_on("node-01")}
    assert before, "the lab puts servers on node-01"
    lab_rig.control.kill("node-01")
    uuid = lab_rig.alert("node-01")
    record = lab_rig.run(uuid)

    assert record.status is Status.FINISHED, record.message
    assert record.reason == "completed"
    assert record.phase is Phase.DONE
    [attempt] = record.fencing
    assert (attempt.power_after, attempt.outcome) == ("off", "off_confirmed")
    # Masakari's rule: only instances with HA_Enabled=True move; the others stay, with the reason.
    [left] = [m for m in record.vmoves if m.status is MoveStatus.IGNORED]
    assert left.reason == "not_ha_enabled"
    assert [s["id"] for s in lab_rig.servers_on("node-01")] == [left.instance_uuid]
    assert "1 left by policy" in record.message
    for move in record.vmoves:
        if move is left:
            continue
        assert move.status is MoveStatus.SUCCEEDED, move.message
        assert move.dest_host not in (None, "node-01")
        assert (move.attempts, move.locked_by_us) == (1, False)  # locked for the move, unlocked after
        server = lab_rig.nova(f"/servers/{move.instance_uuid}")["server"]
        assert server["OS-EXT-SRV-ATTR:host"] == move.dest_host
        assert server["status"] == before[move.instance_uuid]  # SHUTOFF stays SHUTOFF
        assert (server["locked"], server["locked_reason"]) == (False, None)
    assert {m.instance_uuid for m in record.vmoves} == set(before)
    assert record.plan is not None and record.plan["method"] == "auto"
    assert record.diagnosis == {"summary": "node-01: all 3 instances moved", "findings": []}
    lock_steps = [s.message for s in record.steps if s.name == "lock"]
    assert len(lock_steps) == 3 and all("unlocked" in m for m in lock_steps)
    service = lab_rig.nova("/os-services?binary=nova-compute&host=node-01")["services"][0]
    assert service["forced_down"] is True
    assert service["status"] == "disabled"
    assert uuid in service["disabled_reason"]
    host = lab_rig.services.inventory.host("node-01")
    assert host is not None and host.on_maintenance
    # the order of the steps is the safety order: fence, then force down, then disable, then evacuate
    names = [s.name for s in record.steps if s.state == "succeeded"]
    # (and the capacity plan is made before anything is fenced)
    assert names.index("plan") < names.index("fence") < names.index("nova") < names.index("evacuate")
    password = lab_rig.lab.bmc_password()
    assert password not in caplog.text
    assert password not in str(record.to_dict())
    assert publisher.events == [
        ("recovery_started", "running", uuid),
        ("recovery_finished", "finished", uuid),
    ]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("stuck_on", "power_still_on"), ("refuse", "bmc_refused"), ("mute", "bmc_unreachable")],
)
def test_unproven_fence_stops_before_nova(
    lab_rig: LabRig, fault: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    lab_rig.control.hang("node-01")  # Nova sees it down; its BMC still answers ON
    lab_rig.control.bmc_fault("node-01", fault)
    publisher = RecordingPublisher()
    lab_rig.services.events = publisher
    uuid = lab_rig.alert("node-01")
    record = lab_rig.run(uuid)
    assert publisher.events[-1] == ("recovery_failed", "failed", uuid)
    assert record.status is Status.FAILED
    assert record.reason == reason
    assert record.fencing and all(a.outcome == reason for a in record.fencing)
    assert not record.reached(Phase.NOVA_FORCED_DOWN)
    assert lab_rig.evacuations() == []  # zero evacuate calls
    service = lab_rig.nova("/os-services?binary=nova-compute&host=node-01")["services"][0]
    assert (service["forced_down"], service["status"]) == (False, "enabled")
    assert lab_rig.lab.bmc_password() not in caplog.text


def test_host_not_in_inventory_is_ignored(lab_rig: LabRig) -> None:
    uuid = lab_rig.alert("node-99")
    record = lab_rig.run(uuid)
    assert (record.status, record.reason) == (Status.IGNORED, "host_not_in_inventory")
    assert record.fencing == ()


def test_second_recovery_of_a_reinstated_host_in_the_same_process(lab_rig: LabRig) -> None:
    """pyghmi hangs on a second session to the same BMC with str credentials; we pass bytes."""
    lab_rig.control.kill("node-02")
    first = lab_rig.run(lab_rig.alert("node-02"))
    assert first.status is Status.FINISHED, first.message
    # an operator reinstates node-02 (the explicit step of a later issue; here by hand)
    lab_rig.control.power("node-02", on=True)
    lab_rig.services.inventory.apply(lab_rig.services.inventory.load(), lab_rig.services.clock.now())
    lab_rig.services.redis.delete(f"{lab_rig.services.settings.key_prefix}:hoststate:node-02")
    lab_rig.control.kill("node-02")
    second = lab_rig.run(lab_rig.alert("node-02", starts_at="2026-11-25T13:00:00Z"))
    assert second.notification_uuid != first.notification_uuid
    assert second.fencing[-1].outcome == "off_confirmed"


def test_no_instance_is_evacuated_twice_when_the_job_runs_again(lab_rig: LabRig) -> None:
    lab_rig.control.kill("node-01")
    uuid = lab_rig.alert("node-01")
    lab_rig.run(uuid)
    lab_rig.run(uuid)  # a duplicate job: the record is terminal, nothing happens
    per_instance = Counter(m["instance_uuid"] for m in lab_rig.evacuations())
    assert per_instance and set(per_instance.values()) == {1}


def test_failed_evacuation_is_reported_per_instance(lab_rig: LabRig) -> None:
    victim = lab_rig.servers_on("node-01")[0]["id"]
    lab_rig.control.fail_evacuation(victim)
    lab_rig.control.kill("node-01")
    record = lab_rig.run(lab_rig.alert("node-01"))
    assert (record.status, record.reason) == (Status.FAILED, "evacuation_failed")
    failed = [m for m in record.vmoves if m.status is MoveStatus.FAILED]
    assert [m.instance_uuid for m in failed] == [victim]
    assert "ERROR" in failed[0].message
    # Left on the dead host in ERROR, it was sent once more (the scheduler again, for `auto`).
    assert (failed[0].attempts, failed[0].tried_hosts) == (2, ("scheduler",))
    others = [m for m in record.vmoves if m.instance_uuid != victim]
    assert all(m.status is MoveStatus.SUCCEEDED or m.reason == "not_ha_enabled" for m in others)
    assert record.diagnosis is not None and "nova_error" in [f["cause"] for f in record.diagnosis["findings"]]


def test_storm_guard_fences_nothing_when_two_of_three_hosts_are_down(lab_rig: LabRig) -> None:
    lab_rig.control.kill("node-01")
    lab_rig.control.kill("node-02")
    first = lab_rig.alert("node-01")
    second = lab_rig.alert("node-02")  # both open at once: 2 of 3 hosts
    publisher = RecordingPublisher()
    lab_rig.services.events = publisher
    record = lab_rig.run(second)
    assert (record.status, record.reason) == (Status.IGNORED, "storm_guard")
    assert record.fencing == ()
    assert "2 of 3 hosts in the segment lab are down" in record.message
    assert publisher.events[-1] == ("refused_by_gate", "ignored", second)
    # the trip holds for a cooldown: the other one is refused too, nothing is fenced at all
    held = lab_rig.run(first)
    assert (held.status, held.reason) == (Status.IGNORED, "storm_guard")
    assert "holding until" in held.message
    assert lab_rig.evacuations() == []
    assert not [c for c in lab_rig.power.calls if c[0] == "power_off"]


@pytest.mark.parametrize("lab_settings", [{"storm": {"max_fences": 1, "max_down_share": 1.0}}], indirect=True)
def test_storm_guard_counts_fences_in_a_window(lab_rig: LabRig) -> None:
    lab_rig.control.kill("node-01")
    assert lab_rig.run(lab_rig.alert("node-01")).status is Status.FINISHED
    lab_rig.control.kill("node-02")
    record = lab_rig.run(lab_rig.alert("node-02"))
    assert (record.status, record.reason) == (Status.IGNORED, "storm_guard")
    assert "fenced in the last" in record.message
    service = lab_rig.nova("/os-services?binary=nova-compute&host=node-02")["services"][0]
    assert service["forced_down"] is False
