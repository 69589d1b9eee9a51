"""The lab's scheduler: a pure choice of a destination host, like a tiny nova-scheduler.

Filters as Nova's defaults do (compute enabled, up, not forced down, not the source, enough
free vCPU / RAM / disk after allocation ratios, PCI devices for a PCI request: lab hosts have
none), then weighs by free RAM so evacuated servers spread out rather than pile onto one host.
CPU pinning is not modelled: a pinned server takes vCPUs like any other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class Demand:
    """What one server needs on its host (its flavor)."""

    vcpus: int
    memory_mb: int
    disk_gb: int
    pci_alias: str | None = None  # the flavor's pci_passthrough:alias, e.g. "gpu:1"


class Candidate(NamedTuple):
    """One compute host as the scheduler sees it at this moment (a tuple: built by the
    thousand for every scheduling decision)."""

    name: str
    usable: bool  # enabled, up and not forced down
    vcpus: int
    memory_mb: int
    disk_gb: int
    vcpus_used: int
    memory_mb_used: int
    disk_gb_used: int


@dataclass(frozen=True)
class AllocationRatios:
    cpu: float = 4.0
    ram: float = 1.0
    disk: float = 1.0


def fits(candidate: Candidate, demand: Demand, ratios: AllocationRatios) -> bool:
    """True when `candidate` has room for `demand` under the allocation ratios."""
    return (
        candidate.vcpus_used + demand.vcpus <= candidate.vcpus * ratios.cpu
        and candidate.memory_mb_used + demand.memory_mb <= candidate.memory_mb * ratios.ram
        and candidate.disk_gb_used + demand.disk_gb <= candidate.disk_gb * ratios.disk
    )


def choose_host(
    candidates: Iterable[Candidate],
    demand: Demand,
    *,
    exclude: str | None,
    only: str | None = None,
    ratios: AllocationRatios | None = None,
) -> str | None:
    """The best host for `demand`, or None when no host passes the filters ("No valid host").

    `exclude` is the source host (never a destination); `only` restricts the choice to one
    host, as an evacuate request with a `host` does (Nova still runs the filters on it).
    Ties go to the name that sorts first, so a given state always gives the same answer.
    """
    ratios = ratios or AllocationRatios()
    if demand.pci_alias is not None:
        return None  # PciPassthroughFilter: no lab host has a passthrough device
    best: tuple[float, str] | None = None
    for candidate in candidates:
        name, usable, vcpus, memory_mb, disk_gb, vcpus_used, memory_mb_used, disk_gb_used = candidate
        if name == exclude or not usable or (only is not None and name != only):
            continue
        # fits(), inlined: this loop runs over every host for every scheduling decision.
        free_ram = memory_mb * ratios.ram - memory_mb_used
        if (
            vcpus_used + demand.vcpus > vcpus * ratios.cpu
            or demand.memory_mb > free_ram
            or disk_gb_used + demand.disk_gb > disk_gb * ratios.disk
        ):
            continue
        key = (-free_ram, name)
        if best is None or key < best:
            best = key
    return None if best is None else best[1]


def no_valid_host_message(placeable: bool) -> str:
    """Nova's NoValidHost fault: without a reason when Placement offered no host (none enabled
    with room; a disabled compute carries COMPUTE_STATUS_DISABLED, which Placement excludes),
    "There are not enough hosts available." when the filters (compute down, PCI devices, the
    source host) rejected every host Placement offered. Both seen on the real test bed."""
    return "No valid host was found. " + ("There are not enough hosts available." if placeable else "")
