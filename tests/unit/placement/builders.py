"""Small builders for the placement tests: servers, flavors and targets in few words."""

from __future__ import annotations

from typing import Any

from receiver.domain.capacity import Capacity, DiskFacts, Target
from receiver.domain.model import Server
from receiver.domain.selection import Selection, SelectionPolicy, select_instances

BFV = DiskFacts(root_on_volume=True)
IMAGE_ONLY = DiskFacts(root_on_volume=False)
IMAGE_WITH_VOLUME = DiskFacts(root_on_volume=False, volumes=1)


def flavor(
    vcpus: int = 2, ram: int = 4096, disk: int = 20, ephemeral: int = 0, swap: int = 0, **specs: str
) -> dict[str, Any]:
    """Nova's embedded flavor (compute API >= 2.47); extra specs as keyword arguments with
    ':' written '__' (hw__cpu_policy -> hw:cpu_policy)."""
    extra = {key.replace("__", ":"): value for key, value in specs.items()}
    return {
        "vcpus": vcpus,
        "ram": ram,
        "disk": disk,
        "ephemeral": ephemeral,
        "swap": swap,
        "original_name": f"f{vcpus}-{ram}",
        "extra_specs": extra,
    }


def server(
    sid: str,
    *,
    ha: bool = True,
    priority: str | None = None,
    status: str = "ACTIVE",
    vm_state: str | None = None,
    fl: dict[str, Any] | None = None,
    name: str | None = None,
) -> Server:
    metadata = {"HA_Enabled": "True"} if ha else {}
    if priority is not None:
        metadata["lazarus:priority"] = priority
    return Server(
        sid,
        f"vm-{sid}" if name is None else name,
        "dead-1",
        status,
        vm_state=vm_state or status.lower(),
        metadata=metadata,
        flavor=fl if fl is not None else flavor(),
    )


def host(
    name: str,
    vcpus: int = 16,
    ram: int = 65536,
    disk: int = 1000,
    *,
    used: tuple[int, int, int] = (0, 0, 0),
    cpu_ratio: float = 1.0,
    pcpus: int | None = None,
    numa: int | None = None,
    enabled: bool = True,
    up: bool = True,
    reserved: bool = False,
    on_maintenance: bool = False,
) -> Target:
    """A target; `used` is (vCPU, MB RAM, GB disk) already taken."""
    return Target(
        name,
        vcpus=Capacity(vcpus, used=used[0], allocation_ratio=cpu_ratio),
        ram_mb=Capacity(ram, used=used[1]),
        disk_gb=Capacity(disk, used=used[2]),
        pcpus=None if pcpus is None else Capacity(pcpus),
        numa_nodes=numa,
        enabled=enabled,
        up=up,
        reserved=reserved,
        on_maintenance=on_maintenance,
    )


def spare(
    name: str,
    vcpus: int = 16,
    ram: int = 65536,
    disk: int = 1000,
    *,
    pcpus: int | None = None,
    up: bool = True,
    on_maintenance: bool = False,
) -> Target:
    """A reserved spare: disabled in Nova until a recovery uses it."""
    return host(
        name,
        vcpus,
        ram,
        disk,
        pcpus=pcpus,
        up=up,
        on_maintenance=on_maintenance,
        reserved=True,
        enabled=False,
    )


def select(
    servers: list[Server], targets: list[Target] | None = None, *, figures: bool = True, **policy: Any
) -> Selection:
    """Every server boots from a volume unless the test says otherwise; `figures` False:
    Nova gave no hypervisor figures (no targets known)."""
    disks = {s.id: BFV for s in servers}
    found = (targets or [host("t1")]) if figures else None
    return select_instances(
        servers, SelectionPolicy(**policy), failed_host="dead-1", disks=disks, targets=found
    )
