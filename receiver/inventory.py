"""The inventory: failover segments and their hosts, with each host's BMC.

The file format (``lazarus inventory apply FILE``)::

    segments:
      - name: rack-a
        recovery_method: auto
        hosts:
          - name: node-01                     # the Nova compute host name
            bmc: {driver: ipmi, address: 10.0.0.11, port: 623, username: admin,
                  password: {env: BMC_NODE01_PASSWORD}}   # or {file: /etc/lazarus/bmc/node-01}

The password is only ever a *reference*; the value is resolved by the worker when it fences
and never stored in Redis, a record, a log line or an error.

Segments and hosts carry a stable ``uuid``: derived from the name when first created (so a
file applied twice names the same objects), then stored and kept through renames.
"""

from __future__ import annotations

import enum
import uuid
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from receiver.domain.model import BmcTarget
from receiver.errors import ConfigError, LazarusError
from receiver.secret_ref import SecretRef

_NAMESPACE = uuid.UUID("6f1d3c52-5a3e-4c8e-9b7e-1f0b8d5c2a11")


class RecoveryMethod(enum.StrEnum):
    AUTO = "auto"
    RESERVED_HOST = "reserved_host"
    AUTO_PRIORITY = "auto_priority"
    RH_PRIORITY = "rh_priority"


class InventoryConflict(LazarusError):
    """A change that the inventory's current state forbids: a duplicate name, or a segment
    under recovery (Masakari answers 409 for both)."""


def default_uuid(kind: str, name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{name}"))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Identified(_Model):
    """A named object with a stable uuid (given, stored, or derived from the name)."""

    kind: ClassVar[str] = ""
    uuid: str = ""

    @model_validator(mode="before")
    @classmethod
    def _derive_uuid(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("uuid") and isinstance(data.get("name"), str):
            return {**data, "uuid": default_uuid(cls.kind, data["name"])}
        return data

    @field_validator("uuid")
    @classmethod
    def _uuid_form(cls, value: str) -> str:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError("must be a UUID") from None


# The BMC password reference (kept under its inventory name).
PasswordRef = SecretRef


class BmcSpec(_Model):
    """One fence method: IPMI (address, UDP port) or Redfish (host or URL; TLS verified unless insecure)."""

    driver: str = Field(default="ipmi", pattern="^(ipmi|redfish)$")
    address: str = Field(min_length=1, max_length=255)
    port: int = Field(default=623, ge=1, le=65535)
    username: str = Field(min_length=1, max_length=64)
    password: PasswordRef
    insecure: bool = False  # redfish only: skip TLS verification (a lab; never a production BMC)

    @model_validator(mode="after")
    def _valid_for_driver(self) -> BmcSpec:
        if self.driver == "redfish":
            from receiver.adapters.redfish import parse_redfish_address

            try:
                parse_redfish_address(self.address, self.port)
            except ConfigError as exc:
                raise ValueError(exc.message) from None
        elif self.insecure:
            raise ValueError("insecure applies to the redfish driver only")
        return self

    def target(self, host: str) -> BmcTarget:
        return BmcTarget(
            host=host,
            address=self.address,
            port=self.port,
            username=self.username,
            password=self.password.resolve(f"host {host}: bmc.password"),
            driver=self.driver,
            insecure=self.insecure,
        )


class HostSpec(_Identified):
    kind: ClassVar[str] = "host"
    name: str = Field(min_length=1, max_length=255, pattern=r"^[a-zA-Z0-9._-]+$")
    type: str = "COMPUTE"
    control_attributes: str = ""
    reserved: bool = False
    on_maintenance: bool = False
    bmc: BmcSpec | None = None  # the first fence method
    fence_fallbacks: list[BmcSpec] = Field(default_factory=list)  # tried in order when the one before fails

    @property
    def fence_methods(self) -> list[BmcSpec]:
        """Every way to power this host off, in the order to try them (escalation)."""
        return ([self.bmc] if self.bmc else []) + list(self.fence_fallbacks)


class SegmentSpec(_Identified):
    kind: ClassVar[str] = "segment"
    name: str = Field(min_length=1, max_length=255)
    description: str | None = None
    recovery_method: RecoveryMethod = RecoveryMethod.AUTO
    service_type: str = "COMPUTE"
    enabled: bool = True
    hosts: list[HostSpec] = Field(default_factory=list)
    # Lazarus's own per-segment controls (beyond Masakari's fields); None: the global setting.
    requires_approval: bool = False  # every host recovery here waits for an operator's yes
    shadow: bool = False  # record what would be done here, touch nothing
    max_down_share: float | None = Field(default=None, gt=0, le=1)  # the storm guard's share for this segment
    # Placement (None: the evacuation setting of the same name).
    shared_storage: bool | None = None  # instance disks on shared storage (Ceph, NFS)
    evacuate_all: bool | None = None  # every instance, not only HA_Enabled ones
    skip_error_instances: bool | None = None
    capacity_policy: str | None = Field(
        default=None, pattern="^(proceed|proceed_with_what_fits|hold_for_approval)$"
    )


class Inventory(_Model):
    segments: list[SegmentSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> Inventory:
        seen_segments: set[str] = set()
        seen_hosts: dict[str, str] = {}
        for segment in self.segments:
            if segment.name in seen_segments:
                raise ValueError(f"segment {segment.name!r} appears twice")
            seen_segments.add(segment.name)
            for host in segment.hosts:
                if host.name in seen_hosts:
                    raise ValueError(
                        f"host {host.name!r} is in segments {seen_hosts[host.name]!r} and {segment.name!r}"
                    )
                seen_hosts[host.name] = segment.name
        uuids = [s.uuid for s in self.segments] + [h.uuid for s in self.segments for h in s.hosts]
        if len(set(uuids)) != len(uuids):
            raise ValueError("two segments or hosts share a uuid")
        return self


def parse_inventory(data: Any, source: str = "inventory") -> Inventory:
    """Validate inventory data; ConfigError names the failing path, e.g. segments.0.hosts.1.bmc.port."""
    if data is None:
        data = {}
    try:
        return Inventory.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(p) for p in error["loc"]) or "(root)"
            problems.append(f"{key}: {error['msg']}")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


def load_inventory(path: Path) -> Inventory:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"inventory: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"inventory: {path} is not valid YAML: {exc}") from None
    return parse_inventory(data, source=str(path))
