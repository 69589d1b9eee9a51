"""The notify queue: one RQ job per (message, notifier, attempt), apart from recovery jobs.

Retries are new jobs scheduled for later (`enqueue_in`, run by the worker's RQ scheduler), so
a waiting delivery never holds a worker that a recovery could use.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis
from rq import Queue

from receiver.adapters.redis_store import translate_errors

JOB_FUNCTION = "receiver.notify.delivery.deliver"


@dataclass(frozen=True)
class Attempt:
    number: int  # 1 for the first try
    published_at: str  # when the event was published: retries stop max_age_s after it

    def next(self) -> Attempt:
        return Attempt(self.number + 1, self.published_at)


def job_id(notifier: str, message: dict[str, Any], attempt: Attempt) -> str:
    # Unique per job: a delivery put back for later (paced, or waiting for its incident's lock)
    # keeps its attempt number and must not reuse the id of the job that is running now.
    uuid, seq = message["notification_uuid"], message["seq"]
    return f"notify-{uuid}-{seq}-{notifier}-{attempt.number}-{secrets.token_hex(3)}"


class NotifyQueue:
    def __init__(self, client: redis.Redis, name: str, job_timeout_s: int = 300) -> None:
        self.redis = client
        self.queue = Queue(name, connection=client)
        self.job_timeout_s = job_timeout_s

    def enqueue(self, notifier: str, message: dict[str, Any], attempt: Attempt, delay_s: float = 0.0) -> str:
        """Queue (or schedule, after `delay_s`) one delivery attempt."""
        jid = job_id(notifier, message, attempt)
        options: dict[str, Any] = {
            "job_id": jid,
            "job_timeout": self.job_timeout_s,
            "result_ttl": 3600,
            "failure_ttl": 7 * 86400,
            "description": f"notify {notifier} {message['event']} {jid}",
        }
        with translate_errors():
            if delay_s > 0:
                self.queue.enqueue_in(
                    timedelta(seconds=delay_s), JOB_FUNCTION, notifier, message, *_args(attempt), **options
                )
            else:
                self.queue.enqueue(JOB_FUNCTION, notifier, message, *_args(attempt), **options)
        return jid

    def scheduled(self) -> int:
        with translate_errors():
            return int(self.queue.scheduled_job_registry.count)

    def depth(self) -> int:
        with translate_errors():
            return int(self.queue.count)


def _args(attempt: Attempt) -> tuple[int, str]:
    # Plain values: a worker of another version must be able to read the job.
    return attempt.number, attempt.published_at
