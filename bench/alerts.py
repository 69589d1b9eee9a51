"""Alertmanager webhook bodies shaped like our LazarusHostDown rule's (version "4")."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any


def host_down_webhook(host: str, starts_at: datetime | None = None) -> dict[str, Any]:
    """One firing host-down alert for `host`; the same host and start give the same alert."""
    labels = {"alertname": "LazarusHostDown", "recovery": "host", "host": host, "severity": "critical"}
    moment = starts_at or datetime.now(UTC)
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": f"Compute host {host} is down"},
        "startsAt": moment.isoformat(),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": hashlib.sha256(repr(sorted(labels.items())).encode()).hexdigest()[:16],
    }
    return {
        "receiver": "lazarus",
        "status": "firing",
        "alerts": [alert],
        "groupLabels": {"host": host},
        "commonLabels": labels,
        "commonAnnotations": alert["annotations"],
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": f'{{}}:{{host="{host}"}}',
        "truncatedAlerts": 0,
    }


def encoded(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def outcome_of(payload: bytes) -> str | None:
    """The first alert's outcome in a webhook answer, or None if the answer has none."""
    try:
        return str(json.loads(payload)["alerts"][0]["outcome"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
