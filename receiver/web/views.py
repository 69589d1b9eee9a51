"""JSON shapes of the read API, in Masakari's envelopes and field names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from receiver.adapters.redis_inventory import HostView, SegmentView
from receiver.adapters.redis_store import StoredNotification
from receiver.domain.record import Notification, Step, VMove

if TYPE_CHECKING:
    from receiver.notify.ledger import DeliveryEntry


def notification_summary(record: Notification) -> dict[str, Any]:
    return {
        "id": record.notification_uuid,
        "notification_uuid": record.notification_uuid,
        "type": record.type.value,
        "hostname": record.hostname,
        "source_host_uuid": record.source_host_uuid,
        "failover_segment_uuid": record.failover_segment_uuid,
        "generated_time": record.generated_time,
        "payload": record.payload,
        "status": record.status.value,
        "reason": record.reason,
        "message": record.message,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "deleted": False,
        "deleted_at": None,
    }


def notification_detail(
    stored: StoredNotification, deliveries: Sequence[DeliveryEntry] = ()
) -> dict[str, Any]:
    """The record with its links; `deliveries`: the last notification result per notifier."""
    record = stored.record
    return {
        **notification_summary(record),
        "phase": record.phase.value,
        "attempt": record.attempt,
        "recovery_workflow_details": workflow_details(record.steps),
        "steps": [step.__dict__ for step in record.steps],
        "fencing": [attempt.__dict__ for attempt in record.fencing],
        "vmoves": [vmove(record, m) for m in record.vmoves],
        "plan": record.plan,  # ours: where the instances were to go (a host recovery's capacity plan)
        "diagnosis": record.diagnosis,  # ours: why a host recovery did not move everything
        "alerts": [alert.__dict__ for alert in stored.alerts],
        "duplicates": stored.duplicates,
        "deliveries": [entry.__dict__ for entry in deliveries],
    }


def vmove(record: Notification, move: VMove) -> dict[str, Any]:
    """Masakari's vmove, then ours: the planned target and route, the attempts and the hosts
    they tried, why it was skipped or failed, whether Lazarus holds its lock."""
    return {
        "uuid": f"{record.notification_uuid}:{move.instance_uuid}",
        "notification_uuid": record.notification_uuid,
        "instance_uuid": move.instance_uuid,
        "instance_name": move.instance_name,
        "source_host": move.source_host,
        "dest_host": move.dest_host,
        "start_time": move.start_time,
        "end_time": move.end_time,
        "type": move.type,
        "status": move.status.value,
        "message": move.message,
        "target_host": move.target_host,
        "route": move.route,
        "attempts": move.attempts,
        "tried_hosts": list(move.tried_hosts),
        "reason": move.reason,
        "locked_by_us": move.locked_by_us,
    }


def workflow_details(steps: tuple[Step, ...]) -> list[dict[str, Any]]:
    """Masakari's recovery_workflow_details: one entry per task, with its progress lines."""
    tasks: dict[str, dict[str, Any]] = {}
    for step in steps:
        task = tasks.setdefault(step.name, {"name": step.name, "state": "", "progress_details": []})
        task["state"] = step.state.upper()
        task["progress_details"].append(
            {"timestamp": step.at, "message": step.message, "progress": step.state}
        )
    return list(tasks.values())


_MASAKARI_SEGMENT = frozenset({"uuid", "name", "description", "recovery_method", "service_type", "enabled"})


def segment(view: SegmentView) -> dict[str, Any]:
    """Masakari's failover segment, field for field, then our own per-segment controls."""
    spec, meta = view.spec, view.meta
    ours = spec.model_dump(mode="json", exclude={"hosts", *_MASAKARI_SEGMENT})
    return {
        "id": meta.id,
        "uuid": spec.uuid,
        "name": spec.name,
        "service_type": spec.service_type,
        "enabled": spec.enabled,
        "description": spec.description,
        "recovery_method": spec.recovery_method.value,
        "created_at": meta.created_at,
        "updated_at": meta.updated_at,
        "deleted_at": None,
        "deleted": False,
        **ours,
    }


def host(view: HostView) -> dict[str, Any]:
    """Masakari's host, then ours: the fencing block (a password *reference*, never a value),
    why it is on maintenance, and the recovery that holds it."""
    spec = view.spec
    bmc = None
    if spec.bmc is not None:
        bmc = {
            "driver": spec.bmc.driver,
            "address": spec.bmc.address,
            "port": spec.bmc.port,
            "username": spec.bmc.username,
            "password_ref": spec.bmc.password.describe(),
        }
    return {
        "id": view.meta.id,
        "uuid": spec.uuid,
        "name": spec.name,
        "failover_segment_id": view.segment.uuid,
        "failover_segment": segment(SegmentView(view.segment, view.segment_meta)),
        "type": spec.type,
        "reserved": spec.reserved,
        "control_attributes": spec.control_attributes,
        "on_maintenance": view.on_maintenance,
        "created_at": view.meta.created_at,
        "updated_at": view.meta.updated_at,
        "deleted_at": None,
        "deleted": False,
        "fencing": bmc,
        "maintenance_reason": view.state.reason if view.on_maintenance else None,
        "fenced_by": view.state.notification_uuid if view.on_maintenance else None,
        "under_recovery": view.recovery,
    }
