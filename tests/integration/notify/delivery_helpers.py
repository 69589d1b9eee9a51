"""Running delivery jobs in-process (RQ SimpleWorker with its scheduler), and reading Redis whole."""

from __future__ import annotations

import contextlib
import logging
import time
import zlib
from collections.abc import Iterator
from typing import Any

import redis
from rq import SimpleWorker

from receiver.bootstrap import Services, dispatcher_for, notify_queue
from receiver.notify import delivery
from receiver.notify.delivery import Dispatcher


def wire(services: Services) -> Dispatcher:
    dispatcher = dispatcher_for(services)
    delivery.configure(dispatcher)
    return dispatcher


def drain(services: Services, timeout: float = 60.0) -> None:
    """Work the notify queue until nothing is queued or scheduled (retries included)."""
    queue = notify_queue(services)
    deadline = time.monotonic() + timeout
    while True:
        # Burst mode with the scheduler: moves due retries onto the queue, then works it empty.
        SimpleWorker([queue.queue], connection=services.redis).work(burst=True, with_scheduler=True)
        if queue.depth() == 0 and queue.scheduled() == 0:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"notify queue not drained in {timeout} s")
        time.sleep(0.1)


def everything_in(client: redis.Redis) -> Iterator[str]:
    """Every key and value in Redis, as text (to look for secrets)."""
    for raw_key in client.scan_iter(count=1000):
        key = raw_key.decode(errors="replace")
        yield key
        kind = client.type(raw_key).decode()
        values: Any
        if kind == "string":
            values = [client.get(raw_key)]
        elif kind == "hash":
            values = [v for pair in client.hgetall(raw_key).items() for v in pair]
        elif kind == "list":
            values = client.lrange(raw_key, 0, -1)
        elif kind == "set":
            values = list(client.smembers(raw_key))
        elif kind == "zset":
            values = client.zrange(raw_key, 0, -1)
        else:
            values = []
        for value in values:
            if not isinstance(value, bytes):
                yield str(value)
                continue
            yield value.decode(errors="replace")
            with contextlib.suppress(zlib.error):  # RQ keeps job arguments zlib-compressed: look inside
                yield zlib.decompress(value).decode(errors="replace")


def logged(records: list[logging.LogRecord]) -> str:
    """Everything the log lines carry: message, extra fields and exception text."""
    formatter = logging.Formatter()
    parts = []
    for record in records:
        parts.append(record.getMessage())
        parts.append(repr({k: v for k, v in record.__dict__.items() if k not in ("msg", "args")}))
        if record.exc_info:
            parts.append(formatter.formatException(record.exc_info))
    return "\n".join(parts)
