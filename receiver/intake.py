"""The webhook shell: parse -> classify -> decide -> atomic intake -> enqueue.

The record is durable in Redis before this returns, so the HTTP layer may answer 2xx;
any Redis trouble raises StoreUnavailable, which the HTTP layer turns into 503 so that
Alertmanager retries (safety rule 4).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from receiver.adapters.queue import RecoveryQueue
from receiver.adapters.redis_store import RecordStore
from receiver.domain.alerts import Alert, AlertStatus, LabelNames, WebhookMessage, classify
from receiver.domain.intake import decide, new_notification
from receiver.domain.reasons import AlertOutcome
from receiver.domain.record import AlertEvent, iso
from receiver.metrics import Metrics
from receiver.reconcile import ensure_running

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertResult:
    fingerprint: str
    outcome: str
    notification_uuid: str
    reason: str | None


class Intake:
    def __init__(
        self,
        *,
        store: RecordStore,
        queue: RecoveryQueue,
        metrics: Metrics,
        labels: LabelNames,
        dedup_ttl_s: int,
        lease_ttl_s: float,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.queue = queue
        self.metrics = metrics
        self.labels = labels
        self.dedup_ttl_s = dedup_ttl_s
        self.lease_ttl_s = lease_ttl_s
        self.clock = clock

    def accept(self, message: WebhookMessage) -> list[AlertResult]:
        return [self._accept_one(alert, message) for alert in message.alerts]

    def _accept_one(self, alert: Alert, message: WebhookMessage) -> AlertResult:
        now = self.clock()
        event = classify(alert, self.labels)
        decision = decide(alert, event)
        record = new_notification(alert, event, decision, now)
        result = self.store.intake(
            dedup_key=alert.dedup_key,
            claim=decision.claim_key,
            parent_claim=decision.parent_claim_key,
            record=record,
            firing=alert.status is AlertStatus.FIRING,
            event=AlertEvent(
                fingerprint=alert.fingerprint,
                starts_at=iso(alert.starts_at),
                status=alert.status.value,
                alertname=alert.name,
                received_at=iso(now),
                outcome="pending",
                external_url=message.external_url,
                labels=alert.labels,
            ),
            ttl_s=self.dedup_ttl_s,
            now=now,
        )
        outcome = result.outcome
        if outcome == "created":
            outcome = AlertOutcome.RECOVERY_CREATED if decision.claim_key else AlertOutcome.IGNORED
        if decision.claim_key or outcome in ("duplicate", "linked_to_open"):
            # Creating the record and queueing its job are two writes: a crash or a 503 in
            # between is healed here when Alertmanager delivers the alert again.
            ensure_running(self.store, self.queue, result.notification_uuid, self.lease_ttl_s)
        reason = decision.reason.value if decision.reason else None
        self.metrics.alert_received(str(outcome))
        log.info(
            "alert accepted",
            extra={
                "alertname": alert.name,
                "fingerprint": alert.fingerprint,
                "alert_status": alert.status.value,
                "hostname": event.hostname,
                "outcome": str(outcome),
                "reason": reason,
                "notification_uuid": result.notification_uuid,
            },
        )
        return AlertResult(alert.fingerprint, str(outcome), result.notification_uuid, reason)
