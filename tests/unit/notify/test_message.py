"""Building what a human is told: what failed, what Lazarus did, instances moved or not and why."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from receiver.domain.events import EventKind
from receiver.domain.record import MoveStatus, Notification, Phase, Status, VMove
from receiver.notify.message import (
    Message,
    Severity,
    build_message,
    instances_note,
    record_url,
    severity_of,
)
from tests.unit.notify.records import (
    UUID,
    at,
    diagnosed,
    evacuation_failed_record,
    fence_failed_record,
    fenced,
    finished_record,
    new_record,
    partial_finished_record,
    refused_record,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("kind", "reason", "severity"),
    [
        (EventKind.FAILED, "power_still_on", Severity.CRITICAL),
        (EventKind.FAILED, "evacuation_failed", Severity.CRITICAL),
        (EventKind.NEEDS_APPROVAL, None, Severity.CRITICAL),
        (EventKind.REFUSED, "storm_guard", Severity.CRITICAL),
        (EventKind.REFUSED, "host_not_in_inventory", Severity.ERROR),
        (EventKind.REFUSED, "host_on_maintenance", Severity.WARNING),
        (EventKind.REFUSED, "segment_disabled", Severity.WARNING),
        (EventKind.FINISHED, "completed", Severity.INFO),
        (EventKind.STARTED, None, Severity.INFO),
        (EventKind.REINSTATED, None, Severity.INFO),
    ],
)
def test_severity_follows_the_outcome(kind: EventKind, reason: str | None, severity: Severity) -> None:
    assert severity_of(kind, reason) is severity


def test_failed_evacuation_says_which_instance_stayed_and_why() -> None:
    message = build_message(
        EventKind.FAILED, evacuation_failed_record(), seq=2, segment="rack-a", record_url="https://lz/x"
    )
    assert message.title == "node-01: recovery failed (evacuation_failed)"
    assert message.severity is Severity.CRITICAL
    assert (
        message.failure
        == "compute host node-01 is down (alert LazarusHostDown, firing since 2026-11-25T12:00:00Z)"
    )
    assert message.instances_note == "1 of 2 moved, 1 failed"
    [ok, bad] = message.instances
    assert (ok.status, ok.dest_host) == ("succeeded", "node-02")
    assert (bad.status, bad.message) == ("failed", "instance went to ERROR")
    [fence] = message.fencing
    assert (fence.power_before, fence.power_after, fence.outcome) == ("on", "off", "off_confirmed")
    assert any("fence succeeded" in a for a in message.actions)
    assert message.summary.endswith("1 of 2 instances not recovered")


def test_fence_failure_says_nothing_moved_and_why() -> None:
    message = build_message(EventKind.FAILED, fence_failed_record(), seq=1, segment=None, record_url=None)
    assert message.instances == ()
    assert message.instances_note == "none moved: fencing failed, nothing evacuated: BMC kept reporting ON"
    assert message.fencing[0].outcome == "power_still_on"


def test_instances_note_while_running_and_when_the_host_was_empty() -> None:
    assert instances_note(fenced(new_record())) == "not moved yet: the host must be proven off first"
    assert instances_note(finished_record(moved=0)) == "no instances were on the host"


def test_finished_title_counts_moves() -> None:
    assert build_message(
        EventKind.FINISHED, finished_record(1), seq=3, segment=None, record_url=None
    ).title == ("node-01 recovered: 1 instance moved")
    message = build_message(EventKind.FINISHED, finished_record(4), seq=3, segment=None, record_url=None)
    assert message.title == "node-01 recovered: 4 instances moved"
    assert message.moved == 4


def test_refused_title_names_the_gate() -> None:
    message = build_message(EventKind.REFUSED, refused_record(), seq=1, segment="rack-a", record_url=None)
    assert message.title == "node-01: recovery refused by a safety gate (storm_guard)"


def test_a_message_survives_json_unchanged() -> None:
    message = build_message(
        EventKind.FAILED, evacuation_failed_record(), seq=2, segment="rack-a", record_url="https://lz/x"
    )
    assert Message.from_dict(json.loads(json.dumps(message.to_dict()))) == message


def test_many_steps_are_condensed() -> None:
    record = fenced(new_record())
    for n in range(40):
        record = record.log("evacuate", "succeeded", f"vm-{n} moved", at(20 + n))
    message = build_message(EventKind.FINISHED, record, seq=1, segment=None, record_url=None)
    assert len(message.actions) == 12
    assert message.actions[0].startswith("(")  # says how many earlier steps are left out
    assert message.actions[-1].endswith("vm-39 moved")


def test_record_url_uses_the_public_url() -> None:
    assert record_url("https://lazarus.example/", UUID) == f"https://lazarus.example/v1/notifications/{UUID}"
    assert record_url("", UUID) is None


def test_process_and_instance_recoveries_are_described_as_such() -> None:
    from receiver.domain.alerts import NotificationType

    process = replace(new_record(), type=NotificationType.PROCESS, payload={"process_name": "nova-compute"})
    message = build_message(EventKind.STARTED, process, seq=1, segment=None, record_url=None)
    assert message.title == "node-01: nova-compute is down, Lazarus is recovering"
    assert message.failure.startswith("process nova-compute on node-01 failed")
    assert message.instances_note == "none moved: this kind of recovery repairs in place"
    vm = replace(new_record(), type=NotificationType.VM, payload={"instance_uuid": "i-1"})
    assert build_message(EventKind.STARTED, vm, seq=1, segment=None, record_url=None).title == (
        "node-01: instance i-1 failed, Lazarus is recovering"
    )


EVACUATION_DIAGNOSIS = (
    "node-01: 1 of 2 instances moved; Nova error for 1 instance: vm-1: instance went to ERROR"
)


def test_a_failed_host_recovery_carries_its_diagnosis_in_one_line() -> None:
    message = build_message(
        EventKind.FAILED, diagnosed(evacuation_failed_record()), seq=2, segment=None, record_url=None
    )
    assert message.diagnosis == EVACUATION_DIAGNOSIS
    assert message.summary == f"node-01: recovery failed (evacuation_failed): {EVACUATION_DIAGNOSIS}"
    assert message.severity is Severity.CRITICAL
    multiline = replace(
        diagnosed(evacuation_failed_record()), diagnosis={"summary": "a\nb  c", "findings": []}
    )
    assert (
        build_message(EventKind.FAILED, multiline, seq=1, segment=None, record_url=None).diagnosis == "a b c"
    )


def test_a_partial_finish_carries_its_diagnosis_and_is_a_warning() -> None:
    message = build_message(
        EventKind.FINISHED, partial_finished_record(), seq=3, segment=None, record_url=None
    )
    assert message.diagnosis == (
        "node-01: 1 of 2 instances moved; not enough capacity: 1 instance did not fit (vm-big); "
        "the plan: short 8 vCPU, 16384 MB RAM"
    )
    assert message.severity is Severity.WARNING
    assert message.summary == f"node-01 partly recovered: 1 instance moved: {message.diagnosis}"


def test_a_complete_recovery_says_no_diagnosis() -> None:
    record = diagnosed(finished_record(3))  # "node-01: all 3 instances moved"
    message = build_message(EventKind.FINISHED, record, seq=3, segment=None, record_url=None)
    assert (message.diagnosis, message.severity) == ("", Severity.INFO)
    assert message.summary == "node-01 recovered: 3 instances moved: 3 instances recovered"
    started = build_message(
        EventKind.STARTED, diagnosed(fenced(new_record())), seq=1, segment=None, record_url=None
    )
    assert started.diagnosis == ""


def test_a_message_queued_before_diagnoses_still_reads() -> None:
    message = build_message(
        EventKind.FAILED, evacuation_failed_record(), seq=2, segment=None, record_url=None
    )
    old = message.to_dict()
    del old["diagnosis"]
    assert Message.from_dict(json.loads(json.dumps(old))) == message


def planned(record: Notification) -> Notification:
    """The moves the plan records before fencing: two in play, three left out with the reason."""
    moves = [
        VMove("i-1", "vm-1", "node-01", "ACTIVE", target_host="spare-01", route="reserved_host"),
        VMove("i-2", "vm-2", "node-01", "SHUTOFF"),
        VMove("i-3", "vm-3", "node-01", "ACTIVE", MoveStatus.IGNORED, reason="not_ha_enabled"),
        VMove("i-4", "vm-4", "node-01", "ACTIVE", MoveStatus.IGNORED, reason="local_disk"),
        VMove("i-5", "vm-5", "node-01", "ACTIVE", MoveStatus.IGNORED, reason="no_free_spare"),
    ]
    for move in moves:
        record = record.with_vmove(move, at(3))
    return record


def test_instances_note_with_the_moves_the_plan_recorded_before_fencing() -> None:
    left = "1 left by policy, 1 cannot move, 1 without room"
    running = planned(new_record().transition(Status.RUNNING, at(1)))
    assert instances_note(running) == f"not moved yet: the host must be proven off first, {left}"
    waiting = running.with_reason("awaiting_approval", "approve?", at(2))
    assert instances_note(waiting) == f"not moved yet: waiting for an operator's approval, {left}"
    fence_failed = running.transition(Status.FAILED, at(9), reason="bmc_refused", message="fencing failed")
    assert instances_note(fence_failed) == f"none moved: fencing failed, {left}"
    evacuating = planned(fenced(new_record())).advance(Phase.EVACUATING, at(6))
    evacuating = evacuating.with_vmove(replace(evacuating.vmoves[0], status=MoveStatus.SUCCEEDED), at(7))
    assert instances_note(evacuating) == f"1 of 2 moved, 1 not finished, {left}"
    only_left_out = replace(evacuating, vmoves=evacuating.vmoves[2:])
    assert instances_note(only_left_out) == f"none to move, {left}"
