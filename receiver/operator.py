"""Operator control of recoveries: approve, reject, abort, retry. Each records who and when.

Shared by the CLI (`lazarus notifications approve|reject|abort|retry ID --by NAME`) and the
authenticated HTTP API (`POST /v1/notifications/ID/<action>` with `{"by": NAME}`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from receiver.adapters.queue import RecoveryQueue
from receiver.adapters.redis_store import RecordStore
from receiver.domain.intake import claim_key_for
from receiver.domain.reasons import Reason
from receiver.domain.record import Notification, Status, iso
from receiver.errors import InputError
from receiver.reconcile import ensure_running
from receiver.workflow import gates

log = logging.getLogger(__name__)


class Operator:
    def __init__(self, store: RecordStore, queue: RecoveryQueue, lease_ttl_s: float) -> None:
        self.store = store
        self.queue = queue
        self.lease_ttl_s = lease_ttl_s

    def approve(self, uuid: str, by: str, now: datetime) -> Notification:
        record = self._awaiting(uuid, by)
        record = self.store.update(
            uuid,
            lambda r: (
                r.mark(gates.APPROVED_BY, by, now)
                .mark(gates.APPROVED_AT, iso(now), now)
                .sleep_until(None, now)
                .log("approval", "approved", f"approved by {by}", now)
            ),
        )
        log.warning("recovery approved", extra={"notification_uuid": uuid, "by": by})
        ensure_running(self.store, self.queue, uuid, self.lease_ttl_s)
        return record

    def reject(self, uuid: str, by: str, now: datetime) -> Notification:
        self._awaiting(uuid, by)
        self.store.update(
            uuid,
            lambda r: (
                r.mark(gates.REJECTED_BY, by, now)
                .mark(gates.REJECTED_AT, iso(now), now)
                .sleep_until(None, now)
                .log("approval", "rejected", f"rejected by {by}", now)
            ),
        )
        log.warning("recovery rejected", extra={"notification_uuid": uuid, "by": by})
        # The job records the end (and its event); queue it now rather than at the next reconcile.
        ensure_running(self.store, self.queue, uuid, self.lease_ttl_s)
        return self.store.get(uuid)

    def abort(self, uuid: str, by: str, now: datetime) -> Notification:
        """Stop before the next step. What was done stays done and recorded (a fenced host stays fenced)."""
        _require_name(by)
        record = self.store.get(uuid)
        if not (record.status.is_open or record.status is Status.ERROR):
            raise InputError("status", f"notification {uuid} is {record.status.value}; nothing to abort")
        self.store.request_abort(uuid, by, iso(now))
        log.warning("recovery abort requested", extra={"notification_uuid": uuid, "by": by})
        if self.store.lease_held(uuid):
            return self.store.update(
                uuid, lambda r: r.log("abort", "requested", f"abort requested by {by}", now)
            )
        # No worker runs it right now: end it here, so nothing picks it up again.
        return self.store.update(
            uuid,
            lambda r: r.log("abort", "succeeded", f"aborted by {by}", now).transition(
                Status.FAILED, now, reason=Reason.ABORTED.value, message=f"aborted by {by} at {iso(now)}"
            ),
        )

    def retry(self, uuid: str, by: str, now: datetime) -> Notification:
        """Re-run a failed recovery: its failed instance moves (or its failed fence) again."""
        _require_name(by)
        record = self.store.get(uuid)
        if record.status is not Status.FAILED:
            raise InputError(
                "status", f"notification {uuid} is {record.status.value}; only a failed one is retried"
            )
        claim = claim_key_for(record)
        if claim:
            holder = self.store.reclaim(uuid, claim)
            if holder is not None:
                raise InputError(
                    "notification", f"{claim} is under another recovery ({holder}); retry that one"
                )
        record = self.store.update(
            uuid,
            lambda r: r.reopen(now, f"retried by {by}").log("retry", "requested", f"retried by {by}", now),
        )
        log.warning("recovery retried", extra={"notification_uuid": uuid, "by": by})
        ensure_running(self.store, self.queue, uuid, self.lease_ttl_s)
        return record

    def _awaiting(self, uuid: str, by: str) -> Notification:
        _require_name(by)
        record = self.store.get(uuid)
        if record.status is not Status.RUNNING or record.reason != Reason.AWAITING_APPROVAL.value:
            raise InputError(
                "status", f"notification {uuid} is not waiting for approval ({record.status.value})"
            )
        if gates.APPROVED_BY in record.marks or gates.REJECTED_BY in record.marks:
            raise InputError("status", f"notification {uuid} was already decided")
        return record


def _require_name(by: str) -> None:
    if not by.strip():
        raise InputError("by", "name who decides (e.g. --by alice)")
