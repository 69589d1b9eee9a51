"""A dead `nova-compute` on a live host: stop scheduling there, never fence, and hand the
host back only when Nova itself sees the service again and only if Lazarus took it away."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from receiver.domain.model import ComputeService
from receiver.domain.reasons import Reason

HANDLED_PROCESSES = frozenset({"nova-compute"})


def disable_reason(notification_uuid: str) -> str:
    # The reason names the record; it is also how Lazarus recognises a disable of its own.
    return f"lazarus: nova-compute down, recovery {notification_uuid}"


class ProcessAction(enum.StrEnum):
    DISABLE = "disable"  # stop scheduling there
    WAIT = "wait"  # ours and still down: keep the record open
    REENABLE = "reenable"  # Nova sees it up again, and the disable is still ours
    LEAVE = "leave"  # someone else owns the service's state now: end without touching it


@dataclass(frozen=True)
class ProcessDecision:
    action: ProcessAction
    reason: Reason | None
    message: str


def on_failure(service: ComputeService, notification_uuid: str) -> ProcessDecision:
    """What to do when the alert arrives."""
    ours = disable_reason(notification_uuid)
    if service.status != "disabled":
        return ProcessDecision(ProcessAction.DISABLE, None, f"disabling nova-compute on {service.host}")
    if service.disabled_reason == ours:
        return ProcessDecision(ProcessAction.WAIT, None, "already disabled by this recovery")
    why = service.disabled_reason or "no reason given"
    return ProcessDecision(
        ProcessAction.LEAVE,
        Reason.DISABLED_BY_OPERATOR,
        f"nova-compute on {service.host} was already disabled ({why}); Lazarus leaves it alone "
        "and will not re-enable it",
    )


def on_recheck(service: ComputeService, notification_uuid: str, disabled_at: datetime) -> ProcessDecision:
    """Whether the service may be handed back. A resolved alert is not proof; Nova's view is."""
    if service.status != "disabled":
        return ProcessDecision(
            ProcessAction.LEAVE,
            Reason.CHANGED_BY_OPERATOR,
            f"nova-compute on {service.host} was re-enabled by someone else",
        )
    if service.disabled_reason != disable_reason(notification_uuid):
        return ProcessDecision(
            ProcessAction.LEAVE,
            Reason.CHANGED_BY_OPERATOR,
            f"the disable reason on {service.host} changed to {service.disabled_reason!r}; left as it is",
        )
    if service.forced_down:
        return ProcessDecision(ProcessAction.WAIT, None, f"{service.host} is forced down; waiting")
    fresh = service.updated_at is not None and service.updated_at > disabled_at
    if service.state == "up" and fresh:
        return ProcessDecision(
            ProcessAction.REENABLE, Reason.COMPLETED, f"nova-compute on {service.host} reports up again"
        )
    return ProcessDecision(
        ProcessAction.WAIT, None, f"nova-compute on {service.host} is still {service.state}"
    )
