"""What hosts offer and instances take, in Placement's terms. Plain values, no I/O.

Room per resource is Placement's: ``(total - reserved) * allocation_ratio - used``, and at
most ``max_unit`` for one instance. Pinned instances take dedicated CPUs (PCPU), the others
shared ones (VCPU); disk is what the target must hold locally (DISK_GB): the root disk
unless it is a volume, the ephemeral disk and the swap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_UNITS = {"vcpus": "vCPU", "pcpus": "dedicated CPU", "ram_mb": "MB RAM", "disk_gb": "GB disk"}


@dataclass(frozen=True)
class DiskFacts:
    """Where an instance's disks live, from the server record."""

    root_on_volume: bool | None  # booted from volume; None: the record did not say
    volumes: int = 0  # volumes attached (os-extended-volumes:volumes_attached)

    @classmethod
    def from_nova(cls, image: object, volumes_attached: object) -> DiskFacts:
        """From the server's ``image`` and ``os-extended-volumes:volumes_attached`` fields.

        Nova answers ``"image": ""`` for a server booted from a volume and an object with an
        ``id`` for an image-backed one; anything else (a partial record from a down cell)
        proves nothing.
        """
        if image == "":
            root: bool | None = True
        elif isinstance(image, Mapping) and image.get("id"):
            root = False
        else:
            root = None
        volumes = len(volumes_attached) if isinstance(volumes_attached, list) else 0
        return cls(root, volumes)


UNKNOWN_DISKS = DiskFacts(root_on_volume=None)


@dataclass(frozen=True)
class Demand:
    """What one instance takes on its target, in Placement's resource classes."""

    vcpus: int = 0  # shared CPUs (VCPU)
    pcpus: int = 0  # dedicated CPUs (PCPU): hw:cpu_policy dedicated or mixed
    ram_mb: int = 0  # MEMORY_MB
    disk_gb: int = 0  # DISK_GB on the target: root (unless a volume) + ephemeral + swap

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.vcpus, self.pcpus, self.ram_mb, self.disk_gb)

    @classmethod
    def of(cls, values: Sequence[int]) -> Demand:
        vcpus, pcpus, ram_mb, disk_gb = values
        return cls(vcpus, pcpus, ram_mb, disk_gb)

    def __add__(self, other: Demand) -> Demand:
        return Demand.of([a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)])

    @property
    def is_zero(self) -> bool:
        return not any(self.as_tuple())

    def describe(self) -> str:
        """``4 vCPU, 8192 MB RAM, 40 GB disk``: the non-zero resources."""
        parts = [f"{value} {_UNITS[name]}" for name, value in self.items() if value]
        return ", ".join(parts) or "nothing"

    def items(self) -> tuple[tuple[str, int], ...]:
        return tuple(zip(_UNITS, self.as_tuple(), strict=True))


def unit(resource: str) -> str:
    return _UNITS[resource]


@dataclass(frozen=True)
class Needs:
    """What an instance requires of a target, read from its flavor and its disks."""

    demand: Demand | None  # None: the record carries no flavor details (needs compute API >= 2.47)
    disks: DiskFacts
    pci_alias: str | None = None
    pinned: bool = False
    numa_nodes: int = 1

    @property
    def has_topology(self) -> bool:
        return self.pinned or self.numa_nodes > 1


@dataclass(frozen=True)
class Capacity:
    """One resource of one host, as Placement counts it."""

    total: int
    used: int = 0
    reserved: int = 0
    allocation_ratio: float = 1.0
    max_unit: int | None = None  # the most one instance may take

    @property
    def limit(self) -> int:
        return math.floor((self.total - self.reserved) * self.allocation_ratio)

    @property
    def free(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def largest_instance(self) -> int:
        """The most one instance could ever take here, the host empty."""
        return self.limit if self.max_unit is None else min(self.limit, self.max_unit)


NO_CAPACITY = Capacity(total=0)


@dataclass(frozen=True)
class Target:
    """A host that may receive instances: Placement's inventories and usages of its compute
    node (VCPU, PCPU, MEMORY_MB, DISK_GB), its nova-compute service, and the inventory's
    reserved and maintenance flags."""

    name: str  # the nova-compute service host: what evacuate's `host` takes
    vcpus: Capacity
    ram_mb: Capacity
    disk_gb: Capacity
    pcpus: Capacity | None = None  # dedicated CPUs (cpu_dedicated_set); None: none
    numa_nodes: int | None = None  # None: unknown (never ruled out on that ground)
    enabled: bool = True  # nova-compute enabled
    up: bool = True  # nova-compute up and not forced down
    reserved: bool = False  # a reserved spare (kept disabled in Nova until used)
    on_maintenance: bool = False

    @property
    def schedulable(self) -> bool:
        """A host Nova's scheduler may choose now."""
        return self.enabled and self.up and not self.on_maintenance and not self.reserved

    @property
    def usable_as_spare(self) -> bool:
        """A spare must run (we enable it); disabled is its normal state."""
        return self.up and not self.on_maintenance

    def offers_topology(self, needs: Needs) -> bool:
        """Whether it could ever run this CPU pinning / NUMA layout (empty or not)."""
        if not (self.schedulable or (self.reserved and self.usable_as_spare)):
            return False
        if needs.pinned:
            wanted = needs.demand.pcpus if needs.demand is not None else 1
            if self.pcpus is None or self.pcpus.largest_instance < wanted:
                return False
        return self.numa_nodes is None or self.numa_nodes >= needs.numa_nodes


def shortfall_text(shortfall: Demand) -> str:
    if shortfall.is_zero:
        return "enough in total, but no single host has room for all of one instance"
    return "short " + shortfall.describe()


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


@dataclass(frozen=True)
class HypervisorReport:
    """One compute host's resources as Nova's os-hypervisors (microversion <= 2.87) reports them.

    Nova's `*_used` figures already include its reserved host memory and disk; vCPUs are
    physical, before the allocation ratio. Several nodes of one service host are summed.
    """

    host: str  # the nova-compute service host (what evacuate's `host` takes)
    vcpus: int
    vcpus_used: int
    memory_mb: int
    memory_mb_used: int
    local_gb: int
    local_gb_used: int
    enabled: bool
    up: bool


@dataclass(frozen=True)
class AllocationRatios:
    """Nova's allocation ratios (os-hypervisors does not report them): its defaults."""

    cpu: float = 4.0
    ram: float = 1.0
    disk: float = 1.0


def target_from_report(
    report: HypervisorReport,
    ratios: AllocationRatios,
    *,
    reserved: bool = False,
    on_maintenance: bool = False,
) -> Target:
    """A placement target from Nova's report and the inventory's flags.

    os-hypervisors does not split shared from dedicated CPUs: a pinned instance is counted
    against the host's physical CPUs (ratio 1), a conservative stand-in for Placement's PCPU.
    """
    return Target(
        name=report.host,
        vcpus=Capacity(report.vcpus, report.vcpus_used, allocation_ratio=ratios.cpu),
        ram_mb=Capacity(report.memory_mb, report.memory_mb_used, allocation_ratio=ratios.ram),
        disk_gb=Capacity(report.local_gb, report.local_gb_used, allocation_ratio=ratios.disk),
        pcpus=Capacity(report.vcpus, report.vcpus_used),
        enabled=report.enabled,
        up=report.up,
        reserved=reserved,
        on_maintenance=on_maintenance,
    )
