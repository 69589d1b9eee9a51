"""Benchmark 1: webhook intake through a real gunicorn receiver on a real redis-server.

Three request kinds, interleaved round by round so that machine noise hits them alike:
  healthz    GET /healthz: the baseline (Flask + gunicorn, no Redis)
  new        a host-down alert for a host never seen: record + claim + enqueue
  duplicate  the same alert again: counted and linked to the open record
No RQ worker runs: queued recoveries wait, so the measurement is the intake alone and no
worker competes for the CPU. Server-side CPU per request and Redis commands per request are
read from /proc and Redis's INFO commandstats around every batch.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench.alerts import encoded, host_down_webhook, outcome_of
from bench.load import Check, LoadError, LoadResult, Request, run_load
from bench.procfs import cpu_seconds, descendants, tree_rss_kib
from bench.stats import latency_summary, percentile, ratio
from receiver.lab.stack import Stack, running_stack

TARGET_S = 1.0  # the issue: "Answer within 1 s"
GUNICORN_WORKERS = 2
WEBHOOK = "/v1/webhooks/alertmanager"


@dataclass(frozen=True)
class IntakeParams:
    clients: tuple[int, ...] = (1, 4)
    rounds: int = 5
    batch: int = 200
    warmup: int = 30


@dataclass
class _Series:
    """Everything measured for one (kind, clients) pair, summed over the rounds."""

    latencies_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    connections: int = 0
    receiver_cpu_s: float = 0.0
    redis_cpu_s: float = 0.0
    redis_calls: dict[str, int] = field(default_factory=dict)
    round_p50_ms: list[float] = field(default_factory=list)


def run(workdir: Path, params: IntakeParams) -> dict[str, Any]:
    lab = {"hosts": ("node-01",), "bmc": False}
    with running_stack(workdir, receivers=0, workers=0, lab_options=lab) as stack:
        base = stack.start_receiver(workers=GUNICORN_WORKERS)
        return _measure(stack, base, params)


def _measure(stack: Stack, base: str, params: IntakeParams) -> dict[str, Any]:
    client = redis.Redis.from_url(stack.redis.url)
    redis_pid = _pid(stack.redis.process)
    arbiter = stack.receivers[0][0].process.pid
    kinds = _kinds(stack, base)
    for kind, (make, check) in kinds.items():  # first requests import lazily and warm caches
        _load(base, make, check, params.warmup, max(params.clients), what=f"warm-up {kind}")
    series: dict[tuple[str, int], _Series] = {}
    for clients in params.clients:
        for _ in range(params.rounds):
            for kind, (make, check) in kinds.items():
                measured = series.setdefault((kind, clients), _Series())
                client.config_resetstat()
                cpu_before = _tree_cpu(arbiter), cpu_seconds(redis_pid)
                result = _load(base, make, check, params.batch, clients, what=kind)
                measured.receiver_cpu_s += _tree_cpu(arbiter) - cpu_before[0]
                measured.redis_cpu_s += cpu_seconds(redis_pid) - cpu_before[1]
                measured.latencies_s += result.latencies_s
                measured.wall_s += result.wall_s
                measured.connections += result.connections
                measured.round_p50_ms.append(percentile(result.latencies_s, 0.5) * 1000)
                for command, calls in _command_calls(client).items():
                    measured.redis_calls[command] = measured.redis_calls.get(command, 0) + calls
    info = client.info()
    return {
        "parameters": {
            "gunicorn_workers": GUNICORN_WORKERS,
            "gunicorn_worker_class": "sync (gunicorn default; closes the connection after each answer)",
            "rq_workers": 0,
            "clients": list(params.clients),
            "rounds": params.rounds,
            "requests_per_round": params.batch,
            "warmup_requests": params.warmup,
            "target_s": TARGET_S,
            "redis_version": info.get("redis_version"),
            "redis_persistence": "AOF, appendfsync everysec",
        },
        "series": [_summary(kind, clients, s, series) for (kind, clients), s in series.items()],
        "receiver_rss_kib": tree_rss_kib(arbiter),
        "redis_used_memory_kib": int(info.get("used_memory", 0)) // 1024,
        "records_created": params.warmup + params.batch * params.rounds * len(params.clients) + 1,
    }


def _kinds(stack: Stack, base: str) -> dict[str, tuple[Callable[[int], Request], Check]]:
    auth = {"Authorization": f"Bearer {stack.token}", "Content-Type": "application/json"}
    run_id = uuid.uuid4().hex[:8]
    fresh = itertools.count()  # distinct hosts across every batch of the run

    def new_alert(_: int) -> Request:
        body = encoded(host_down_webhook(f"bench-{run_id}-{next(fresh):06d}"))
        return Request("POST", WEBHOOK, body, auth)

    repeated = encoded(host_down_webhook(f"bench-{run_id}-repeated"))

    # Its first delivery creates the recovery; every later one is a duplicate.
    def again(_: int) -> Request:
        return Request("POST", WEBHOOK, repeated, auth)

    _load(base, again, _outcome("recovery_created"), 1, 1, what="first delivery of the repeated alert")
    return {
        "healthz": (lambda _: Request("GET", "/healthz"), _status_ok),
        "new": (new_alert, _outcome("recovery_created")),
        "duplicate": (again, _outcome("duplicate")),
    }


def _load(
    base: str, make: Callable[[int], Request], check: Check, total: int, clients: int, *, what: str
) -> LoadResult:
    result = run_load(base, make, total=total, clients=clients, check=check)
    if result.error_count:
        raise LoadError(f"{what}: {result.error_count}/{total} requests failed, e.g. {result.errors[:3]}")
    return result


def _status_ok(status: int, payload: bytes) -> str | None:
    return None if status == 200 else f"status {status}: {payload[:200]!r}"


def _outcome(expected: str) -> Check:
    def check(status: int, payload: bytes) -> str | None:
        if status != 200:
            return f"status {status}: {payload[:200]!r}"
        got = outcome_of(payload)
        return None if got == expected else f"outcome {got!r}, expected {expected!r}"

    return check


def _summary(kind: str, clients: int, s: _Series, every: dict[tuple[str, int], _Series]) -> dict[str, Any]:
    n = len(s.latencies_s)
    latency = latency_summary(s.latencies_s, s.wall_s)
    baseline = latency_summary(every[("healthz", clients)].latencies_s)
    return {
        "kind": kind,
        "clients": clients,
        **latency,
        "p99_over_target": latency["p99_ms"] / 1000 / TARGET_S,
        "p50_over_healthz": ratio(latency["p50_ms"], baseline["p50_ms"]),
        "p99_over_healthz": ratio(latency["p99_ms"], baseline["p99_ms"]),
        "round_p50_ms": s.round_p50_ms,
        "connections_opened": s.connections,
        "receiver_cpu_ms_per_request": s.receiver_cpu_s / n * 1000,
        "redis_cpu_ms_per_request": s.redis_cpu_s / n * 1000,
        "redis_commands_per_request": round(sum(s.redis_calls.values()) / n, 2),
        "redis_commands": {
            k: round(v / n, 2) for k, v in sorted(s.redis_calls.items(), key=lambda kv: -kv[1])
        },
    }


def _command_calls(client: redis.Redis) -> dict[str, int]:
    """Commands Redis ran since CONFIG RESETSTAT, without our own CONFIG/INFO calls."""
    stats: dict[str, Any] = client.info("commandstats")
    calls = {}
    for name, values in stats.items():
        command = name.removeprefix("cmdstat_")
        if not command.startswith(("config", "info")):
            calls[command] = int(values["calls"])
    return calls


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its live descendants (gunicorn's arbiter and workers)."""
    total = 0.0
    for member in [pid, *descendants(pid)]:
        try:
            total += cpu_seconds(member)
        except OSError:
            continue
    return total


def _pid(process: Any) -> int:
    if process is None:
        raise RuntimeError("redis-server is not running")
    return int(process.pid)
