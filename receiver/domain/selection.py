"""Which instances of a dead host move, and in which order. Pure functions, no I/O.

Masakari's rules, where they are right (`PrepareHAEnabledInstancesTask`):
- only instances with metadata ``HA_Enabled=True``, unless the segment or the settings say
  evacuate all; then the HA-enabled ones still go first (within a priority, below);
- instances in ERROR are skipped when so configured (`ignore_instances_in_error_state`).

Ours on top, for what Masakari's users complain about:
- an order: metadata ``lazarus:priority`` (an integer, higher first; a bad value is a
  recorded warning and counts as 0); the sort is stable, so ties keep Nova's listing order;
- instances that cannot be evacuated are recorded up front with the reason and never
  attempted, instead of failing in the night:
  * PCI passthrough (flavor extra spec ``pci_passthrough:alias``): the device is part of
    the dead host;
  * a root disk on the dead host's local storage: image-backed (Nova's ``image`` is set),
    no volume attached, and neither the host nor the segment declares shared storage.
    Nova would rebuild it from its image on the target and its data would be gone;
  * pinned CPUs or a NUMA layout (``hw:cpu_policy`` dedicated or mixed, ``hw:numa_nodes``)
    that no target offers at all (a target that offers it but is full is a capacity
    question, answered by the plan).
Every instance the selection leaves out is in ``skipped`` with its reason: "what happened
to my VM?" always has an answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from receiver.domain.capacity import UNKNOWN_DISKS, Demand, DiskFacts, Needs, Target
from receiver.domain.instance import ha_enabled
from receiver.domain.model import Server
from receiver.domain.reasons import Reason

# Reasons for an instance that cannot be evacuated at all (as opposed to one left out by policy).
NON_EVACUABLE = frozenset({Reason.PCI_PASSTHROUGH, Reason.LOCAL_DISK, Reason.NUMA_UNSATISFIABLE})
# Reasons for an instance the policy leaves out (no failure: nobody asked for it to move).
LEFT_BY_POLICY = frozenset({Reason.NOT_HA_ENABLED, Reason.INSTANCE_IN_ERROR, Reason.EXCLUDED_PROJECT})

_PRIORITY = re.compile(r"[+-]?[0-9]{1,9}")
_PINNED_POLICIES = frozenset({"dedicated", "mixed"})  # mixed: counted as all dedicated (conservative)


def needs_of(server: Server, disks: DiskFacts) -> Needs:
    """Read the embedded flavor (compute API >= 2.47: vcpus, ram, disk, ephemeral, swap, extra_specs)."""
    flavor = server.flavor
    raw_specs = flavor.get("extra_specs")
    specs: Mapping[str, Any] = raw_specs if isinstance(raw_specs, Mapping) else {}
    pinned = str(specs.get("hw:cpu_policy", "")).strip().lower() in _PINNED_POLICIES
    numa_nodes = max(1, _count(specs.get("hw:numa_nodes")) or 1)
    alias = str(specs.get("pci_passthrough:alias") or "").strip() or None
    vcpus, ram = _count(flavor.get("vcpus")), _count(flavor.get("ram"))
    demand = None
    if vcpus is not None and ram is not None:
        root = 0 if disks.root_on_volume is True else _count(flavor.get("disk")) or 0
        swap_gb = math.ceil((_count(flavor.get("swap")) or 0) / 1024)
        disk = root + (_count(flavor.get("ephemeral")) or 0) + swap_gb
        demand = Demand(vcpus=0 if pinned else vcpus, pcpus=vcpus if pinned else 0, ram_mb=ram, disk_gb=disk)
    return Needs(demand, disks, alias, pinned, numa_nodes)


def _count(value: object) -> int | None:
    """A non-negative integer from Nova's JSON (an int, or a digit string); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


@dataclass(frozen=True)
class SelectionPolicy:
    evacuate_all: bool = False  # segment or settings: every instance, not only HA_Enabled ones
    skip_error: bool = False  # Masakari's ignore_instances_in_error_state
    shared_storage: bool = False  # the host or segment declares shared instance storage
    ha_key: str = "HA_Enabled"
    priority_key: str = "lazarus:priority"
    # Projects whose instances another service recovers itself (Octavia's amphorae: a rebuild
    # loses what Octavia injected at boot, and the load balancer is left in ERROR).
    exclude_projects: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Skipped:
    """An instance the selection leaves out, and why."""

    server: Server
    reason: Reason
    message: str


@dataclass(frozen=True)
class Candidate:
    """An instance to move, with what it needs and where it stands in the order."""

    server: Server
    needs: Needs
    priority: int
    ha_enabled: bool


@dataclass(frozen=True)
class Selection:
    failed_host: str  # where the instances are now: never a target
    candidates: tuple[Candidate, ...]  # to move, in order
    skipped: tuple[Skipped, ...]  # in the host's listing order
    warnings: tuple[str, ...] = ()

    @property
    def to_move(self) -> tuple[Server, ...]:
        return tuple(c.server for c in self.candidates)

    @property
    def non_evacuable(self) -> tuple[Skipped, ...]:
        return tuple(s for s in self.skipped if s.reason in NON_EVACUABLE)


def select_instances(
    servers: Sequence[Server],
    policy: SelectionPolicy,
    *,
    failed_host: str,
    disks: Mapping[str, DiskFacts],
    targets: Sequence[Target] | None,
) -> Selection:
    """Which of the dead host's `servers` to move, in order.

    `disks` maps server id to its disk facts (missing: unknown, which never counts as safe);
    `targets` are the hosts that could receive instances (scheduler hosts and spares),
    used only to tell whether a pinned / NUMA layout can run anywhere at all. The failed
    host is never one, even while Nova still reports it up. None: the targets are unknown
    (Nova would not list its hypervisors), so no layout is judged impossible; Nova decides.
    """
    if targets is not None:
        targets = [t for t in targets if t.name != failed_host]
    candidates: list[Candidate] = []
    skipped: list[Skipped] = []
    warnings: list[str] = []
    for server in servers:
        label = instance_label(server)
        if server.project_id is not None and server.project_id in policy.exclude_projects:
            message = (
                f"{label} belongs to project {server.project_id}, whose service recovers its own instances"
            )
            skipped.append(Skipped(server, Reason.EXCLUDED_PROJECT, message))
            continue
        enabled = ha_enabled(server, policy.ha_key)
        if not (enabled or policy.evacuate_all):
            message = f"{label} lacks metadata {policy.ha_key}=True and the segment does not evacuate all"
            skipped.append(Skipped(server, Reason.NOT_HA_ENABLED, message))
            continue
        if policy.skip_error and _in_error(server):
            message = f"{label} is in ERROR and the segment skips instances in ERROR"
            skipped.append(Skipped(server, Reason.INSTANCE_IN_ERROR, message))
            continue
        needs = needs_of(server, disks.get(server.id, UNKNOWN_DISKS))
        problems = _problems(server, needs, policy, targets)
        if problems:
            reason = problems[0][0]
            skipped.append(Skipped(server, reason, f"{label}: " + "; ".join(text for _, text in problems)))
            continue
        if needs.demand is None:
            warnings.append(f"{label}: no flavor details in the server record: its room cannot be checked")
        if needs.disks.root_on_volume is False and not policy.shared_storage:
            warnings.append(
                f"{label}: its image-backed root disk is rebuilt from the image; volumes keep data"
            )
        priority, problem = priority_of(server, policy.priority_key)
        if problem:
            warnings.append(problem)
        candidates.append(Candidate(server, needs, priority, enabled))
    # Stable: equal keys keep Nova's order. HA-enabled first within a priority, as Masakari does.
    candidates.sort(key=lambda c: (-c.priority, not c.ha_enabled))
    return Selection(failed_host, tuple(candidates), tuple(skipped), tuple(warnings))


def priority_of(server: Server, key: str) -> tuple[int, str | None]:
    """The instance's priority (default 0) and, for a value that is not an integer, a warning."""
    raw = server.metadata.get(key)
    if raw is None:
        return 0, None
    if _PRIORITY.fullmatch(raw.strip()):
        return int(raw.strip()), None
    return 0, f"{instance_label(server)}: metadata {key}={raw!r} is not an integer; using 0"


def instance_label(server: Server) -> str:
    return f"{server.name} ({server.id})" if server.name else server.id


def _in_error(server: Server) -> bool:
    return (server.vm_state or "").lower() == "error" or server.status.upper() == "ERROR"


def _problems(
    server: Server, needs: Needs, policy: SelectionPolicy, targets: Sequence[Target] | None
) -> list[tuple[Reason, str]]:
    """Why the instance cannot be evacuated at all, most fundamental first."""
    problems: list[tuple[Reason, str]] = []
    if needs.pci_alias:
        text = f"PCI passthrough (pci_passthrough:alias={needs.pci_alias}) stays with the host"
        problems.append((Reason.PCI_PASSTHROUGH, text))
    if not policy.shared_storage and needs.disks.volumes == 0 and needs.disks.root_on_volume is not True:
        where = f"{server.host}'s" if server.host else "the host's"
        if needs.disks.root_on_volume is None:
            text = "cannot tell whether its root disk is a volume; no volume attached and no shared storage"
        else:
            text = f"image-backed root disk on {where} local storage, no volume, no shared storage"
        problems.append((Reason.LOCAL_DISK, text + ": evacuating would lose its data"))
    if needs.has_topology and targets is not None and not any(t.offers_topology(needs) for t in targets):
        problems.append((Reason.NUMA_UNSATISFIABLE, f"{_topology(needs)}: no target offers that"))
    return problems


def _topology(needs: Needs) -> str:
    parts = []
    if needs.pinned and needs.demand is not None:
        parts.append(f"{needs.demand.pcpus} dedicated CPUs")
    elif needs.pinned:
        parts.append("dedicated CPUs")
    if needs.numa_nodes > 1:
        parts.append(f"{needs.numa_nodes} NUMA nodes")
    return "needs " + " on ".join(parts)
