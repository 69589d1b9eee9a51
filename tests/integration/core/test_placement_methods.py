"""Where a dead host's instances go, on the lab (real HTTP and IPMI): each recovery method,
reserved spares (taken into service, running out), instances that cannot move, locks and
retries on another target, and the capacity hold.

The lab's demo layout: node-01 carries 4 m1.small (1 vCPU, 2048 MB, 20 GB) instances:
vm-01, vm-02 and vm-04 HA-enabled (vm-04 SHUTOFF), vm-03 without HA_Enabled; the other
hosts carry 2 each; a reserved spare is empty and its nova-compute disabled.
"""

from __future__ import annotations

from typing import Any

import pytest

from receiver.bootstrap import utc_now
from receiver.domain.record import MoveStatus, Notification, Status, VMove
from receiver.operator import Operator
from tests.integration.core.lab_fixtures import LabRig, lab_rig, lab_settings

pytestmark = pytest.mark.integration
__all__ = ["lab_rig", "lab_settings"]

HOSTS = ("node-01", "node-02", "node-03", "spare-01")
TWO_SPARES = (*HOSTS, "spare-02")
# Room for exactly N more m1.small instances (2048 MB each, beside the lab's 512 MB host reserve).
ONE_MORE, TWO_MORE = 512 + 2048, 512 + 2 * 2048
FULL_NODES = (f"node-02:memory_mb={512 + 2 * 2048}", f"node-03:memory_mb={512 + 2 * 2048}")


def options(
    method: str, hosts: tuple[str, ...] = HOSTS, capacity: tuple[str, ...] = (), **more: Any
) -> dict[str, Any]:
    spares = tuple(h for h in hosts if h.startswith("spare"))
    return {"hosts": hosts, "spares": spares, "recovery_method": method, "host_capacity": capacity, **more}


def lab(method: str, **more: Any) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("lab_options", [options(method, **more)], indirect=True)


def recover(rig: LabRig, host: str = "node-01") -> Notification:
    rig.control.kill(host)
    return rig.run(rig.alert(host))


def moved(record: Notification) -> dict[str, VMove]:
    return {m.instance_name: m for m in record.vmoves if m.status is MoveStatus.SUCCEEDED}


def server(rig: LabRig, uuid: str) -> dict[str, Any]:
    found: dict[str, Any] = rig.nova(f"/servers/{uuid}")["server"]
    return found


def assert_unlocked(rig: LabRig, record: Notification) -> None:
    for move in record.vmoves:
        body = server(rig, move.instance_uuid)
        assert (body["locked"], body["locked_reason"]) == (False, None), move.instance_name
        assert not move.locked_by_us


@lab("reserved_host")
def test_reserved_host_takes_the_spare_into_service_and_moves_everything_there(lab_rig: LabRig) -> None:
    record = recover(lab_rig)
    assert (record.status, record.reason) == (Status.FINISHED, "completed"), record.message
    assert record.plan is not None and record.plan["spares_used"] == ["spare-01"]
    assert {a["target"] for a in record.plan["assignments"]} == {"spare-01"}
    got = moved(record)
    assert sorted(got) == ["node-01-vm-01", "node-01-vm-02", "node-01-vm-04"]
    for move in got.values():
        assert (move.target_host, move.dest_host, move.route) == ("spare-01", "spare-01", "reserved_host")
        assert server(lab_rig, move.instance_uuid)["status"] == move.prior_status  # SHUTOFF stays SHUTOFF
    assert got["node-01-vm-04"].prior_status == "SHUTOFF"
    spare = lab_rig.service("spare-01")
    assert spare["status"] == "enabled"  # Masakari: enabled, and no longer reserved
    view = lab_rig.services.inventory.host("spare-01")
    assert view is not None and not view.spec.reserved
    assert any(s.name == "spare" and "spare-01 enabled" in s.message for s in record.steps)
    assert_unlocked(lab_rig, record)


@pytest.mark.parametrize(
    ("lab_options", "target"),
    [(options("auto"), None), (options("reserved_host"), "spare-01")],
    indirect=["lab_options"],
)
def test_without_hypervisor_figures_the_recovery_goes_on_unchecked(
    lab_rig: LabRig, target: str | None
) -> None:
    """Nova's policy refuses our account the hypervisor listing: the plan cannot check room,
    but the host is dead all the same; the method's route is followed and Nova decides."""
    lab_rig.control.forbid("/os-hypervisors")
    record = recover(lab_rig)
    assert (record.status, record.reason) == (Status.FINISHED, "completed"), story(record)
    assert record.plan is not None and record.plan["room_checked"] is False
    assert "Policy doesn't allow os_compute_api:os-hypervisors" in record.plan["notes"][0]
    [warning] = [s for s in record.steps if s.name == "plan" and s.state == "warning"]
    assert "Nova gave no hypervisor figures" in warning.message and "req-" in warning.message
    got = moved(record)
    assert sorted(got) == ["node-01-vm-01", "node-01-vm-02", "node-01-vm-04"]
    assert {m.target_host for m in got.values()} == {target}
    if target is not None:
        assert {m.dest_host for m in got.values()} == {target}


@pytest.mark.parametrize(
    "lab_settings",
    [{"evacuation": {"evacuate_all": True, "exclude_projects": ["octavia-svc"]}}],
    indirect=True,
)
def test_an_excluded_projects_instance_stays_recorded_as_left_by_policy(lab_rig: LabRig) -> None:
    """Octavia's amphorae: evacuating one rebuilds it without what Octavia injected at boot;
    Octavia's health manager replaces it instead. Even under evacuate_all it stays."""
    amphora = lab_rig.control.add_server(
        "amphora-1", "node-01", boot_from_volume=True, project_id="octavia-svc"
    )
    record = recover(lab_rig)
    assert (record.status, record.reason) == (Status.FINISHED, "completed"), story(record)
    [left] = [m for m in record.vmoves if m.instance_uuid == amphora]
    assert (left.status, left.reason) == (MoveStatus.IGNORED, "excluded_project")
    assert "belongs to project octavia-svc" in left.message
    assert amphora not in {e["instance_uuid"] for e in lab_rig.evacuations()}
    assert sorted(moved(record)) == ["node-01-vm-01", "node-01-vm-02", "node-01-vm-03", "node-01-vm-04"]
    assert record.message.endswith("1 left by policy (excluded project)")


@lab("reserved_host", capacity=(f"spare-01:memory_mb={TWO_MORE}",))
def test_a_spare_that_runs_out_leaves_a_partial_plan_and_a_diagnosis(lab_rig: LabRig) -> None:
    record = recover(lab_rig)
    assert (record.status, record.reason) == (Status.FAILED, "insufficient_capacity"), record.message
    assert record.plan is not None
    [short] = record.plan["cannot_place"]
    assert short["reason"] == "insufficient_capacity" and "no reserved spare has room" in short["message"]
    assert record.plan["shortfall"]["ram_mb"] == 2048
    assert len(moved(record)) == 2  # what fits went, the rest is recorded, never attempted
    [left] = [m for m in record.vmoves if m.instance_uuid == short["id"]]
    assert (left.status, left.reason, left.attempts) == (MoveStatus.IGNORED, "insufficient_capacity", 0)
    assert left.instance_uuid not in {e["instance_uuid"] for e in lab_rig.evacuations()}
    assert record.diagnosis is not None
    assert [f["cause"] for f in record.diagnosis["findings"]] == ["capacity"]
    assert "short 2048 MB RAM" in record.diagnosis["summary"]


@lab("reserved_host")
@pytest.mark.parametrize("lab_settings", [{"storm": {"max_down_share": 1.0}}], indirect=True)
def test_a_second_dead_host_finds_no_free_spare(lab_rig: LabRig) -> None:
    first = recover(lab_rig, "node-01")  # (two of four hosts down: the storm guard is widened)
    assert first.status is Status.FINISHED, first.message
    second = recover(lab_rig, "node-02")
    assert (second.status, second.reason) == (Status.FAILED, "no_free_spare"), second.message
    assert second.plan is not None and second.plan["spares_used"] == []
    assert all(m.reason == "no_free_spare" for m in second.vmoves if m.status is MoveStatus.IGNORED)
    assert second.diagnosis is not None and "no free reserved spare" in second.diagnosis["summary"]


@lab("auto_priority", capacity=(f"node-02:memory_mb={TWO_MORE + 2 * 2048 - 2048}", FULL_NODES[1]))
def test_auto_priority_sends_what_the_scheduler_cannot_place_to_the_spare(lab_rig: LabRig) -> None:
    record = recover(lab_rig)
    assert record.status is Status.FINISHED, record.message
    assert record.plan is not None
    routes = sorted((a["route"], a["target"]) for a in record.plan["assignments"])
    assert routes == [("auto", None), ("reserved_host", "spare-01"), ("reserved_host", "spare-01")]
    # The spare, enabled, joins the scheduler's hosts: Nova may well choose it (the plan is a forecast).
    dests = [m.dest_host for m in moved(record).values()]
    assert len(dests) == 3 and set(dests) <= {"node-02", "spare-01"} and dests.count("spare-01") >= 2


@lab("rh_priority", capacity=(f"spare-01:memory_mb={ONE_MORE}",))
def test_rh_priority_fills_the_spare_then_leaves_the_rest_to_the_scheduler(lab_rig: LabRig) -> None:
    record = recover(lab_rig)
    assert record.status is Status.FINISHED, record.message
    got = moved(record)
    assert sorted(m.dest_host == "spare-01" for m in got.values()) == [False, False, True]
    # Priority order: the first instance in the plan's order took the spare.
    assert record.plan is not None and record.plan["assignments"][0]["target"] == "spare-01"


@lab("auto", capacity=FULL_NODES)
def test_auto_with_no_room_proceeds_and_nova_has_the_last_word(lab_rig: LabRig) -> None:
    record = recover(lab_rig)
    assert record.plan is not None and len(record.plan["cannot_place"]) == 3
    assert record.status is Status.FAILED
    # Nova refused asynchronously (conductor: no valid host): its fault and the evacuate
    # request's id are on each move, and the diagnosis counts them once, as capacity.
    failed = [m for m in record.vmoves if m.status is MoveStatus.FAILED]
    assert len(failed) == 3
    for move in failed:
        assert move.request_id is not None and move.request_id.startswith("req-")
        assert "No valid host was found" in move.message and move.request_id in move.message
    assert record.diagnosis is not None
    [capacity] = record.diagnosis["findings"]
    assert capacity["cause"] == "capacity" and "Nova found no valid host" in capacity["message"]
    assert sorted(capacity["request_ids"]) == sorted(m.request_id for m in failed)


@lab("auto", capacity=FULL_NODES)
@pytest.mark.parametrize(
    "lab_settings", [{"evacuation": {"capacity_policy": "hold_for_approval"}}], indirect=True
)
def test_a_short_plan_holds_for_approval_before_anything_is_fenced(lab_rig: LabRig) -> None:
    lab_rig.control.kill("node-01")
    uuid = lab_rig.alert("node-01")
    waiting = lab_rig.run(uuid)
    assert (waiting.status, waiting.reason) == (Status.RUNNING, "awaiting_approval")
    assert "capacity plan falls short" in waiting.message
    assert [c for c in lab_rig.power.calls if c[0] != "power_state"] == []
    assert lab_rig.evacuations() == []
    assert waiting.plan is not None and len(waiting.plan["cannot_place"]) == 3
    operator = Operator(lab_rig.services.store, lab_rig.services.queue, 30)
    operator.approve(uuid, "carol", utc_now())
    done = lab_rig.run(uuid)
    assert done.fencing and done.fencing[-1].outcome == "off_confirmed"
    assert done.marks["approved_by"] == "carol"


@lab("auto", capacity=FULL_NODES)
def test_the_segments_own_fields_override_the_settings(lab_rig: LabRig) -> None:
    """Settings say proceed and only HA-enabled instances; the segment says hold and all."""
    change = {"capacity_policy": "hold_for_approval", "evacuate_all": True}
    lab_rig.services.inventory.update_segment("lab", change, utc_now())
    lab_rig.control.kill("node-01")
    waiting = lab_rig.run(lab_rig.alert("node-01"))
    assert (waiting.status, waiting.reason) == (Status.RUNNING, "awaiting_approval"), story(waiting)
    assert waiting.plan is not None and waiting.plan["not_selected"] == []
    assert "node-01-vm-03" in {u["name"] for u in waiting.plan["cannot_place"]}  # not HA-enabled, yet planned
    assert lab_rig.evacuations() == []


@lab("auto")
@pytest.mark.parametrize("lab_settings", [{"evacuation": {"evacuate_all": True}}], indirect=True)
def test_a_segment_that_does_not_evacuate_all_overrides_settings_that_do(lab_rig: LabRig) -> None:
    lab_rig.services.inventory.update_segment("lab", {"evacuate_all": False}, utc_now())
    record = recover(lab_rig)
    assert record.status is Status.FINISHED, story(record)
    [left] = [m for m in record.vmoves if m.instance_name == "node-01-vm-03"]
    assert (left.status, left.reason) == (MoveStatus.IGNORED, "not_ha_enabled")


@lab("auto", shared_storage=False)
def test_instances_that_cannot_be_evacuated_are_recorded_up_front_and_never_attempted(
    lab_rig: LabRig,
) -> None:
    ha = {"HA_Enabled": "True"}
    gpu = lab_rig.control.add_server("gpu-vm", "node-01", flavor="lab.gpu", metadata=ha)
    on_volume = lab_rig.control.add_server("vol-vm", "node-01", boot_from_volume=True, metadata=ha)
    record = recover(lab_rig)
    by_name = {m.instance_name: m for m in record.vmoves}
    assert (by_name["gpu-vm"].status, by_name["gpu-vm"].reason) == (MoveStatus.IGNORED, "pci_passthrough")
    # Image-backed without shared storage: rebuilding would lose the disk.
    assert by_name["node-01-vm-01"].reason == "local_disk"
    assert by_name["vol-vm"].status is MoveStatus.SUCCEEDED
    evacuated = {e["instance_uuid"] for e in lab_rig.evacuations()}
    assert evacuated == {on_volume}
    assert gpu not in evacuated
    assert record.status is Status.FAILED
    assert record.diagnosis is not None
    [cannot] = [f for f in record.diagnosis["findings"] if f["cause"] == "cannot_move"]
    assert "PCI passthrough: gpu-vm" in cannot["message"] and "local disk" in cannot["message"]


def story(record: Notification) -> str:
    """The record's message and steps, for an assertion that failed."""
    return "\n".join([record.message, *(f"{s.name} {s.state}: {s.message}" for s in record.steps)])


# One move at a time, the second spare is no longer reserved when the second move's retry comes
# (the first took it into service): it must still be offered, being this recovery's own.
@pytest.mark.parametrize("lab_settings", [{}, {"evacuation": {"concurrency": 1}}], indirect=True)
@lab("rh_priority", hosts=TWO_SPARES)
def test_a_failed_move_is_retried_on_the_next_spare_shutoff_preserved_lock_released(lab_rig: LabRig) -> None:
    lab_rig.control.fail_evacuation(target="spare-01")
    record = recover(lab_rig)
    assert record.status is Status.FINISHED, story(record)
    for move in moved(record).values():
        assert (move.attempts, move.tried_hosts, move.dest_host) == (2, ("spare-01",), "spare-02")
        # Nova brings an instance evacuated from ERROR up ACTIVE: the one that was SHUTOFF is stopped again.
        assert server(lab_rig, move.instance_uuid)["status"] == move.prior_status
    assert moved(record)["node-01-vm-04"].prior_status == "SHUTOFF"
    assert any(s.state == "retrying" and "spare spare-02" in s.message for s in record.steps)
    assert_unlocked(lab_rig, record)


def test_the_lock_is_released_after_a_move_that_failed_for_good(lab_rig: LabRig) -> None:
    victim = next(s["id"] for s in lab_rig.servers_on("node-01") if s["metadata"].get("HA_Enabled"))
    lab_rig.control.fail_evacuation(victim)
    record = recover(lab_rig)
    [failed] = [m for m in record.vmoves if m.status is MoveStatus.FAILED]
    assert failed.instance_uuid == victim and failed.attempts == 2
    assert_unlocked(lab_rig, record)
    locks = [s.message for s in record.steps if s.name == "lock"]
    assert sum("unlocked" in m for m in locks) == 3


def test_a_lock_someone_else_set_is_left_alone(lab_rig: LabRig) -> None:
    victim = next(s["id"] for s in lab_rig.servers_on("node-01") if s["metadata"].get("HA_Enabled"))
    lab_rig.services.compute().lock(victim, "tenant maintenance")
    record = recover(lab_rig)
    assert record.status is Status.FINISHED, record.message
    body = server(lab_rig, victim)
    assert (body["locked"], body["locked_reason"]) == (True, "tenant maintenance")
    assert any(s.name == "lock" and "already locked (tenant maintenance)" in s.message for s in record.steps)


@lab("reserved_host")
def test_a_disabled_segment_records_the_notification_as_ignored(lab_rig: LabRig) -> None:
    lab_rig.services.inventory.update_segment("lab", {"enabled": False}, utc_now())
    record = recover(lab_rig)
    assert (record.status, record.reason) == (Status.IGNORED, "segment_disabled")
    assert lab_rig.evacuations() == [] and lab_rig.service("spare-01")["status"] == "disabled"


@pytest.mark.parametrize(
    "lab_settings", [{"approval": {"required": True, "on_fence_failure": True}}], indirect=True
)
def test_an_approval_never_stands_in_for_a_fence_that_failed(lab_rig: LabRig) -> None:
    """Safety rule 1: the operator approved the recovery; when the BMC then cannot prove the
    host off, their earlier yes is no confirmation that it is off: they are asked again."""
    lab_rig.control.hang("node-01")
    lab_rig.control.bmc_fault("node-01", "stuck_on")
    uuid = lab_rig.alert("node-01")
    lab_rig.run(uuid)
    operator = Operator(lab_rig.services.store, lab_rig.services.queue, 30)
    operator.approve(uuid, "dave", utc_now())
    again = lab_rig.run(uuid)
    assert (again.status, again.reason) == (Status.RUNNING, "awaiting_approval"), again.message
    assert "fencing failed" in again.message and "operator must confirm it is powered off" in again.message
    assert "approved_by" not in again.marks
    assert lab_rig.evacuations() == []
    assert lab_rig.service("node-01")["forced_down"] is False


@lab("reserved_host")
@pytest.mark.parametrize(
    "lab_settings", [{"evacuation": {"add_reserved_host_to_aggregate": True}}], indirect=True
)
def test_a_spare_joins_the_failed_hosts_aggregates_first(lab_rig: LabRig) -> None:
    import openstack

    conn = openstack.connect(**lab_rig.lab.openstack_auth())
    rack = conn.compute.create_aggregate(name="rack-a")
    conn.compute.add_host_to_aggregate(rack, "node-01")
    other = conn.compute.create_aggregate(name="elsewhere")
    record = recover(lab_rig)
    assert record.status is Status.FINISHED, record.message
    assert "spare-01" in conn.compute.get_aggregate(rack).hosts
    assert "spare-01" not in (conn.compute.get_aggregate(other).hosts or [])
    assert any(s.name == "spare" and "aggregate rack-a" in s.message for s in record.steps)


@lab("reserved_host", capacity=(f"spare-01:memory_mb={ONE_MORE}",))
def test_the_highest_priority_instance_gets_the_room_there_is(lab_rig: LabRig) -> None:
    vip = lab_rig.control.add_server(
        "vip", "node-01", metadata={"HA_Enabled": "True", "lazarus:priority": "10"}
    )
    record = recover(lab_rig)
    assert moved(record)["vip"].dest_host == "spare-01"
    assert record.plan is not None and record.plan["order"][0] == vip
    assert {m.reason for m in record.vmoves if m.status is MoveStatus.IGNORED} == {
        "insufficient_capacity",
        "not_ha_enabled",
    }


@lab("auto", capacity=FULL_NODES)
@pytest.mark.parametrize(
    "lab_settings", [{"evacuation": {"capacity_policy": "proceed_with_what_fits"}}], indirect=True
)
def test_proceed_with_what_fits_attempts_nothing_without_room(lab_rig: LabRig) -> None:
    record = recover(lab_rig)
    assert (record.status, record.reason) == (Status.FAILED, "insufficient_capacity"), record.message
    assert lab_rig.evacuations() == []
    assert record.fencing and record.fencing[-1].outcome == "off_confirmed"  # the host is fenced all the same
    assert record.diagnosis is not None and "did not fit" in record.diagnosis["summary"]
