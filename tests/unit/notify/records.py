"""Recovery records as the workflow leaves them, for building messages in tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from receiver.domain.alerts import NotificationType
from receiver.domain.diagnosis import diagnose, outcomes_from_vmoves
from receiver.domain.placement import Plan
from receiver.domain.record import FenceAttempt, MoveStatus, Notification, Phase, Status, VMove, iso

T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
UUID = "3f2a9c1e-0000-4000-8000-00000000beef"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new_record(host: str = "node-01") -> Notification:
    return Notification(
        notification_uuid=UUID,
        type=NotificationType.COMPUTE_HOST,
        hostname=host,
        generated_time=iso(T0),
        payload={"event": "STOPPED", "alertname": "LazarusHostDown", "fingerprint": "abc"},
        status=Status.NEW,
        created_at=iso(T0),
        updated_at=iso(T0),
    )


def fenced(record: Notification) -> Notification:
    record = record.transition(Status.RUNNING, at(1), message="recovery running")
    record = record.log("recovery", "started", f"recovery of host {record.hostname} started", at(1))
    record = record.log("check", "succeeded", "host node-01 is in segment rack-a (auto)", at(2))
    record = record.with_fence_attempt(
        FenceAttempt("ipmi", "127.0.0.1:6231", "on", "off", iso(at(2)), iso(at(4)), "off_confirmed"), at(4)
    )
    record = record.log("fence", "succeeded", "BMC 127.0.0.1:6231 reads power off", at(4))
    record = record.log("nova", "succeeded", "compute service of node-01 forced down", at(5))
    return record.advance(Phase.NOVA_DISABLED, at(5))


def with_moves(record: Notification, *statuses: MoveStatus) -> Notification:
    for n, status in enumerate(statuses):
        move = VMove(f"inst-{n:04d}-uuid", f"vm-{n}", "node-01", "ACTIVE")
        if status is MoveStatus.SUCCEEDED:
            move = replace(move, status=status, dest_host="node-02", message="ACTIVE on node-02")
        elif status is MoveStatus.FAILED:
            move = replace(move, status=status, dest_host="node-01", message="instance went to ERROR")
        else:
            move = replace(move, status=status)
        record = record.with_vmove(move, at(6))
    return record.advance(Phase.EVACUATING, at(6))


def finished_record(moved: int = 3) -> Notification:
    record = with_moves(fenced(new_record()), *([MoveStatus.SUCCEEDED] * moved))
    record = record.advance(Phase.DONE, at(9))
    return record.transition(
        Status.FINISHED, at(9), reason="completed", message=f"{moved} instances recovered"
    )


def evacuation_failed_record() -> Notification:
    record = with_moves(fenced(new_record()), MoveStatus.SUCCEEDED, MoveStatus.FAILED)
    record = record.advance(Phase.DONE, at(9))
    return record.transition(
        Status.FAILED, at(9), reason="evacuation_failed", message="1 of 2 instances not recovered"
    )


def fence_failed_record() -> Notification:
    record = new_record().transition(Status.RUNNING, at(1), message="recovery running")
    record = record.with_fence_attempt(
        FenceAttempt("ipmi", "127.0.0.1:6231", "on", "on", iso(at(2)), iso(at(12)), "power_still_on"), at(12)
    )
    return record.transition(
        Status.FAILED,
        at(12),
        reason="power_still_on",
        message="fencing failed, nothing evacuated: BMC kept reporting ON",
    )


def refused_record(reason: str = "storm_guard") -> Notification:
    record = new_record().transition(Status.RUNNING, at(1), message="recovery running")
    return record.transition(
        Status.IGNORED, at(2), reason=reason, message="2 of 3 hosts down: observer may be broken"
    )


def diagnosed(record: Notification, plan: dict[str, Any] | None = None) -> Notification:
    """The record with the diagnosis the workflow attaches when it ends (and the plan, if given)."""
    parsed = Plan.from_dict(plan) if plan else None
    found = diagnose(host=record.hostname or "?", plan=parsed, outcomes=outcomes_from_vmoves(record.vmoves))
    if plan is not None:
        record = replace(record, plan=plan)
    return replace(record, diagnosis=found.to_dict())


def partial_finished_record() -> Notification:
    """proceed_with_what_fits: the one that fit moved, the other had no room and was left."""
    plan = {
        "method": "auto",
        "order": ["inst-0000-uuid", "inst-big"],
        "assignments": [{"id": "inst-0000-uuid", "name": "vm-0", "target": None, "route": "auto"}],
        "cannot_place": [
            {"id": "inst-big", "name": "vm-big", "reason": "insufficient_capacity", "message": "no room"}
        ],
        "spares_used": [],
        "shortfall": {"vcpus": 8, "ram_mb": 16384},
    }
    return diagnosed(finished_record(1), plan)
