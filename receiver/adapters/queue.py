"""RQ as the transport for recovery jobs. RQ is not the ledger: the record is.

A job id names the record and the attempt (``recovery-<uuid>-<attempt>``) and is enqueued
with ``unique=True``, so a duplicate delivery never queues a second run of the same attempt.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import redis
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from receiver.adapters.redis_store import translate_errors

JOB_FUNCTION = "receiver.jobs.run_recovery"
_WAITING = {JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


def job_id(notification_uuid: str, attempt: int) -> str:
    return f"recovery-{notification_uuid}-{attempt}"


class RecoveryQueue:
    def __init__(self, client: redis.Redis, name: str, job_timeout_s: int) -> None:
        self.redis = client
        self.queue = Queue(name, connection=client)
        self.job_timeout_s = job_timeout_s

    def enqueue(self, notification_uuid: str, attempt: int) -> str:
        """Queue a run of this attempt unless one is already queued or known."""
        jid = job_id(notification_uuid, attempt)
        with translate_errors(), contextlib.suppress(DuplicateJobError):
            self.queue.enqueue(
                JOB_FUNCTION,
                notification_uuid,
                job_id=jid,
                unique=True,
                job_timeout=self.job_timeout_s,
                result_ttl=86400,
                failure_ttl=7 * 86400,
                description=f"recovery {notification_uuid} attempt {attempt}",
            )
        return jid

    def is_alive(self, notification_uuid: str, attempt: int, lease_held: bool, lease_ttl_s: float) -> bool:
        """Whether a job for this attempt is queued, or running under a live lease.

        A SIGKILLed worker leaves its job "started" in RQ for minutes; the lease (renewed every
        few seconds by the running job) is what tells a live run from a dead one.
        """
        with translate_errors():
            try:
                job = Job.fetch(job_id(notification_uuid, attempt), connection=self.redis)
            except NoSuchJobError:
                return False
            status = job.get_status(refresh=False)
            if status in _WAITING:
                return True
            if status == JobStatus.STARTED:
                if lease_held:
                    return True
                started = job.started_at
                if started is None:
                    return True
                if started.tzinfo is None:
                    started = started.replace(tzinfo=UTC)
                # Just started, lease not taken yet: give it one lease period.
                return datetime.now(UTC) - started < timedelta(seconds=lease_ttl_s)
            return False

    def depth(self) -> int:
        with translate_errors():
            return int(self.queue.count)
