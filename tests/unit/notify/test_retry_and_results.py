"""Which HTTP outcomes are worth retrying, when, and how Retry-After is read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from receiver.notify.result import FailureReason, NotifyResult, classify_status, parse_retry_after, redact_url
from receiver.notify.retry import RetryPolicy, Verdict, decide

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
POLICY = RetryPolicy(backoff_s=(5.0, 15.0, 60.0), max_attempts=5, max_age_s=600.0)


@pytest.mark.parametrize(
    ("status", "reason", "retryable"),
    [
        (400, "client_error", False),
        (401, "client_error", False),
        (403, "client_error", False),
        (404, "client_error", False),
        (410, "client_error", False),
        (429, "rate_limited", True),
        (500, "server_error", True),
        (502, "server_error", True),
        (503, "server_error", True),
    ],
)
def test_status_classification(status: int, reason: str, retryable: bool) -> None:
    result = classify_status(status, None, NOW, "detail")
    assert result is not None
    assert (result.ok, result.reason, result.retryable, result.status) == (False, reason, retryable, status)


def test_2xx_is_left_to_the_notifier_to_check_the_body() -> None:
    assert classify_status(200, None, NOW, "") is None
    assert classify_status(202, None, NOW, "") is None


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert parse_retry_after("30", NOW) == 30
    assert parse_retry_after("Wed, 25 Nov 2026 12:01:00 GMT", NOW) == 60
    assert parse_retry_after("Wed, 25 Nov 2026 11:00:00 GMT", NOW) == 0  # in the past: now
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after("", NOW) is None


def test_backoff_by_attempt_the_last_step_repeats() -> None:
    failure = NotifyResult.failed(FailureReason.SERVER_ERROR, "x", status=500)
    delays = [decide(POLICY, failure, attempt, age_s=0).delay_s for attempt in (1, 2, 3, 4)]
    assert delays == [5.0, 15.0, 60.0, 60.0]
    assert decide(POLICY, failure, 5, age_s=0).verdict is Verdict.GIVE_UP


def test_retry_after_wins_over_backoff() -> None:
    limited = NotifyResult.failed(FailureReason.RATE_LIMITED, "x", status=429, retry_after_s=42)
    decision = decide(POLICY, limited, 1, age_s=0)
    assert (decision.verdict, decision.delay_s) == (Verdict.RETRY, 42)
    short = NotifyResult.failed(FailureReason.RATE_LIMITED, "x", status=429, retry_after_s=1)
    assert decide(POLICY, short, 1, age_s=0).delay_s == 1  # sooner than our backoff is allowed too


def test_a_wait_past_max_age_gives_up_now() -> None:
    limited = NotifyResult.failed(FailureReason.RATE_LIMITED, "x", status=429, retry_after_s=300)
    decision = decide(POLICY, limited, 1, age_s=400)
    assert decision.verdict is Verdict.GIVE_UP
    assert "max_age_s" in decision.why


@pytest.mark.parametrize(
    "reason", [FailureReason.CLIENT_ERROR, FailureReason.BAD_RESPONSE, FailureReason.CONFIG_ERROR]
)
def test_failures_a_retry_cannot_fix_are_given_up_at_once(reason: FailureReason) -> None:
    decision = decide(POLICY, NotifyResult.failed(reason, "x"), 1, age_s=0)
    assert decision.verdict is Verdict.GIVE_UP
    assert reason.value in decision.why


def test_timeouts_and_connection_errors_are_retried() -> None:
    for reason in (FailureReason.TIMEOUT, FailureReason.CONNECTION_ERROR):
        assert decide(POLICY, NotifyResult.failed(reason, "x"), 1, age_s=0).verdict is Verdict.RETRY


def test_delivered() -> None:
    assert decide(POLICY, NotifyResult.delivered(200), 3, age_s=9999).verdict is Verdict.DELIVERED


def test_redact_url_keeps_scheme_host_and_port_only() -> None:
    assert redact_url("https://hooks.slack.com/services/T/B/secret") == "https://hooks.slack.com"
    assert redact_url("http://127.0.0.1:8080/hook?token=abc") == "http://127.0.0.1:8080"
    assert redact_url("http://user:pw@host:99999/x") == "http://host"  # a bad port is not echoed either
