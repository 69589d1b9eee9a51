"""What an alert asks for, before any state is consulted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from receiver.domain.alerts import Alert, AlertStatus, FailureEvent, FailureKind, NotificationType
from receiver.domain.intake import decide, new_notification
from receiver.domain.reasons import Reason
from receiver.domain.record import Status

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def alert(status: AlertStatus = AlertStatus.FIRING) -> Alert:
    return Alert(status, {"alertname": "HostDown"}, {}, NOW, None, "abc")


@pytest.mark.parametrize(
    ("status", "event", "claim", "reason"),
    [
        (AlertStatus.FIRING, FailureEvent(FailureKind.HOST, "node-01"), "host:node-01", None),
        (AlertStatus.RESOLVED, FailureEvent(FailureKind.HOST, "node-01"), None, Reason.ALERT_RESOLVED),
        (AlertStatus.FIRING, FailureEvent(None, "node-01", problem="no"), None, Reason.NO_RECOVERY_LABEL),
        (
            AlertStatus.FIRING,
            FailureEvent(FailureKind.HOST, None, problem="no host"),
            None,
            Reason.INVALID_LABELS,
        ),
        (
            AlertStatus.FIRING,
            FailureEvent(FailureKind.PROCESS, "n", process_name="nova-compute"),
            "process:n:nova-compute",
            None,
        ),
        (
            AlertStatus.FIRING,
            FailureEvent(FailureKind.INSTANCE, "n", instance_id="u"),
            "instance:u",
            None,
        ),
        (
            AlertStatus.RESOLVED,
            FailureEvent(FailureKind.INSTANCE, "n", instance_id="u"),
            None,
            Reason.ALERT_RESOLVED,
        ),
    ],
)
def test_decide(status: AlertStatus, event: FailureEvent, claim: str | None, reason: Reason | None) -> None:
    decision = decide(alert(status), event)
    assert decision.claim_key == claim
    assert decision.reason == reason
    assert decision.message


def test_new_notification_shape() -> None:
    event = FailureEvent(FailureKind.HOST, "node-01")
    record = new_notification(alert(), event, decide(alert(), event), NOW, "u-1")
    assert record.status is Status.NEW
    assert record.type is NotificationType.COMPUTE_HOST
    assert record.hostname == "node-01"
    assert record.payload == {"event": "STOPPED", "alertname": "HostDown", "fingerprint": "abc"}
    assert record.generated_time.startswith("2026-11-25T12:00:00")


def test_process_and_instance_alerts_join_an_open_host_recovery() -> None:
    process = decide(alert(), FailureEvent(FailureKind.PROCESS, "node-01", process_name="nova-compute"))
    instance = decide(alert(), FailureEvent(FailureKind.INSTANCE, "node-01", instance_id="vm-1"))
    assert process.parent_claim_key == instance.parent_claim_key == "host:node-01"
    host = decide(alert(), FailureEvent(FailureKind.HOST, "node-01"))
    assert host.parent_claim_key is None


def test_record_only_alerts_are_stored_ignored_with_their_reason() -> None:
    event = FailureEvent(FailureKind.INSTANCE, "node-01", instance_id="vm-1")
    resolved = alert(AlertStatus.RESOLVED)
    record = new_notification(resolved, event, decide(resolved, event), NOW)
    assert record.status is Status.IGNORED
    assert record.type is NotificationType.VM
    assert record.reason == "alert_resolved"
    assert record.payload["instance_uuid"] == "vm-1"
