"""PagerDuty Events API v2: trigger when a recovery needs a human, resolve when it finished.

`dedup_key` is the record's uuid, so every event of one recovery lands on one incident.
Accepted is HTTP 202 `{"status": "success"}`; 400 is an invalid event (never retried), 429
means slow down, 5xx and network errors are retried.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from receiver.adapters.notifiers.http import JsonPoster, TransportFailure
from receiver.domain.events import EventKind
from receiver.domain.model import Secret
from receiver.notify.message import Message, clip
from receiver.notify.result import FailureReason, NotifyResult, classify_status, redact_url

CLIENT = "Lazarus"
INSTANCES_DETAILED = 50
_ACTION = {
    EventKind.FAILED: "trigger",
    EventKind.REFUSED: "trigger",
    EventKind.NEEDS_APPROVAL: "trigger",
    EventKind.FINISHED: "resolve",
}


_COMPONENT = {"COMPUTE_HOST": "compute-host", "PROCESS": "nova-compute", "VM": "instance"}


def event_action(kind: EventKind) -> str | None:
    return _ACTION.get(kind)


def action_for(message: Message) -> str | None:
    """A recovery that finished without moving everything (it carries a diagnosis) still
    leaves instances down: it triggers, where a complete one resolves."""
    if message.event is EventKind.FINISHED and message.diagnosis:
        return "trigger"
    return event_action(message.event)


class PagerDutyNotifier:
    def __init__(
        self,
        name: str,
        routing_key: Secret,
        http: JsonPoster,
        *,
        endpoint: str,
        timeout_s: float,
        now: Callable[[], datetime],
    ) -> None:
        self.name = name
        self._key = routing_key
        self._http = http
        self._endpoint = endpoint
        self._timeout_s = timeout_s
        self._now = now

    def notify(self, message: Message) -> NotifyResult:
        action = action_for(message)
        if action is None:
            return NotifyResult.failed(
                FailureReason.CLIENT_ERROR, f"pagerduty has no action for {message.event.value}"
            )
        key = self._key.reveal()
        try:
            reply = self._http.post_json(
                self._endpoint, event(message, key, action), timeout_s=self._timeout_s
            )
        except TransportFailure as failure:
            return failure.result
        detail = f"{redact_url(self._endpoint)} answered HTTP {reply.status}: {_explain(reply.body, key)}"
        failed = classify_status(reply.status, reply.header("Retry-After"), self._now(), detail)
        if failed is not None:
            return failed
        if _status(reply.body) == "success":
            return NotifyResult.delivered(reply.status, f"{action} accepted")
        return NotifyResult.failed(FailureReason.BAD_RESPONSE, detail, status=reply.status)


def event(message: Message, routing_key: str, action: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": message.notification_uuid,
    }
    if action == "resolve":
        return body
    body["payload"] = {
        "summary": clip(message.summary, 1024),
        "source": message.host,
        "severity": message.severity.value,
        "timestamp": message.at,
        "component": _COMPONENT.get(message.recovery_type, message.recovery_type.lower()),
        "group": message.segment or "unknown",
        "class": message.reason or message.event.value,
        "custom_details": {
            "event": message.event.value,
            "notification_uuid": message.notification_uuid,
            "status": message.status,
            "reason": message.reason,
            "what_failed": message.failure,
            "outcome": message.outcome,
            "instances": message.instances_note,
            "diagnosis": message.diagnosis or None,
            "instances_detail": [
                f"{i.name} {i.uuid} {i.status}"
                + (f" -> {i.dest_host}" if i.dest_host else "")
                + (f": {i.message}" if i.message and i.status != "succeeded" else "")
                for i in message.instances[:INSTANCES_DETAILED]
            ],
            "fencing": [
                f"{f.method} {f.bmc}: power {f.power_before} -> {f.power_after} ({f.outcome})"
                for f in message.fencing
            ],
            "what_lazarus_did": list(message.actions),
        },
    }
    body["client"] = CLIENT
    if message.record_url:
        body["client_url"] = message.record_url
        body["links"] = [{"href": message.record_url, "text": "Lazarus recovery record"}]
    return body


def _status(body: str) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return str(data.get("status")) if isinstance(data, dict) else None


def _explain(body: str, key: str) -> str:
    """PagerDuty's own message and first error, without the routing key if it echoed it."""
    try:
        data = json.loads(body)
    except ValueError:
        return "(no JSON body)"
    if not isinstance(data, dict):
        return "(unexpected body)"
    errors = data.get("errors") or []
    text = str(data.get("message", "")) + (f" ({errors[0]})" if isinstance(errors, list) and errors else "")
    return clip(text.replace(key, "[REDACTED]"), 300) if text else "(no message)"
