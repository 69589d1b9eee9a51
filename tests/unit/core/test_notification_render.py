"""`lazarus notifications show` and the record's JSON view: the plan against the outcome, the
moves' attempts, and the diagnosis."""

from __future__ import annotations

from dataclasses import replace

import pytest

from receiver.adapters.redis_store import StoredNotification
from receiver.cli_render import InstanceRow, plan_rows, render_notification
from receiver.domain.diagnosis import diagnose, outcomes_from_vmoves
from receiver.domain.placement import Plan, plan_placement
from receiver.domain.record import MoveStatus, Notification, Status, VMove
from receiver.inventory import RecoveryMethod
from receiver.web import views
from tests.unit.notify.records import at, fenced, iso, new_record
from tests.unit.placement.builders import flavor, host, select, server, spare

pytestmark = pytest.mark.unit

REQ = "req-0a1b2c3d-0000-4000-8000-00000000000a"
NO_VALID_HOST = f"evacuate refused: No valid host was found.; request {REQ}"
INSTANCES = [
    server("a", priority="2", fl=flavor(4, 8192)),
    server("b", fl=flavor(4, 8192)),
    server("gpu", fl=flavor(pci_passthrough__alias="gpu:1")),
    server("c", fl=flavor(4, 8192)),
    server("x", ha=False),
]
TARGETS = [spare("spare-01", 4, 8192), host("h1", 4, 8192)]
MOVED = VMove(
    "a", "vm-a", "dead-1", "ACTIVE", MoveStatus.SUCCEEDED, "spare-01", iso(at(6)), iso(at(18.5)),
    "ACTIVE on spare-01", target_host="spare-01", route="reserved_host", attempts=1,
)  # fmt: skip
REFUSED = VMove(
    "b", "vm-b", "dead-1", "SHUTOFF", MoveStatus.FAILED, None, iso(at(6)), iso(at(30)), NO_VALID_HOST,
    route="auto", attempts=2, tried_hosts=("h1", "h2"), reason="evacuation_failed",
)  # fmt: skip


def the_plan() -> Plan:
    selection = select(INSTANCES, TARGETS)
    return plan_placement(selection, TARGETS, RecoveryMethod.RH_PRIORITY, ("spare-01",))


def partial_recovery() -> Notification:
    """rh_priority: vm-a to the spare (moved), vm-b to the scheduler (Nova refused twice), vm-c
    without room, vm-gpu not evacuable, vm-x not HA-enabled."""
    plan = the_plan()
    record = fenced(new_record("dead-1")).with_plan(plan.to_dict(), at(5))
    for move in (MOVED, REFUSED):
        record = record.with_vmove(move, at(30))
    diagnosis = diagnose(host="dead-1", plan=plan, outcomes=outcomes_from_vmoves(record.vmoves))
    record = record.with_diagnosis(diagnosis.to_dict(), at(31))
    return record.transition(Status.FAILED, at(31), reason="evacuation_failed", message="1 of 4 moved")


def test_each_instance_once_planned_against_its_outcome() -> None:
    record = partial_recovery()
    assert plan_rows(record, the_plan()) == [
        InstanceRow(
            "vm-a", "a", "spare-01 (reserved_host)", "succeeded on spare-01, 1 attempt, 12.5s", MOVED.message
        ),
        InstanceRow(
            "vm-b",
            "b",
            "scheduler (auto)",
            "failed (evacuation_failed), 2 attempts, tried h1, h2, 24.0s",
            NO_VALID_HOST,
        ),
        InstanceRow(
            "vm-c",
            "c",
            "cannot: insufficient_capacity",
            "not attempted",
            "vm-c (c) needs 4 vCPU, 8192 MB RAM; neither a host nor a reserved spare has room "
            "(the most left on one: 0 vCPU, 0 MB RAM)",
        ),
        InstanceRow(
            "vm-gpu",
            "gpu",
            "cannot: pci_passthrough",
            "not attempted",
            "vm-gpu (gpu): PCI passthrough (pci_passthrough:alias=gpu:1) stays with the host",
        ),
        InstanceRow(
            "vm-x",
            "x",
            "left out: not_ha_enabled",
            "not attempted",
            "vm-x (x) lacks metadata HA_Enabled=True and the segment does not evacuate all",
        ),
    ]


def test_moves_the_plan_recorded_as_left_out_are_not_attempted_not_failures() -> None:
    """The workflow records every instance's move with the plan: those left out as ignored."""
    plan = the_plan()
    record = fenced(new_record("dead-1")).with_plan(plan.to_dict(), at(5))
    for u in (*plan.cannot_place, *plan.not_selected):
        message = f"not attempted: {u.message}"
        left = VMove(u.instance.id, u.instance.name, "dead-1", "ACTIVE", MoveStatus.IGNORED, message=message)
        record = record.with_vmove(replace(left, reason=u.reason.value), at(5))
    rows = {r.uuid: r for r in plan_rows(record, plan)}
    assert (rows["gpu"].planned, rows["gpu"].outcome) == ("cannot: pci_passthrough", "not attempted")
    assert rows["gpu"].detail.startswith("not attempted: vm-gpu (gpu): PCI passthrough")
    assert (rows["x"].planned, rows["x"].outcome) == ("left out: not_ha_enabled", "not attempted")
    assert (rows["a"].planned, rows["a"].outcome) == ("spare-01 (reserved_host)", "not attempted")
    assert list(rows) == ["a", "b", "c", "gpu", "x"]


def test_a_move_elsewhere_than_planned_and_a_lock_left_behind_are_said() -> None:
    plan = the_plan()
    elsewhere = replace(MOVED, dest_host="h1", locked_by_us=True, end_time=None)
    record = fenced(new_record("dead-1")).with_plan(plan.to_dict(), at(5)).with_vmove(elsewhere, at(9))
    [row] = [r for r in plan_rows(record, plan) if r.uuid == "a"]
    assert row.outcome == "succeeded on h1 (planned spare-01), 1 attempt, still locked by Lazarus"


def test_show_renders_plan_spares_shortfall_diagnosis() -> None:
    text = render_notification(StoredNotification(partial_recovery(), (), 0))
    lines = text.splitlines()
    assert (
        "  plan      rh_priority: 2 of 4 placed; 1 to the scheduler; 1 to spare spare-01; "
        "1 without room (short 4 vCPU, 8192 MB RAM); 1 cannot be evacuated"
    ) in lines
    assert "    spares used  spare-01" in lines
    assert "    shortfall    short 4 vCPU, 8192 MB RAM" in lines
    assert "  instances (planned -> outcome)" in lines
    assert (
        "    vm-a   a  spare-01 (reserved_host)      -> succeeded on spare-01, 1 attempt, 12.5s  "
        "ACTIVE on spare-01"
    ) in lines
    assert any(
        line.startswith("    vm-c   c  cannot: insufficient_capacity -> not attempted") for line in lines
    )
    assert any(
        line.startswith("    vm-x   x  left out: not_ha_enabled      -> not attempted") for line in lines
    )
    # The summary's head once; each finding on its own line.
    assert "  diagnosis dead-1: 1 of 4 instances moved" in lines
    capacity = next(line for line in lines if line.startswith("    capacity     "))
    assert "1 instance did not fit (vm-c)" in capacity and f"no valid host for vm-b ({REQ})" in capacity
    assert "    cannot_move  1 instance cannot move: PCI passthrough: vm-gpu" in lines


def test_a_record_without_plan_still_shows_moves_with_attempts() -> None:
    record = fenced(new_record("dead-1")).with_vmove(REFUSED, at(30))
    lines = render_notification(StoredNotification(record, (), 0)).splitlines()
    assert "  instances" in lines
    assert (
        f"    vm-b b  failed (evacuation_failed), 2 attempts, tried h1, h2, 24.0s  {NO_VALID_HOST}" in lines
    )
    assert not any(line.startswith(("  plan", "  diagnosis")) for line in lines)


def test_an_unreadable_plan_is_said_not_fatal() -> None:
    record = replace(fenced(new_record("dead-1")), plan={"method": "auto"}).with_vmove(MOVED, at(9))
    text = render_notification(StoredNotification(record, (), 0))
    assert "  plan      unreadable (KeyError: 'order')" in text
    assert "vm-a a  succeeded on spare-01" in text


def test_diagnosis_lists_request_ids_its_message_does_not_carry() -> None:
    record = replace(
        fenced(new_record("dead-1")),
        diagnosis={
            "summary": "dead-1: 0 of 1 instance moved; Nova error for 1 instance: vm-a: failed",
            "findings": [
                {
                    "cause": "nova_error",
                    "message": "Nova error for 1 instance: vm-a: failed",
                    "instances": ["a"],
                    "request_ids": [REQ],
                }
            ],
        },
    )
    lines = render_notification(StoredNotification(record, (), 0)).splitlines()
    assert "  diagnosis dead-1: 0 of 1 instance moved" in lines
    assert f"    nova_error   Nova error for 1 instance: vm-a: failed ({REQ})" in lines


def test_json_view_carries_plan_diagnosis_and_the_moves_attempts() -> None:
    record = partial_recovery()
    detail = views.notification_detail(StoredNotification(record, (), 0))
    assert detail["plan"] == record.plan and detail["plan"]["spares_used"] == ["spare-01"]
    assert detail["diagnosis"] == record.diagnosis
    assert detail["diagnosis"]["summary"].startswith("dead-1: 1 of 4 instances moved; not enough capacity")
    refused = detail["vmoves"][1]
    masakari = {
        "uuid", "notification_uuid", "instance_uuid", "instance_name", "source_host", "dest_host",
        "start_time", "end_time", "type", "status", "message",
    }  # fmt: skip
    assert masakari <= set(refused)
    assert (refused["attempts"], refused["tried_hosts"], refused["route"], refused["reason"]) == (
        2,
        ["h1", "h2"],
        "auto",
        "evacuation_failed",
    )
    assert (detail["vmoves"][0]["target_host"], detail["vmoves"][0]["locked_by_us"]) == ("spare-01", False)
    # The list view (Masakari's envelope) stays as it was.
    assert "plan" not in views.notification_summary(record)
