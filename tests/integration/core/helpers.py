"""Building Alertmanager webhook bodies the way our host-down rule's alerts arrive."""

from __future__ import annotations

import hashlib
from typing import Any


def host_alert(
    host: str,
    *,
    status: str = "firing",
    starts_at: str = "2026-11-25T12:00:00.000000Z",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    all_labels = {
        "alertname": "LazarusHostDown",
        "recovery": "host",
        "host": host,
        "severity": "critical",
        **(labels or {}),
    }
    fingerprint = hashlib.sha256(repr(sorted(all_labels.items())).encode()).hexdigest()[:16]
    return {
        "status": status,
        "labels": all_labels,
        "annotations": {"summary": f"Compute host {host} is down"},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-25T12:30:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fingerprint,
    }


def webhook(*alerts: dict[str, Any], external_url: str = "http://am-1:9093") -> dict[str, Any]:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {
        "receiver": "lazarus",
        "status": status,
        "alerts": list(alerts),
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": external_url,
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
    }
