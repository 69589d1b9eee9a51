"""A generic JSON webhook carrying the event and the whole recovery record (ITSM, chat bridges).

Any 2xx is success. `Idempotency-Key` (record uuid and event sequence) lets the receiving
side drop a retried delivery it already processed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from receiver.adapters.notifiers.http import JsonPoster, TransportFailure
from receiver.domain.model import Secret
from receiver.notify.message import Message
from receiver.notify.result import NotifyResult, classify_status, redact_url

VERSION = "1"


class WebhookNotifier:
    def __init__(
        self, name: str, url: Secret, http: JsonPoster, *, timeout_s: float, now: Callable[[], datetime]
    ) -> None:
        self.name = name
        self._url = url
        self._http = http
        self._timeout_s = timeout_s
        self._now = now

    def notify(self, message: Message) -> NotifyResult:
        url = self._url.reveal()
        headers = {"Idempotency-Key": idempotency_key(message)}
        try:
            reply = self._http.post_json(url, payload(message), timeout_s=self._timeout_s, headers=headers)
        except TransportFailure as failure:
            return failure.result
        # The body is not echoed: an arbitrary endpoint may repeat the request, URL included.
        detail = f"{redact_url(url)} answered HTTP {reply.status}"
        failed = classify_status(reply.status, reply.header("Retry-After"), self._now(), detail)
        return failed if failed is not None else NotifyResult.delivered(reply.status)


def idempotency_key(message: Message) -> str:
    return f"{message.notification_uuid}:{message.seq}"


def payload(message: Message) -> dict[str, Any]:
    return {
        "version": VERSION,
        "event": message.event.value,
        "seq": message.seq,
        "notification_uuid": message.notification_uuid,
        "at": message.at,
        "host": message.host,
        "segment": message.segment,
        "severity": message.severity.value,
        "title": message.title,
        "summary": message.summary,
        "instances": message.instances_note,
        "diagnosis": message.diagnosis or None,
        "record_url": message.record_url,
        "record": message.record,
    }
