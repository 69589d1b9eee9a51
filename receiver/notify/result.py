"""The notifier contract: one method, and a result that says whether a retry can help.

Like Alertmanager's `Notifier.Notify -> (retry bool, error)` and its `Retrier.Check`: 2xx is
success, 5xx, 429 and timeouts are worth retrying, any other 4xx is not. The failure reason
is a bounded vocabulary (a metric label); `detail` is for humans and never holds a secret.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol
from urllib.parse import urlsplit

from receiver.notify.message import Message


class FailureReason(enum.StrEnum):
    CLIENT_ERROR = "client_error"  # 4xx other than 429: the message or the config is wrong
    SERVER_ERROR = "server_error"  # 5xx
    RATE_LIMITED = "rate_limited"  # 429
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    BAD_RESPONSE = "bad_response"  # 2xx whose body says it was not accepted
    CONFIG_ERROR = "config_error"  # the secret reference cannot be read


@dataclass(frozen=True)
class NotifyResult:
    ok: bool
    retryable: bool = False
    reason: str = "ok"  # "ok" or a FailureReason
    retry_after_s: float | None = None  # the endpoint's Retry-After, when it sent one
    status: int | None = None  # HTTP status, None when no answer came
    detail: str = ""

    @classmethod
    def delivered(cls, status: int, detail: str = "") -> NotifyResult:
        return cls(ok=True, status=status, detail=detail)

    @classmethod
    def failed(
        cls,
        reason: FailureReason,
        detail: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> NotifyResult:
        retryable = reason in (
            FailureReason.SERVER_ERROR,
            FailureReason.RATE_LIMITED,
            FailureReason.TIMEOUT,
            FailureReason.CONNECTION_ERROR,
        )
        return cls(False, retryable, reason.value, retry_after_s, status, detail)


class Notifier(Protocol):
    """Sends one message to one destination. Never raises for a delivery problem: the result
    says what happened. Never puts the URL's secret part or a key into the result or a log."""

    name: str

    def notify(self, message: Message) -> NotifyResult: ...


def classify_status(status: int, retry_after: str | None, now: datetime, detail: str) -> NotifyResult | None:
    """None for 2xx (the notifier checks the body); otherwise the failure and whether to retry."""
    if 200 <= status < 300:
        return None
    if status == 429:
        return NotifyResult.failed(
            FailureReason.RATE_LIMITED,
            detail,
            status=status,
            retry_after_s=parse_retry_after(retry_after, now),
        )
    if status >= 500:
        return NotifyResult.failed(
            FailureReason.SERVER_ERROR,
            detail,
            status=status,
            retry_after_s=parse_retry_after(retry_after, now),
        )
    return NotifyResult.failed(FailureReason.CLIENT_ERROR, detail, status=status)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def redact_url(url: str) -> str:
    """Scheme and host only: the rest of a webhook URL is its secret."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme or '?'}://{parts.hostname or '?'}{port}"
