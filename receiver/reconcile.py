"""Keeps every open record driven by exactly one live job.

Run by the intake (for the record an alert touched) and by each worker at start and
periodically: a record that is open but has no queued job and no live lease gets a new
attempt queued. The lease, not RQ's registries, proves that a run is alive.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from receiver.adapters.queue import RecoveryQueue
from receiver.adapters.redis_store import RecordStore
from receiver.domain.record import Notification, Status
from receiver.errors import NotFound

log = logging.getLogger(__name__)

MAX_ERROR_RERUNS = 1  # like Masakari: an `error` record is re-run once, then needs a human


def ensure_running(store: RecordStore, queue: RecoveryQueue, uuid: str, lease_ttl_s: float) -> str | None:
    """Queue a run for an open record whose job vanished or died; returns the job id queued."""
    try:
        record = store.get(uuid)
    except NotFound:
        return None
    if not _wants_a_run(record):
        return None
    held = store.lease_held(uuid)
    if queue.is_alive(uuid, record.attempt, held, lease_ttl_s):
        return None
    if held:
        return None
    if record.status is Status.ERROR or _was_started(queue, record):
        record = store.update(uuid, lambda r: replace(r, attempt=r.attempt + 1))
    job = queue.enqueue(uuid, record.attempt)
    log.info("recovery queued", extra={"notification_uuid": uuid, "job_id": job, "attempt": record.attempt})
    return job


def reconcile_all(
    store: RecordStore, queue: RecoveryQueue, lease_ttl_s: float, retention_s: float | None = None
) -> list[str]:
    """Queue a run for every orphaned open record; expire ended records past retention."""
    if retention_s is not None:
        expired = store.expire_ended(datetime.now(UTC) - timedelta(seconds=retention_s))
        if expired:
            log.info("expired ended records", extra={"count": expired})
    queued = []
    for uuid in store.open_uuids():
        job = ensure_running(store, queue, uuid, lease_ttl_s)
        if job:
            queued.append(job)
    return queued


def _wants_a_run(record: Notification) -> bool:
    if record.wake_at and datetime.fromisoformat(record.wake_at) > datetime.now(UTC):
        return False  # waiting for the world (a service to come back); not before then
    if record.status in (Status.NEW, Status.RUNNING):
        return True
    return record.status is Status.ERROR and record.attempt < MAX_ERROR_RERUNS


def _was_started(queue: RecoveryQueue, record: Notification) -> bool:
    """A job id that RQ still knows (finished, failed, started) cannot be enqueued again."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from receiver.adapters.queue import job_id

    try:
        Job.fetch(job_id(record.notification_uuid, record.attempt), connection=queue.redis)
    except NoSuchJobError:
        return False
    return True
