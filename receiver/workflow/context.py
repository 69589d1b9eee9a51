"""What every workflow step needs: the record, a clock, and proof that we still own the run."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from receiver.adapters.redis_store import RecordStore
from receiver.domain.events import EventKind, ended_event
from receiver.domain.record import Notification, Status
from receiver.errors import LazarusError, StoreUnavailable
from receiver.metrics import Metrics
from receiver.ports import EventPublisher, NullPublisher

log = logging.getLogger(__name__)


class LeaseLost(LazarusError):
    """Another worker may be running this record now: stop before touching anything."""

    retryable = True


class Aborted(LazarusError):
    """An operator aborted the recovery: stop before the next step; what was done stays recorded."""

    def __init__(self, by: str, at: str) -> None:
        super().__init__(f"aborted by {by} at {at}")
        self.by = by
        self.at = at


@dataclass
class Clock:
    now: Callable[[], datetime]
    sleep: Callable[[float], None] = time.sleep


class Lease:
    """Holds the record's lease and renews it in the background while the job runs."""

    def __init__(self, store: RecordStore, uuid: str, token: str, ttl_s: float) -> None:
        self.store = store
        self.uuid = uuid
        self.token = token
        self.ttl_s = ttl_s
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{uuid[:8]}", daemon=True)

    def start(self) -> Lease:
        self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_s / 4):
            try:
                if not self.store.renew_lease(self.uuid, self.token, self.ttl_s):
                    self._lost.set()
                    return
            except StoreUnavailable:
                # Keep trying until the lease would have expired anyway.
                continue

    def check(self) -> None:
        """Call before every action with an effect outside Redis."""
        if self._lost.is_set():
            raise LeaseLost(f"lease on {self.uuid} lost; another worker may own this recovery")

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        try:
            self.store.release_lease(self.uuid, self.token)
        except StoreUnavailable:
            log.warning("lease not released; it expires by itself", extra={"notification_uuid": self.uuid})


@dataclass
class RecoveryContext:
    store: RecordStore
    metrics: Metrics
    clock: Clock
    lease: Lease
    uuid: str
    events: EventPublisher = field(default_factory=NullPublisher)
    # The kind's last word on an ending record (a host recovery's diagnosis), in the same write.
    annotate: Callable[[Notification, Status, str, str], Notification] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def checkpoint(self) -> None:
        """Call before every action with an effect outside Redis: we still own the run, and
        nobody aborted it."""
        self.lease.check()
        abort = self.store.abort_requested(self.uuid)
        if abort is not None:
            raise Aborted(abort["by"], abort["at"])

    def publish(self, kind: EventKind, record: Notification) -> None:
        """Tell humans; a notifier problem is logged and never fails the recovery."""
        try:
            self.events.publish(kind, record)
        except Exception:  # the fan-out boundary: a recovery never fails because of a notifier
            log.exception(
                "event not published", extra={"notification_uuid": self.uuid, "event_kind": kind.value}
            )

    def record(self) -> Notification:
        return self.store.get(self.uuid)

    def update(self, change: Callable[[Notification], Notification]) -> Notification:
        with self._lock:
            return self.store.update(self.uuid, change)

    def step(self, name: str, state: str, message: str, **fields: object) -> Notification:
        now = self.clock.now()
        log.info(message, extra={"notification_uuid": self.uuid, "step": name, "state": state, **fields})
        return self.update(lambda r: r.log(name, state, message, now))

    def begin(self, started: Callable[[Notification], str]) -> Notification | None:
        """Take an open record into `running` (publishing `started` once); None if it has ended."""
        record = self.record()
        if not (record.status.is_open or record.status is Status.ERROR):
            return None
        if record.status is Status.RUNNING:
            return record
        now = self.clock.now()
        record = self.update(lambda r: r.transition(Status.RUNNING, now, message="recovery running"))
        record = self.step("recovery", "started", started(record))
        self.publish(EventKind.STARTED, record)
        return record

    def finish(self, status: Status, reason: str, message: str) -> Notification:
        now = self.clock.now()
        level = logging.INFO if status is Status.FINISHED else logging.WARNING
        log.log(
            level,
            "recovery ended",
            extra={
                "notification_uuid": self.uuid,
                "status": status.value,
                "reason": reason,
                "detail": message,
            },
        )
        annotate = self.annotate

        def end(r: Notification) -> Notification:
            r = r.log("recovery", status.value, message, now).transition(
                status, now, reason=reason, message=message
            )
            return annotate(r, status, reason, message) if annotate is not None else r

        record = self.update(end)
        started = datetime.fromisoformat(record.created_at)
        self.metrics.recovery_ended(record.type.value, status.value, reason, (now - started).total_seconds())
        kind = ended_event(record)
        if kind is not None:
            self.publish(kind, record)
        return record
