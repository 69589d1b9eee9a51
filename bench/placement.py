"""Benchmark 5: the capacity plan's cost, the pure part of a host recovery's pre-flight.

`select_instances` + `plan_placement` for a dead host's instances against the cloud's
compute hosts, for each recovery method, measured side by side in one run at a small and a
large size. The plan is O(instances x targets); `large_over_small` against `work_ratio` (the
ratio of instances x targets) says whether it scales as designed. Memory: the peak
tracemalloc allocation of one large plan.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from receiver.domain.capacity import Capacity, DiskFacts, Target
from receiver.domain.model import Server
from receiver.domain.placement import plan_placement
from receiver.domain.selection import SelectionPolicy, select_instances
from receiver.inventory import RecoveryMethod

FAILED = "dead-0001"


@dataclass(frozen=True)
class PlacementParams:
    sizes: tuple[tuple[int, int], ...] = ((20, 50), (200, 1000))  # (instances, targets)
    spares: int = 10
    repeats: int = 15


def run(workdir: Path, params: PlacementParams) -> dict[str, Any]:
    del workdir  # pure computation: no processes, no files
    rows = []
    for method in RecoveryMethod:
        timings = {size: _time(size, method, params) for size in params.sizes}
        small, large = params.sizes[0], params.sizes[-1]
        rows.append(
            {
                "method": method.value,
                "ms_median": {f"{n}x{t}": timings[(n, t)] for n, t in params.sizes},
                "large_over_small": timings[large] / timings[small],
                "work_ratio": (large[0] * large[1]) / (small[0] * small[1]),
            }
        )
    return {
        "parameters": {
            "sizes": [list(s) for s in params.sizes],
            "spares": params.spares,
            "repeats": params.repeats,
        },
        "methods": rows,
        "large_plan_peak_kib": _peak_kib(params.sizes[-1], params),
    }


def _time(size: tuple[int, int], method: RecoveryMethod, params: PlacementParams) -> float:
    servers, targets, spares = _cloud(*size, params.spares)
    samples = []
    for _ in range(params.repeats):
        began = time.perf_counter()
        _plan(servers, targets, spares, method)
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def _peak_kib(size: tuple[int, int], params: PlacementParams) -> float:
    servers, targets, spares = _cloud(*size, params.spares)
    tracemalloc.start()
    try:
        _plan(servers, targets, spares, RecoveryMethod.RH_PRIORITY)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1024


def _plan(servers: list[Server], targets: list[Target], spares: list[str], method: RecoveryMethod) -> None:
    selection = select_instances(
        servers,
        SelectionPolicy(shared_storage=True),
        failed_host=FAILED,
        disks={s.id: DiskFacts(root_on_volume=False) for s in servers},
        targets=targets,
    )
    plan_placement(selection, targets, method, spares)


def _cloud(instances: int, hosts: int, spares: int) -> tuple[list[Server], list[Target], list[str]]:
    """Mixed flavors and priorities; hosts half full, so some instances do not fit everywhere."""
    flavors = [(1, 2048, 20), (2, 4096, 40), (4, 8192, 80), (8, 32768, 160)]
    servers = []
    for i in range(instances):
        vcpus, ram, disk = flavors[i % len(flavors)]
        flavor = {"vcpus": vcpus, "ram": ram, "disk": disk, "ephemeral": 0, "swap": 0, "extra_specs": {}}
        metadata = {"HA_Enabled": "True", "lazarus:priority": str(i % 3)}
        servers.append(
            Server(f"i-{i:05d}", f"vm-{i:05d}", FAILED, "ACTIVE", metadata=metadata, flavor=flavor)
        )
    targets = [
        Target(
            name=f"node-{h:04d}",
            vcpus=Capacity(64, 40 + h % 20, allocation_ratio=4.0),
            ram_mb=Capacity(262144, 131072 + (h % 7) * 16384),
            disk_gb=Capacity(4000, 2000),
            reserved=h < spares,
            enabled=h >= spares,
        )
        for h in range(hosts)
    ]
    return servers, targets, [t.name for t in targets[:spares]]
