"""Building what a human is told: what failed, what Lazarus did, instances moved or not and why."""

from __future__ import annotations

import json

import pytest

from receiver.domain.events import EventKind
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
    evacuation_failed_record,
    fence_failed_record,
    fenced,
    finished_record,
    new_record,
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
    from dataclasses import replace

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
