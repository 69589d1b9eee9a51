"""Alertmanager's webhook (version "4") as plain values, and what each alert asks for.

Parsing is strict about the fields we use and ignores the rest: newer Alertmanagers add
fields (`notification_reason`, `routeLabels`) that must not break us. Every problem is an
`InputError` naming the field, e.g. ``alerts[1].startsAt: not an RFC 3339 time``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from receiver.errors import InputError

SUPPORTED_VERSION = "4"


class AlertStatus(enum.StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class FailureKind(enum.StrEnum):
    """Which failure domain an alert names, from its `recovery` label."""

    HOST = "host"
    PROCESS = "process"
    INSTANCE = "instance"


class NotificationType(enum.StrEnum):
    """Masakari's notification types."""

    COMPUTE_HOST = "COMPUTE_HOST"
    PROCESS = "PROCESS"
    VM = "VM"


NOTIFICATION_TYPE = {
    FailureKind.HOST: NotificationType.COMPUTE_HOST,
    FailureKind.PROCESS: NotificationType.PROCESS,
    FailureKind.INSTANCE: NotificationType.VM,
}


@dataclass(frozen=True)
class Alert:
    status: AlertStatus
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    fingerprint: str
    generator_url: str = ""

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def dedup_key(self) -> str:
        """The same alert delivered again has the same key (fingerprint + startsAt)."""
        return f"{self.fingerprint}:{self.starts_at.strftime('%Y%m%dT%H%M%S.%fZ')}"


@dataclass(frozen=True)
class WebhookMessage:
    receiver: str
    status: AlertStatus
    alerts: tuple[Alert, ...]
    group_key: str
    external_url: str
    truncated_alerts: int = 0
    common_labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelNames:
    """Which labels carry the failure kind and its target (settings may rename them)."""

    recovery: str = "recovery"
    host: str = "host"
    instance: str = "uuid"
    process: str = "process"


@dataclass(frozen=True)
class FailureEvent:
    """What one alert says failed. `kind` is None when the alert names no recovery."""

    kind: FailureKind | None
    hostname: str | None
    instance_id: str | None = None
    process_name: str | None = None
    problem: str | None = None  # why the labels do not make a usable event


def parse_webhook(body: Any) -> WebhookMessage:
    """Validate the decoded JSON body of an Alertmanager webhook."""
    if not isinstance(body, dict):
        raise InputError("body", "must be a JSON object")
    version = _require(body, "version", str, "")
    if version != SUPPORTED_VERSION:
        raise InputError("version", f"unsupported version {version!r}, expected {SUPPORTED_VERSION!r}")
    raw_alerts = _require(body, "alerts", list, "")
    alerts = tuple(_parse_alert(raw, f"alerts[{i}]") for i, raw in enumerate(raw_alerts))
    truncated = body.get("truncatedAlerts", 0)
    if not isinstance(truncated, int) or isinstance(truncated, bool) or truncated < 0:
        raise InputError("truncatedAlerts", "must be a non-negative integer")
    return WebhookMessage(
        receiver=_optional_str(body, "receiver", ""),
        status=_status(_require(body, "status", str, ""), "status"),
        alerts=alerts,
        group_key=_optional_str(body, "groupKey", ""),
        external_url=_optional_str(body, "externalURL", ""),
        truncated_alerts=truncated,
        common_labels=_str_map(body.get("commonLabels", {}), "commonLabels"),
    )


def classify(alert: Alert, names: LabelNames) -> FailureEvent:
    """Map an alert's labels to the failure it reports."""
    raw_kind = alert.labels.get(names.recovery)
    hostname = alert.labels.get(names.host) or None
    if raw_kind is None:
        return FailureEvent(kind=None, hostname=hostname, problem=f"no '{names.recovery}' label")
    try:
        kind = FailureKind(raw_kind)
    except ValueError:
        allowed = ", ".join(k.value for k in FailureKind)
        return FailureEvent(
            kind=None,
            hostname=hostname,
            problem=f"label '{names.recovery}'={raw_kind!r} is not one of {allowed}",
        )
    instance_id = alert.labels.get(names.instance) or None
    process_name = alert.labels.get(names.process) or None
    problem = None
    if kind is FailureKind.HOST and not hostname:
        problem = f"recovery=host alert without a '{names.host}' label"
    elif kind is FailureKind.INSTANCE and not instance_id:
        problem = f"recovery=instance alert without a '{names.instance}' label"
    elif kind is FailureKind.PROCESS and not (hostname and process_name):
        problem = f"recovery=process alert needs '{names.host}' and '{names.process}' labels"
    return FailureEvent(kind, hostname, instance_id, process_name, problem)


def _parse_alert(raw: Any, where: str) -> Alert:
    if not isinstance(raw, dict):
        raise InputError(where, "must be an object")
    fingerprint = _require(raw, "fingerprint", str, where)
    if not fingerprint:
        raise InputError(f"{where}.fingerprint", "must not be empty")
    return Alert(
        status=_status(_require(raw, "status", str, where), f"{where}.status"),
        labels=_str_map(_require(raw, "labels", dict, where), f"{where}.labels"),
        annotations=_str_map(raw.get("annotations", {}), f"{where}.annotations"),
        starts_at=_time(_require(raw, "startsAt", str, where), f"{where}.startsAt"),
        ends_at=_end_time(raw.get("endsAt"), f"{where}.endsAt"),
        fingerprint=fingerprint,
        generator_url=_optional_str(raw, "generatorURL", "", where),
    )


def _require(obj: dict[str, Any], key: str, kind: type, where: str) -> Any:
    path = f"{where}.{key}" if where else key
    if key not in obj:
        raise InputError(path, "is required")
    value = obj[key]
    if not isinstance(value, kind):
        raise InputError(path, f"must be {_kind_name(kind)}, got {_kind_name(type(value))}")
    return value


def _optional_str(obj: dict[str, Any], key: str, default: str, where: str = "") -> str:
    value = obj.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InputError(f"{where}.{key}" if where else key, "must be a string")
    return value


def _kind_name(kind: type) -> str:
    return {str: "a string", list: "an array", dict: "an object", int: "an integer"}.get(kind, kind.__name__)


def _status(value: str, path: str) -> AlertStatus:
    try:
        return AlertStatus(value)
    except ValueError:
        raise InputError(path, f"must be 'firing' or 'resolved', got {value!r}") from None


def _str_map(value: Any, path: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InputError(path, "must be an object")
    for key, item in value.items():
        if not isinstance(item, str):
            raise InputError(f"{path}.{key}", "must be a string")
    return dict(value)


def _time(value: str, path: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(path, f"not an RFC 3339 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise InputError(path, "needs a time zone")
    return parsed.astimezone(UTC)


def _end_time(value: Any, path: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(path, "must be a string")
    parsed = _time(value, path)
    # Firing alerts carry Go's zero time, 0001-01-01T00:00:00Z: "not ended".
    return None if parsed.year <= 1 else parsed
