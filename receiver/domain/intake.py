"""What an incoming alert should do, before any state is consulted.

`decide` is pure; the atomic part (has this alert, or an open recovery of this target,
been seen already?) is settled by the store in one Redis script, because two receiver
processes can receive the same alert at the same instant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from receiver.domain.alerts import (
    NOTIFICATION_TYPE,
    Alert,
    AlertStatus,
    FailureEvent,
    FailureKind,
    NotificationType,
)
from receiver.domain.reasons import Reason
from receiver.domain.record import Notification, Status, iso

# Failure kinds that start a recovery in this release; the others are recorded with a reason.
ACTING_KINDS = frozenset({FailureKind.HOST})


@dataclass(frozen=True)
class IntakeDecision:
    """`claim_key` set: try to open a recovery for that target. None: record only, with `reason`."""

    claim_key: str | None
    reason: Reason | None
    message: str
    notification_type: NotificationType


def decide(alert: Alert, event: FailureEvent) -> IntakeDecision:
    kind_type = NOTIFICATION_TYPE.get(event.kind) if event.kind else None
    ntype = kind_type or NotificationType.COMPUTE_HOST
    if alert.status is AlertStatus.RESOLVED:
        return IntakeDecision(
            None, Reason.ALERT_RESOLVED, "resolved alerts are informational and never un-fence", ntype
        )
    if event.kind is None:
        return IntakeDecision(None, Reason.NO_RECOVERY_LABEL, event.problem or "no recovery label", ntype)
    if event.problem:
        return IntakeDecision(None, Reason.INVALID_LABELS, event.problem, ntype)
    if event.kind not in ACTING_KINDS:
        return IntakeDecision(
            None,
            Reason.KIND_NOT_SUPPORTED,
            f"recovery={event.kind.value} is recorded but not acted on in this release",
            ntype,
        )
    return IntakeDecision(f"host:{event.hostname}", None, "host recovery requested", ntype)


def new_notification(
    alert: Alert,
    event: FailureEvent,
    decision: IntakeDecision,
    now: datetime,
    notification_uuid: str | None = None,
) -> Notification:
    """The record to store if this alert turns out to be the first of its kind."""
    payload: dict[str, str] = {
        "event": "STOPPED" if alert.status is AlertStatus.FIRING else "STARTED",
        "alertname": alert.name,
        "fingerprint": alert.fingerprint,
    }
    if event.instance_id:
        payload["instance_uuid"] = event.instance_id
    if event.process_name:
        payload["process_name"] = event.process_name
    status = Status.NEW if decision.claim_key else Status.IGNORED
    return Notification(
        notification_uuid=notification_uuid or str(uuid.uuid4()),
        type=decision.notification_type,
        hostname=event.hostname,
        generated_time=iso(alert.starts_at),
        payload=payload,
        status=status,
        created_at=iso(now),
        updated_at=iso(now),
        reason=decision.reason.value if decision.reason else None,
        message=decision.message,
    )
