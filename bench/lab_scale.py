"""Benchmark 2: the lab at scale. Start time and memory of a 1,000-host / 20,000-server lab, and
the compute API calls a recovery makes about one host, against a 3-host lab with the same number
of servers per host running beside it (queries alternate between the two labs).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.load import Check, LoadError, Request, run_load
from bench.procfs import cpu_seconds, memory_kib
from bench.stats import latency_summary, ratio
from receiver.lab.manifest import LabManifest
from receiver.lab.testing import LabControl, running_lab
from receiver.lab.topology import LabOptions

ROUND = 10  # requests per lab and endpoint before switching to the other lab


@dataclass(frozen=True)
class LabScaleParams:
    hosts: int = 1000
    servers_per_host: int = 20
    bmc_hosts: int = 3
    small_hosts: int = 3
    queries: int = 60  # per lab and endpoint
    idle_window_s: float = 3.0


@dataclass
class _Lab:
    name: str
    hosts: int
    manifest: LabManifest
    start_s: float
    host: str  # the host the queries ask about


def run(workdir: Path, params: LabScaleParams) -> dict[str, Any]:
    with ExitStack() as labs:
        big = _start(labs, workdir / "lab-big", params.hosts, params)
        small = _start(labs, workdir / "lab-small", params.small_hosts, params)
        rss_after_start = {lab.name: memory_kib(lab.manifest.pid) for lab in (big, small)}
        servers = {lab.name: _server_count(lab) for lab in (big, small)}
        for lab in (big, small):
            if servers[lab.name] != lab.hosts * params.servers_per_host:
                raise RuntimeError(
                    f"lab {lab.name} built {servers[lab.name]} servers, not "
                    f"{lab.hosts} x {params.servers_per_host}"
                )
        idle = _idle_cpu((big, small), params.idle_window_s)
        endpoints = _endpoints(params.servers_per_host)
        latencies = _query((big, small), endpoints, params.queries)
        rss_after_queries = {lab.name: memory_kib(lab.manifest.pid) for lab in (big, small)}
    labs_out: dict[str, dict[str, Any]] = {}
    for lab in (big, small):
        labs_out[lab.name] = {
            "hosts": lab.hosts,
            "servers": servers[lab.name],
            "bmcs": min(params.bmc_hosts, lab.hosts),
            "start_s": lab.start_s,
            "queried_host": lab.host,
            "memory_after_start": rss_after_start[lab.name],
            "memory_after_queries": rss_after_queries[lab.name],
            "idle_cpu_fraction": idle[lab.name],
            "endpoints": {ep: latency_summary(latencies[(lab.name, ep)]) for ep in endpoints},
        }
    big_rss, small_rss = rss_after_start["big"]["rss_kib"], rss_after_start["small"]["rss_kib"]
    extra_servers = (params.hosts - params.small_hosts) * params.servers_per_host
    return {
        "parameters": {
            "hosts": params.hosts,
            "servers_per_host": params.servers_per_host,
            "bmc_hosts": params.bmc_hosts,
            "small_hosts": params.small_hosts,
            "queries_per_endpoint": params.queries,
            "idle_window_s": params.idle_window_s,
            "client": "http.client, one keep-alive connection per lab, one request at a time",
        },
        "labs": labs_out,
        "ratios_big_over_small": {
            "start_s": ratio(big.start_s, small.start_s),
            "rss": ratio(big_rss, small_rss),
            **{
                f"{ep}_p50": ratio(
                    labs_out["big"]["endpoints"][ep]["p50_ms"], labs_out["small"]["endpoints"][ep]["p50_ms"]
                )
                for ep in endpoints
            },
        },
        "rss_kib_per_extra_server": (big_rss - small_rss) / extra_servers if extra_servers else None,
    }


def _start(labs: ExitStack, workdir: Path, hosts: int, params: LabScaleParams) -> _Lab:
    names = LabOptions(host_count=hosts).host_names()
    options = {
        "host_count": hosts,
        "servers_per_host": params.servers_per_host,
        "bmc_hosts": names[: params.bmc_hosts],
    }
    began = time.perf_counter()
    manifest = labs.enter_context(running_lab(workdir, **options))
    took = time.perf_counter() - began
    return _Lab("big" if hosts == params.hosts else "small", hosts, manifest, took, names[len(names) // 2])


def _server_count(lab: _Lab) -> int:
    """As the lab itself reports it, so a lab that built fewer servers cannot pass unnoticed."""
    by_status: dict[str, int] = LabControl(lab.manifest).status()["servers"]
    return sum(by_status.values())


def _idle_cpu(labs: tuple[_Lab, ...], window_s: float) -> dict[str, float]:
    """CPU fraction each lab uses while nobody talks to it (its heartbeat ticker)."""
    before = {lab.name: cpu_seconds(lab.manifest.pid) for lab in labs}
    began = time.perf_counter()
    time.sleep(window_s)  # a measurement window, not a wait for a condition
    elapsed = time.perf_counter() - began
    return {lab.name: (cpu_seconds(lab.manifest.pid) - before[lab.name]) / elapsed for lab in labs}


def _endpoints(servers_per_host: int) -> dict[str, tuple[str, Check]]:
    """Name -> (path with {host}, check): the calls the Nova adapter makes about one host."""
    return {
        "servers_on_host": (
            "/servers/detail?all_tenants=1&host={host}",
            _count_check("servers", servers_per_host),
        ),
        "compute_service": ("/os-services?binary=nova-compute&host={host}", _count_check("services", 1)),
    }


def _count_check(key: str, expected: int) -> Check:
    def check(status: int, payload: bytes) -> str | None:
        if status != 200:
            return f"status {status}: {payload[:200]!r}"
        got = len(json.loads(payload).get(key, []))
        return None if got == expected else f"{got} {key}, expected {expected}"

    return check


def _query(
    labs: tuple[_Lab, ...], endpoints: dict[str, tuple[str, Check]], queries: int
) -> dict[tuple[str, str], list[float]]:
    found: dict[tuple[str, str], list[float]] = {}
    for _ in range(-(-queries // ROUND)):
        for lab in labs:
            url = urlsplit(lab.manifest.nova_endpoint)
            headers = {"X-Auth-Token": lab.manifest.token, "OpenStack-API-Version": "compute 2.94"}
            for name, (template, check) in endpoints.items():
                request = Request("GET", url.path + template.format(host=lab.host), None, headers)
                result = run_load(
                    f"{url.scheme}://{url.netloc}",
                    _always(request),
                    total=ROUND,
                    clients=1,
                    check=check,
                )
                if result.error_count:
                    raise LoadError(f"lab {lab.name} {name}: {result.errors[:3]}")
                found.setdefault((lab.name, name), []).extend(result.latencies_s)
    return found


def _always(request: Request) -> Callable[[int], Request]:
    return lambda _: request
