"""`lazarus notify test NOTIFIER`: one message sent now, synchronously, to check the wiring.

PagerDuty gets a trigger and then its resolve (same test dedup key), so the check leaves no
open incident behind.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from datetime import datetime

from receiver.domain.events import EventKind
from receiver.domain.record import iso
from receiver.errors import ConfigError
from receiver.notify.config import NotifierConfig
from receiver.notify.message import Message, Severity, record_url
from receiver.notify.result import FailureReason, NotifyResult


def check_message(event: EventKind, dedup: str, public_url: str, now: datetime) -> Message:
    host = socket.gethostname()
    return Message(
        event=event,
        notification_uuid=dedup,
        recovery_type="test",
        seq=1 if event is not EventKind.FINISHED else 2,
        at=iso(now),
        host=host,
        segment=None,
        status="test",
        reason="test",
        severity=Severity.INFO,
        title=f"Lazarus test message from {host}",
        summary=f"Lazarus test message from {host}: notifications reach this destination",
        outcome="a test message: nothing happened to any host",
        failure="nothing failed: this is a test sent by `lazarus notify test`",
        actions=(),
        fencing=(),
        instances=(),
        instances_note="no instances involved (test)",
        record_url=record_url(public_url, dedup) if public_url else None,
        record={},
    )


def send_test(
    config: NotifierConfig, public_url: str, now: Callable[[], datetime]
) -> list[tuple[str, NotifyResult]]:
    from receiver.adapters.notifiers.factory import build_notifier
    from receiver.adapters.notifiers.http import JsonPoster

    try:
        notifier = build_notifier(config, JsonPoster(), now)
    except ConfigError as exc:
        return [("setup", NotifyResult.failed(FailureReason.CONFIG_ERROR, exc.message))]
    dedup = f"lazarus-test-{uuid.uuid4()}"
    if config.type != "pagerduty":
        return [("message", notifier.notify(check_message(EventKind.FINISHED, dedup, public_url, now())))]
    results = [("trigger", notifier.notify(check_message(EventKind.FAILED, dedup, public_url, now())))]
    if results[0][1].ok:
        results.append(
            ("resolve", notifier.notify(check_message(EventKind.FINISHED, dedup, public_url, now())))
        )
    return results
