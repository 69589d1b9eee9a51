"""What happened to a recovery, as humans are told about it (the notifier fan-out's input)."""

from __future__ import annotations

import enum

from receiver.domain.reasons import Reason
from receiver.domain.record import Notification, Status


class EventKind(enum.StrEnum):
    STARTED = "recovery_started"
    NEEDS_APPROVAL = "needs_approval"
    FINISHED = "recovery_finished"
    FAILED = "recovery_failed"
    REFUSED = "refused_by_gate"
    REINSTATED = "host_reinstated"


# Ignored records whose reason is a safety gate saying no: a human must hear about these.
GATE_REASONS = frozenset(
    {
        Reason.STORM_GUARD,
        Reason.HOST_ON_MAINTENANCE,
        Reason.SEGMENT_DISABLED,
        Reason.HOST_NOT_IN_INVENTORY,
        Reason.CRASH_LOOP,
        Reason.NOT_VERIFIED,
        Reason.APPROVAL_REJECTED,
    }
)


def ended_event(record: Notification) -> EventKind | None:
    """The event for a record that just reached its final status (None: nobody needs telling)."""
    if record.status is Status.FINISHED:
        return EventKind.FINISHED
    if record.status in (Status.FAILED, Status.ERROR):
        return EventKind.FAILED
    if record.status is Status.IGNORED and record.reason in GATE_REASONS:
        return EventKind.REFUSED
    return None
