"""A small closed-loop HTTP load generator: N client threads, stdlib http.client, keep-alive.

Each client sends its next request as soon as the previous answer is read. A client reuses
its connection while the server keeps it open (gunicorn's sync workers close after every
response, the lab keeps it) and reconnects otherwise; the connect time is part of the
measured latency, as it is for Alertmanager. Requests are built and answers are checked
outside the timed window.
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_ERRORS_KEPT = 20


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


# (status, body) -> None when the answer is right, else what is wrong with it.
Check = Callable[[int, bytes], str | None]


@dataclass
class LoadResult:
    latencies_s: list[float]
    wall_s: float
    connections: int
    errors: list[str]
    error_count: int


class LoadError(RuntimeError):
    """Requests failed or were answered wrongly: the benchmark measured the wrong thing."""


def run_load(
    base_url: str,
    make_request: Callable[[int], Request],
    *,
    total: int,
    clients: int,
    check: Check,
    timeout_s: float = 30.0,
) -> LoadResult:
    """Send `total` requests (request i = make_request(i)) from `clients` threads."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    requests = [make_request(i) for i in range(total)]
    next_index = itertools.count()
    index_lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    results: list[_ClientResult] = [_ClientResult() for _ in range(clients)]

    def client(mine: _ClientResult) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
        start.wait()
        while True:
            with index_lock:
                i = next(next_index)
            if i >= total:
                break
            mine.run(connection, requests[i], check)
        connection.close()

    threads = [threading.Thread(target=client, args=(r,), daemon=True) for r in results]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    errors = [e for r in results for e in r.errors]
    return LoadResult(
        latencies_s=[s for r in results for s in r.latencies_s],
        wall_s=wall,
        connections=sum(r.connections for r in results),
        errors=errors[:MAX_ERRORS_KEPT],
        error_count=sum(r.error_count for r in results),
    )


@dataclass
class _ClientResult:
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    connections: int = 0

    def run(self, connection: http.client.HTTPConnection, request: Request, check: Check) -> None:
        began = time.perf_counter()
        try:
            if connection.sock is None:
                connection.connect()
                self.connections += 1
            connection.request(request.method, request.path, body=request.body, headers=request.headers)
            response = connection.getresponse()
            payload = response.read()
            elapsed = time.perf_counter() - began
            if response.will_close:
                connection.close()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            self._fail(f"{request.method} {request.path}: {type(error).__name__}: {error}")
            return
        self.latencies_s.append(elapsed)
        problem = check(response.status, payload)
        if problem is not None:
            self._fail(f"{request.method} {request.path}: {problem}")

    def _fail(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(message)
