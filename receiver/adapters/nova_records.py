"""Nova's JSON records, read into our vocabulary (`receiver.domain`). Pure functions, no I/O.

Each reader takes one item of a Nova answer as it arrives (a dict) and keeps only what the
recoveries use; a record that lacks what a decision depends on is an error, never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from receiver.domain.capacity import DiskFacts, HypervisorReport
from receiver.domain.model import Aggregate, ComputeService, Migration, Server
from receiver.errors import ComputeError

# os-hypervisors' resource figures; Nova removed them from the API at 2.88.
_HYPERVISOR_FIGURES = ("vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "local_gb", "local_gb_used")


def timestamp(value: Any) -> datetime | None:
    """Nova's timestamps are UTC without a zone ("2026-11-25T13:55:10.000000")."""
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def next_marker(links: list[dict[str, Any]]) -> str | None:
    """The marker of a list answer's `next` link (Nova sets it on every full page)."""
    for link in links:
        if link.get("rel") == "next":
            markers = parse_qs(urlsplit(str(link.get("href", ""))).query).get("marker")
            if markers:
                return markers[-1]
    return None


def service(raw: dict[str, Any]) -> ComputeService:
    return ComputeService(
        id=str(raw["id"]),
        host=str(raw.get("host", "")),
        state=str(raw.get("state", "")),
        status=str(raw.get("status", "")),
        forced_down=bool(raw.get("forced_down", False)),
        disabled_reason=raw.get("disabled_reason"),
        updated_at=timestamp(raw.get("updated_at")),
    )


def server(raw: dict[str, Any]) -> Server:
    # Servers in an unreachable cell come back partial (2.69+): only id and status; their
    # disks are then unknown (DiskFacts says so rather than guessing "image-backed").
    flavor = raw.get("flavor")
    return Server(
        id=str(raw["id"]),
        name=str(raw.get("name") or ""),
        host=raw.get("OS-EXT-SRV-ATTR:host"),
        status=str(raw.get("status", "UNKNOWN")),
        vm_state=raw.get("OS-EXT-STS:vm_state"),
        task_state=raw.get("OS-EXT-STS:task_state"),
        metadata={str(k): str(v) for k, v in (raw.get("metadata") or {}).items()},
        flavor=dict(flavor) if isinstance(flavor, dict) else {},
        locked=bool(raw.get("locked", False)),
        power_state=raw.get("OS-EXT-STS:power_state"),
        locked_reason=raw.get("locked_reason"),
        disks=DiskFacts.from_nova(raw.get("image"), raw.get("os-extended-volumes:volumes_attached")),
        project_id=raw.get("tenant_id"),
        fault=_fault_message(raw.get("fault")),
    )


def _fault_message(fault: object) -> str | None:
    # Nova shows the fault of a server in ERROR (say, "No valid host was found. ..."); its
    # `details` (a traceback, for admins) are left out: the message says what happened.
    if not isinstance(fault, dict) or not fault.get("message"):
        return None
    return str(fault["message"])[:300]


def migration(raw: dict[str, Any]) -> Migration:
    return Migration(
        id=str(raw.get("uuid") or raw["id"]),
        instance_id=str(raw.get("instance_uuid", "")),
        source_host=raw.get("source_compute"),
        dest_host=raw.get("dest_compute"),
        status=str(raw.get("status", "")),
        migration_type=str(raw.get("migration_type", "")),
        created_at=timestamp(raw.get("created_at")),
    )


def aggregate(raw: dict[str, Any]) -> Aggregate:
    zone = raw.get("availability_zone")
    return Aggregate(
        id=str(raw["id"]),
        name=str(raw.get("name") or ""),
        hosts=tuple(str(h) for h in raw.get("hosts") or ()),
        availability_zone=None if zone is None else str(zone),
    )


def hypervisor_reports(raws: Iterable[dict[str, Any]]) -> list[HypervisorReport]:
    """One report per nova-compute service host, in Nova's order of first appearance.

    A host with several nodes (Ironic: one per baremetal node) is summed. Its service is
    one, so `enabled` and `up` agree across its nodes; should they not, the host counts as
    disabled / down, the side that never sends instances to a host that cannot take them.
    """
    reports: dict[str, HypervisorReport] = {}
    for raw in raws:
        host = (raw.get("service") or {}).get("host")
        if not host:
            raise ComputeError(f"Nova reported hypervisor {raw.get('id')} without a service host")
        missing = [name for name in _HYPERVISOR_FIGURES if not isinstance(raw.get(name), int | float)]
        if missing:
            raise ComputeError(
                f"Nova reported hypervisor {raw.get('id')} of host {host} without {', '.join(missing)} "
                "(os-hypervisors shows them only up to microversion 2.87)"
            )
        node = HypervisorReport(
            host=str(host),
            vcpus=int(raw["vcpus"]),
            vcpus_used=int(raw["vcpus_used"]),
            memory_mb=int(raw["memory_mb"]),
            memory_mb_used=int(raw["memory_mb_used"]),
            local_gb=int(raw["local_gb"]),
            local_gb_used=int(raw["local_gb_used"]),
            enabled=raw.get("status") == "enabled",
            up=raw.get("state") == "up",
        )
        earlier = reports.get(node.host)
        reports[node.host] = node if earlier is None else _summed(earlier, node)
    return list(reports.values())


def _summed(a: HypervisorReport, b: HypervisorReport) -> HypervisorReport:
    return HypervisorReport(
        host=a.host,
        vcpus=a.vcpus + b.vcpus,
        vcpus_used=a.vcpus_used + b.vcpus_used,
        memory_mb=a.memory_mb + b.memory_mb,
        memory_mb_used=a.memory_mb_used + b.memory_mb_used,
        local_gb=a.local_gb + b.local_gb,
        local_gb_used=a.local_gb_used + b.local_gb_used,
        enabled=a.enabled and b.enabled,
        up=a.up and b.up,
    )
