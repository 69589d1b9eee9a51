"""Value types in Lazarus's own vocabulary. Adapters translate to and from these;
no pyghmi or openstacksdk object ever crosses a port."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from receiver.domain.capacity import UNKNOWN_DISKS, DiskFacts


class Secret:
    """A string that never shows itself in repr, str, logs or JSON."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class PowerState(enum.StrEnum):
    ON = "on"
    OFF = "off"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class BmcTarget:
    """How to reach one host's BMC. The password is a `Secret`, resolved from its reference."""

    host: str
    address: str
    port: int
    username: str
    password: Secret = field(repr=False)
    driver: str = "ipmi"
    insecure: bool = False  # redfish: skip TLS verification (labs only)


@dataclass(frozen=True)
class ComputeService:
    """Nova's `nova-compute` service record for one host."""

    id: str
    host: str
    state: str  # "up" | "down"
    status: str  # "enabled" | "disabled"
    forced_down: bool
    disabled_reason: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Server:
    """A Nova instance as Lazarus needs to see it."""

    id: str
    name: str
    host: str | None  # OS-EXT-SRV-ATTR:host
    status: str  # ACTIVE, SHUTOFF, REBUILD, ERROR, ...
    vm_state: str | None = None  # OS-EXT-STS:vm_state
    task_state: str | None = None  # OS-EXT-STS:task_state
    metadata: dict[str, str] = field(default_factory=dict)
    flavor: dict[str, Any] = field(default_factory=dict)
    locked: bool = False
    power_state: int | None = None  # OS-EXT-STS:power_state: 1 running, 4 shutdown, 6 crashed
    locked_reason: str | None = None  # 2.73+
    disks: DiskFacts = UNKNOWN_DISKS  # from `image` and `os-extended-volumes:volumes_attached`
    project_id: str | None = None  # tenant_id
    fault: str | None = None  # fault.message of a server in ERROR (why Nova put it there)


@dataclass(frozen=True)
class Migration:
    """One of Nova's migration records (`os-migrations`), e.g. an evacuation."""

    id: str
    instance_id: str
    source_host: str | None
    dest_host: str | None
    status: str  # accepted, pre-migrating, done, completed, failed, error
    migration_type: str  # evacuation, migration, live-migration, resize
    created_at: datetime | None = None


@dataclass(frozen=True)
class ServerAction:
    """One of Nova's instance actions (`os-instance-actions`): who asked what, when."""

    action: str  # stop, start, reboot, evacuate, ...
    request_id: str
    user_id: str | None  # None: Nova itself (e.g. its power-state sync), not a user
    start_time: datetime | None = None


@dataclass(frozen=True)
class Aggregate:
    """A Nova host aggregate (`os-aggregates`)."""

    id: str
    name: str
    hosts: tuple[str, ...] = ()
    availability_zone: str | None = None
