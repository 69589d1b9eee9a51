"""The lab cloud's records: flavors, hosts (each with its nova-compute service and hypervisor),
servers and migration records. Mutable on purpose; `receiver.lab.cloud.Cloud` owns them and
changes them only under its lock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

# Nova's power_state codes (nova/compute/power_state.py).
NOSTATE = 0
RUNNING = 1
SHUTDOWN = 4
CRASHED = 6

# Nova's API status of each (vm_state, task_state), from nova/api/openstack/common.py's _STATE_MAP
# for the states the lab uses: "default" when no listed task changes it.
_REBUILD = {"rebuilding": "REBUILD", "rebuild_block_device_mapping": "REBUILD", "rebuild_spawning": "REBUILD"}
STATUS_MAP: dict[str, dict[str, str]] = {
    "active": {
        "default": "ACTIVE",
        "rebooting": "REBOOT",
        "reboot_pending": "REBOOT",
        "reboot_started": "REBOOT",
        "rebooting_hard": "HARD_REBOOT",
        "reboot_pending_hard": "HARD_REBOOT",
        "reboot_started_hard": "HARD_REBOOT",
        **_REBUILD,
    },
    "building": {"default": "BUILD"},
    "stopped": {"default": "SHUTOFF", **_REBUILD},
    "error": {"default": "ERROR", **_REBUILD},
}


# Nova's reserved_host_memory_mb default: part of every host's memory_mb_used, and of
# Placement's MEMORY_MB `reserved`, so an empty host reports 512 MB used (as on the test bed).
RESERVED_HOST_MEMORY_MB = 512


def new_uuid() -> str:
    return str(uuid.uuid4())


class NovaError(Exception):
    """A refusal the simulated API turns into Nova's error body (`badRequest`, `itemNotFound`, ...)."""

    KINDS: ClassVar[dict[int, str]] = {
        400: "badRequest",
        403: "forbidden",
        404: "itemNotFound",
        406: "computeFault",
        409: "conflictingRequest",
    }

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def kind(self) -> str:
        return self.KINDS.get(self.status, "computeFault")


@dataclass(frozen=True)
class Flavor:
    id: str
    name: str
    vcpus: int
    ram: int
    disk: int
    ephemeral: int = 0
    swap: int = 0
    extra_specs: dict[str, str] = field(default_factory=dict)
    description: str | None = None


class Condition(StrEnum):
    """What a host is doing, as seen from outside; only RUNNING heartbeats and does work."""

    RUNNING = "running"  # powered on, nova-compute heartbeats and carries out requests
    HUNG = "hung"  # powered on (the BMC says ON) but frozen: no heartbeat, no work, guests unreachable
    COMPUTE_DEAD = "compute_dead"  # powered on, guests run, but nova-compute is dead: no heartbeat, no work
    OFF = "off"  # powered off: no heartbeat, no work, guests gone


@dataclass
class Host:
    """One compute host: its condition (power, as the BMC reports it, and whether its
    nova-compute runs), its nova-compute service and hypervisor."""

    name: str
    vcpus: int
    memory_mb: int
    local_gb: int
    heartbeat_since: float  # start of the current run of heartbeats (boot, restart, recovery)
    number: int = 0  # the integer id Nova shows before microversion 2.53
    service_id: str = field(default_factory=new_uuid)
    hypervisor_id: str = field(default_factory=new_uuid)
    condition: Condition = Condition.RUNNING
    hung_from: Condition = Condition.RUNNING  # the condition a hung host returns to when it recovers
    last_heartbeat_at: float = 0.0  # the last heartbeat sent, kept while the host is not RUNNING
    forced_down: bool = False
    disabled: bool = False
    disabled_reason: str | None = None
    vcpus_used: int = 0
    memory_mb_used: int = RESERVED_HOST_MEMORY_MB
    local_gb_used: int = 0
    running_vms: int = 0
    # What servers that left while this host's nova-compute was not running still count here:
    # only its own resource tracker updates its figures, when its compute runs again.
    unreleased: list[Usage] = field(default_factory=list)

    @property
    def powered_on(self) -> bool:
        """What the host's BMC reports: a hung host, or one whose compute died, is still ON."""
        return self.condition is not Condition.OFF

    @property
    def working(self) -> bool:
        """True when its nova-compute heartbeats and carries out what it is sent."""
        return self.condition is Condition.RUNNING


@dataclass(frozen=True)
class Usage:
    """What one server takes from its host, in os-hypervisors' figures."""

    vcpus: int
    memory_mb: int
    disk_gb: int


@dataclass
class Instance:
    """A server. `host` is `OS-EXT-SRV-ATTR:host` (and its hypervisor_hostname: one node per host).

    `power_state` is Nova's record (`OS-EXT-STS:power_state`), not the hypervisor's live view:
    nova-compute writes it when it changes the guest's power itself and when its power-state
    sync runs. A guest that stops on its own leaves it at RUNNING until then; meanwhile
    `unsynced_power_state` holds what the hypervisor reports.
    """

    id: str
    name: str
    project_id: str
    user_id: str
    flavor: Flavor
    host: str | None
    vm_state: str
    power_state: int
    created: float
    updated: float
    task_state: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    locked: bool = False
    locked_reason: str | None = None
    fault: dict[str, Any] | None = None
    image_id: str = "11111111-1111-4111-8111-111111111111"
    root_volume: str | None = None  # booted from this volume: Nova shows `"image": ""`
    volumes: list[str] = field(default_factory=list)  # attached data volumes (ids)
    launched_at: float | None = None  # None until it first ran; Nova evacuates only launched servers
    unsynced_power_state: int | None = None  # the hypervisor's, while Nova's record lags; None: as recorded

    @property
    def hypervisor_power_state(self) -> int:
        """What the hypervisor (libvirt) reports for the guest now."""
        return self.power_state if self.unsynced_power_state is None else self.unsynced_power_state

    def record_power_state(self, state: int) -> None:
        """nova-compute read `state` from its driver and saved it: Nova's record is current again."""
        self.power_state, self.unsynced_power_state = state, None

    @property
    def usage(self) -> Usage:
        """Nova's resource tracker: a root disk on a volume takes no local disk; swap counts in GB."""
        root = 0 if self.root_volume is not None else self.flavor.disk
        return Usage(
            self.flavor.vcpus, self.flavor.ram, root + self.flavor.ephemeral + self.flavor.swap // 1024
        )

    @property
    def status(self) -> str:
        by_task = STATUS_MAP.get(self.vm_state)
        if by_task is None:
            return "UNKNOWN"
        return by_task.get(self.task_state or "default", by_task["default"])


@dataclass
class AggregateRecord:
    """A host aggregate (os-aggregates); its availability zone is its metadata's."""

    id: int
    uuid: str
    name: str
    created_at: float
    hosts: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    updated_at: float | None = None

    @property
    def availability_zone(self) -> str | None:
        return self.metadata.get("availability_zone")


@dataclass
class MigrationRecord:
    id: int
    uuid: str
    instance_uuid: str
    migration_type: str
    source_compute: str | None
    dest_compute: str | None
    status: str
    created_at: float
    updated_at: float
    project_id: str
    user_id: str
    flavor_id: str
