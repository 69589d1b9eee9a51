"""What a human is told about one recovery event, independent of where it is sent.

A `Message` is a snapshot taken when the event is published (a retry hours later still says
what was true then). It travels through RQ as plain JSON, so a worker running another
version never unpickles our classes. Each notifier renders it in its own format.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass
from typing import Any

from receiver.domain.alerts import NotificationType
from receiver.domain.events import EventKind
from receiver.domain.placement import CAPACITY_REASONS
from receiver.domain.reasons import Reason
from receiver.domain.record import STOPPED, MoveStatus, Notification, Phase, Status
from receiver.domain.selection import LEFT_BY_POLICY, NON_EVACUABLE

ACTIONS_KEPT = 12


class Severity(enum.StrEnum):
    """PagerDuty's severities, used by every notifier."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


# Gates that refuse on purpose (an operator set them): worth a look, not a page at night.
_DELIBERATE_GATES = frozenset({Reason.HOST_ON_MAINTENANCE, Reason.SEGMENT_DISABLED})


def severity_of(kind: EventKind, reason: str | None) -> Severity:
    """How urgent the event is: instances down with nobody moving them is critical."""
    if kind in (EventKind.FAILED, EventKind.NEEDS_APPROVAL):
        return Severity.CRITICAL
    if kind is EventKind.REFUSED:
        if reason == Reason.STORM_GUARD:
            return Severity.CRITICAL  # many hosts down at once and nothing was fenced
        return Severity.WARNING if reason in _DELIBERATE_GATES else Severity.ERROR
    return Severity.INFO


@dataclass(frozen=True)
class FenceLine:
    method: str
    bmc: str
    power_before: str
    power_after: str
    outcome: str
    started_at: str
    ended_at: str
    message: str


@dataclass(frozen=True)
class InstanceLine:
    name: str
    uuid: str
    status: str
    source_host: str
    dest_host: str | None
    message: str


@dataclass(frozen=True)
class Message:
    event: EventKind
    notification_uuid: str
    recovery_type: str  # COMPUTE_HOST | PROCESS | VM
    seq: int  # per record, in publish order: a newer event supersedes an older one
    at: str
    host: str
    segment: str | None
    status: str
    reason: str | None
    severity: Severity
    title: str
    summary: str
    outcome: str  # the record's own last word: what happened and why
    failure: str  # what failed
    actions: tuple[str, ...]  # what Lazarus did
    fencing: tuple[FenceLine, ...]
    instances: tuple[InstanceLine, ...]
    instances_note: str  # moved or not, and why
    record_url: str | None
    record: dict[str, Any]
    # A failed or partial host recovery: why not everything moved, in one line (the record's
    # diagnosis summary). Defaulted: a message queued by an older version has none.
    diagnosis: str = ""

    @property
    def moved(self) -> int:
        return sum(1 for i in self.instances if i.status == MoveStatus.SUCCEEDED)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        return cls(
            **{
                **data,
                "event": EventKind(data["event"]),
                "severity": Severity(data["severity"]),
                "actions": tuple(data["actions"]),
                "fencing": tuple(FenceLine(**f) for f in data["fencing"]),
                "instances": tuple(InstanceLine(**i) for i in data["instances"]),
            }
        )


def build_message(
    kind: EventKind, record: Notification, *, seq: int, segment: str | None, record_url: str | None
) -> Message:
    host = record.hostname or "?"
    diagnosis = diagnosis_line(kind, record)
    title = _title(kind, record, host, partial=bool(diagnosis))
    headline = diagnosis or record.message
    return Message(
        event=kind,
        notification_uuid=record.notification_uuid,
        recovery_type=record.type.value,
        seq=seq,
        at=record.updated_at,
        host=host,
        segment=segment,
        status=record.status.value,
        reason=record.reason,
        severity=Severity.WARNING
        if kind is EventKind.FINISHED and diagnosis
        else severity_of(kind, record.reason),
        title=title,
        summary=clip(f"{title}: {headline}" if headline else title, 1024),
        outcome=record.message,
        failure=what_failed(record),
        actions=_actions(record),
        fencing=tuple(
            FenceLine(
                f.method, f.bmc, f.power_before, f.power_after, f.outcome, f.started_at, f.ended_at, f.message
            )
            for f in record.fencing
        ),
        instances=tuple(
            InstanceLine(
                m.instance_name, m.instance_uuid, m.status.value, m.source_host, m.dest_host, m.message
            )
            for m in record.vmoves
        ),
        instances_note=instances_note(record),
        record_url=record_url,
        record=json.loads(json.dumps(record.to_dict())),  # as it travels: JSON types only
        diagnosis=diagnosis,
    )


def diagnosis_line(kind: EventKind, record: Notification) -> str:
    """The diagnosis summary of a host recovery that failed, or that finished with a gap (its
    diagnosis has findings: capacity, an instance that cannot move, a Nova error); empty
    otherwise. Instances left out by policy or gone meanwhile are no gap."""
    data = record.diagnosis
    if not data or kind not in (EventKind.FAILED, EventKind.FINISHED):
        return ""
    if kind is EventKind.FINISHED and not data.get("findings"):
        return ""
    return clip(" ".join(str(data.get("summary", "")).split()), 1000)


def record_url(public_url: str, uuid: str) -> str | None:
    """Where a human reads the record (the read API), when a public URL is configured."""
    return f"{public_url.rstrip('/')}/v1/notifications/{uuid}" if public_url else None


def what_failed(record: Notification) -> str:
    host = record.hostname or "?"
    alert = record.payload.get("alertname")
    since = f", firing since {record.generated_time[:19]}Z" if record.generated_time else ""
    cause = f" (alert {alert}{since})" if alert else ""
    if record.type is NotificationType.PROCESS:
        return f"process {record.payload.get('process_name', '?')} on {host} failed{cause}"
    if record.type is NotificationType.VM:
        return f"instance {record.payload.get('instance_uuid', '?')} on {host} failed{cause}"
    return f"compute host {host} is down{cause}"


# Moves the plan recorded as left out (ignored with the reason): counted apart from the moves in play.
_LEFT_OUT = (
    ("left by policy", LEFT_BY_POLICY),
    ("cannot move", NON_EVACUABLE),
    ("without room", CAPACITY_REASONS),
)
_PLANNED_OUT = frozenset().union(*(reasons for _, reasons in _LEFT_OUT))


def instances_note(record: Notification) -> str:
    """Whether the instances moved, and if not, why. The plan records every instance's move
    before fencing: pending ones are in play, ignored ones with a plan reason were left out."""
    moves = record.vmoves
    if not moves and record.type is not NotificationType.COMPUTE_HOST:
        return "none moved: this kind of recovery repairs in place"
    out = [m for m in moves if m.status is MoveStatus.IGNORED and m.reason in _PLANNED_OUT]
    in_play = [m for m in moves if m not in out]
    left = [
        f"{count} {label}"
        for label, reasons in _LEFT_OUT
        if (count := sum(1 for m in out if m.reason in reasons))
    ]
    if not in_play and record.reached(Phase.EVACUATING):
        return ", ".join(["none to move" if moves else "no instances were on the host", *left])
    # A move the ended recovery never attempted (recovery_stopped) did not start either.
    started = any((m.status is not MoveStatus.PENDING and m.reason != STOPPED) or m.attempts for m in in_play)
    if not started and not record.reached(Phase.EVACUATING):
        return ", ".join([_not_started(record), *left])
    counts = {s: sum(1 for m in in_play if m.status is s) for s in MoveStatus}
    parts = [f"{counts[MoveStatus.SUCCEEDED]} of {len(in_play)} moved"]
    if counts[MoveStatus.FAILED]:
        parts.append(f"{counts[MoveStatus.FAILED]} failed")
    stopped = sum(1 for m in in_play if m.reason == STOPPED)
    if counts[MoveStatus.IGNORED] - stopped:
        parts.append(f"{counts[MoveStatus.IGNORED] - stopped} gone")
    if stopped:
        parts.append(f"{stopped} never attempted: {record.message}")
    waiting = counts[MoveStatus.PENDING] + counts[MoveStatus.ONGOING]
    if waiting:
        parts.append(f"{waiting} not finished" + ("" if record.status.is_open else f": {record.message}"))
    return ", ".join([*parts, *left])


def _not_started(record: Notification) -> str:
    """No move has begun, before the evacuation phase: why not yet, or why never."""
    if record.status.is_open and record.reason == Reason.AWAITING_APPROVAL:
        return "not moved yet: waiting for an operator's approval"
    if record.status.is_open:
        return "not moved yet: the host must be proven off first"
    return f"none moved: {record.message}" if record.message else "none moved"


def _title(kind: EventKind, record: Notification, host: str, *, partial: bool = False) -> str:
    if kind is EventKind.STARTED:
        return f"{host}: {_subject(record)}, Lazarus is recovering"
    if kind is EventKind.FINISHED:
        moved = sum(1 for m in record.vmoves if m.status is MoveStatus.SUCCEEDED)
        how = "partly recovered" if partial else "recovered"
        return f"{host} {how}: {moved} instance{'s' if moved != 1 else ''} moved"
    if kind is EventKind.FAILED:
        what = "crashed" if record.status is Status.ERROR else "failed"
        return f"{host}: recovery {what} ({record.reason or 'unknown'})"
    if kind is EventKind.REFUSED:
        return f"{host}: recovery refused by a safety gate ({record.reason or 'unknown'})"
    if kind is EventKind.NEEDS_APPROVAL:
        return f"{host}: recovery waits for an operator's approval"
    return f"{host} reinstated"


def _subject(record: Notification) -> str:
    if record.type is NotificationType.PROCESS:
        return f"{record.payload.get('process_name', 'a process')} is down"
    if record.type is NotificationType.VM:
        return f"instance {record.payload.get('instance_uuid', '?')} failed"
    return "host is down"


def _actions(record: Notification) -> tuple[str, ...]:
    # Per-instance "started" lines are many and the instance list says it better.
    lines = [
        f"{s.at[11:19]} {s.name} {s.state}: {s.message}"
        for s in record.steps
        if not (s.name == "evacuate" and s.state in ("started", "progress"))
    ]
    if len(lines) > ACTIONS_KEPT:
        lines = [f"({len(lines) - ACTIONS_KEPT + 1} earlier steps)", *lines[-(ACTIONS_KEPT - 1) :]]
    return tuple(lines)


def clip(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
