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


@dataclass(frozen=True)
class IntakeDecision:
    """`claim_key` set: try to open a recovery for that target. None: record only, with `reason`.

    `parent_claim_key`: a wider recovery that, while open, absorbs this alert (a dead host's
    process or instance alerts join the host's recovery and do nothing else).
    """

    claim_key: str | None
    reason: Reason | None
    message: str
    notification_type: NotificationType
    parent_claim_key: str | None = None


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
    if event.kind is FailureKind.HOST:
        return IntakeDecision(f"host:{event.hostname}", None, "host recovery requested", ntype)
    parent = f"host:{event.hostname}" if event.hostname else None
    if event.kind is FailureKind.PROCESS:
        return IntakeDecision(
            f"process:{event.hostname}:{event.process_name}",
            None,
            "process recovery requested",
            ntype,
            parent,
        )
    return IntakeDecision(f"instance:{event.instance_id}", None, "instance recovery requested", ntype, parent)


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


def claim_key_for(record: Notification) -> str | None:
    """The claim an open record holds: one recovery per host, per process of a host, per instance."""
    if record.type is NotificationType.COMPUTE_HOST:
        return f"host:{record.hostname}" if record.hostname else None
    if record.type is NotificationType.PROCESS:
        return f"process:{record.hostname}:{record.payload.get('process_name')}"
    instance = record.payload.get("instance_uuid")
    return f"instance:{instance}" if instance else None
