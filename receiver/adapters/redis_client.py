"""Connecting to Redis, and its connection trouble in our vocabulary (StoreUnavailable).

Every adapter that keeps state in Redis goes through `translate_errors`, so a lost or read-only
Redis reads the same everywhere (safety rule 4: the intake answers 503) and no error carries
the Redis URL, which may hold a password (safety rule 7).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from receiver.errors import StoreUnavailable


def connect(
    url: str,
    *,
    sentinels: list[str] | None = None,
    master: str = "mymaster",
    socket_timeout: float | None = 0.5,
) -> redis.Redis:
    """A Redis client; with sentinels, one that follows the current master."""
    if sentinels:
        from redis.sentinel import Sentinel

        nodes = []
        for node in sentinels:
            host, _, port = node.rpartition(":")
            nodes.append((host, int(port)))
        kwargs = redis.connection.parse_url(url)
        kwargs.pop("host", None)
        kwargs.pop("port", None)
        sentinel = Sentinel(nodes, socket_timeout=socket_timeout, **kwargs)
        client: redis.Redis = sentinel.master_for(master, socket_timeout=socket_timeout)
        return client
    connect_timeout = socket_timeout if socket_timeout is not None else 5.0
    return redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout)


@contextmanager
def translate_errors() -> Iterator[None]:
    """Redis connection trouble becomes StoreUnavailable, without the URL (it may hold a password)."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreUnavailable(f"redis unreachable: {type(exc).__name__}") from None
    except redis.exceptions.ReadOnlyError:
        raise StoreUnavailable("redis is a read-only replica (failover in progress?)") from None


def as_text(value: bytes | str) -> str:
    """A value Redis returned, as text (a client without decode_responses returns bytes)."""
    return value.decode() if isinstance(value, bytes) else value
