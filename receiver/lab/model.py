"""The lab cloud's records: flavors, hosts (each with its nova-compute service and hypervisor),
servers and migration records. Mutable on purpose; `receiver.lab.cloud.Cloud` owns them and
changes them only under its lock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

# Nova's power_state codes (nova/compute/power_state.py).
NOSTATE = 0
RUNNING = 1
SHUTDOWN = 4

# Nova's API status for each vm_state when no task changes it (nova/api/openstack/common.py).
STATUS_OF_VM_STATE = {"active": "ACTIVE", "stopped": "SHUTOFF", "error": "ERROR", "building": "BUILD"}
STATUS_OF_TASK_STATE = {
    "rebuilding": "REBUILD",
    "rebooting": "REBOOT",
    "reboot_started_hard": "HARD_REBOOT",
}


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


@dataclass
class Host:
    """One compute host: its power (the BMC's view), its nova-compute service and hypervisor."""

    name: str
    vcpus: int
    memory_mb: int
    local_gb: int
    booted_at: float
    number: int = 0  # the integer id Nova shows before microversion 2.53
    service_id: str = field(default_factory=new_uuid)
    hypervisor_id: str = field(default_factory=new_uuid)
    powered_on: bool = True
    heartbeat_when_off: float = 0.0
    forced_down: bool = False
    disabled: bool = False
    disabled_reason: str | None = None
    vcpus_used: int = 0
    memory_mb_used: int = 0
    local_gb_used: int = 0
    running_vms: int = 0


@dataclass
class Instance:
    """A server. `host` is `OS-EXT-SRV-ATTR:host` (and its hypervisor_hostname: one node per host)."""

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

    @property
    def status(self) -> str:
        if self.task_state in STATUS_OF_TASK_STATE:
            return STATUS_OF_TASK_STATE[self.task_state]
        return STATUS_OF_VM_STATE.get(self.vm_state, "UNKNOWN")


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
