"""Alertmanager webhook bodies shaped like our LazarusHostDown rule's (version "4")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from receiver.lab.demo_support import host_down_webhook as lab_webhook


def host_down_webhook(host: str, starts_at: datetime | None = None) -> dict[str, Any]:
    """One firing host-down alert for `host`; the same host and start give the same alert."""
    return lab_webhook(host, starts_at or datetime.now(UTC))


def encoded(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def outcome_of(payload: bytes) -> str | None:
    """The first alert's outcome in a webhook answer, or None if the answer has none."""
    try:
        return str(json.loads(payload)["alerts"][0]["outcome"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
