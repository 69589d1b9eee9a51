"""The shared test kit every notifier runs (Alertmanager's notify/test): the same HTTP outcomes
against a local server that follows its API, and AssertNotifyLeaksNoSecret."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from receiver.adapters.notifiers.factory import build_notifier
from receiver.adapters.notifiers.http import JsonPoster
from receiver.bootstrap import utc_now
from receiver.domain.events import EventKind
from receiver.notify.message import Message, build_message
from receiver.notify.result import Notifier, NotifyResult
from receiver.settings import Settings
from tests.integration.notify.conftest import secrets_of
from tests.integration.notify.delivery_helpers import logged
from tests.integration.notify.endpoints import Endpoint
from tests.unit.notify.records import evacuation_failed_record

pytestmark = pytest.mark.integration

KINDS = ("slack", "pagerduty", "webhook")
SUCCESS_STATUS = {"slack": 200, "pagerduty": 202, "webhook": 200}


@dataclass
class Case:
    kind: str
    endpoint: Endpoint
    config: Any
    secrets: list[str]

    def notifier(self, **changes: Any) -> Notifier:
        return build_notifier(self.config.model_copy(update=changes), JsonPoster(), utc_now)


@pytest.fixture(params=KINDS)
def case(
    request: pytest.FixtureRequest,
    notifier_settings: list[dict[str, Any]],
    slack: Endpoint,
    pagerduty: Endpoint,
    hook: Endpoint,
) -> Case:
    settings = Settings(notifiers=notifier_settings)
    config = next(n for n in settings.notifiers if n.type == request.param)
    endpoint = {"slack": slack, "pagerduty": pagerduty, "webhook": hook}[request.param]
    return Case(request.param, endpoint, config, secrets_of(slack, hook))


def message() -> Message:
    return build_message(
        EventKind.FAILED,
        evacuation_failed_record(),
        seq=1,
        segment="rack-a",
        record_url="https://lazarus.example/v1/notifications/x",
    )


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing listens on (bound, never listening: connections are refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def test_accepted_message_is_delivered(case: Case) -> None:
    result = case.notifier().notify(message())
    assert result.ok, result
    assert result.status == SUCCESS_STATUS[case.kind]
    [body] = case.endpoint.bodies()
    assert body  # the fake validated it as its API does; a malformed body would have been a 400


def test_400_is_not_retried(case: Case) -> None:
    case.endpoint.then("400")
    result = case.notifier().notify(message())
    assert (result.ok, result.retryable, result.reason, result.status) == (False, False, "client_error", 400)


def test_429_is_retried_after_retry_after(case: Case) -> None:
    case.endpoint.then("429:7")
    result = case.notifier().notify(message())
    assert (result.ok, result.retryable, result.reason, result.status) == (False, True, "rate_limited", 429)
    assert result.retry_after_s == 7


def test_500_is_retried(case: Case) -> None:
    case.endpoint.then("500")
    result = case.notifier().notify(message())
    assert (result.ok, result.retryable, result.reason, result.status) == (False, True, "server_error", 500)


def test_timeout_is_retried(case: Case) -> None:
    case.endpoint.then("hang")
    result = case.notifier(timeout_s=0.5).notify(message())
    assert (result.ok, result.retryable, result.reason, result.status) == (False, True, "timeout", None)


def test_unreachable_endpoint_is_retried(
    case: Case, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    notifier = _pointed_at(case, f"http://127.0.0.1:{closed_port}", monkeypatch)
    result = notifier.notify(message())
    assert (result.ok, result.retryable, result.reason) == (False, True, "connection_error")


@pytest.mark.parametrize("behaviour", ["400", "429:1", "500", "hang", "unreachable"])
def test_notify_leaks_no_secret(
    case: Case,
    behaviour: str,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """AssertNotifyLeaksNoSecret: neither the URL's secret part nor the key, in the result or a log."""
    caplog.set_level(logging.DEBUG)
    if behaviour == "unreachable":
        notifier = _pointed_at(case, f"http://127.0.0.1:{closed_port}", monkeypatch)
        secrets = case.secrets + _secret_parts_at(case, closed_port)
    else:
        case.endpoint.then(behaviour)
        notifier = case.notifier(timeout_s=0.5)
        secrets = case.secrets
    result = notifier.notify(message())
    assert not result.ok
    shown = " ".join([repr(result), result.detail, str(result.__dict__), logged(caplog.records)])
    for secret in secrets:
        assert secret not in shown, f"{case.kind}: a secret leaked on {behaviour}"
    assert result.detail  # it still says what happened


def _pointed_at(case: Case, base: str, monkeypatch: pytest.MonkeyPatch) -> Notifier:
    """The same notifier, its URL moved to `base` (the secret path kept)."""
    if case.kind == "pagerduty":
        return case.notifier(endpoint=base + "/v2/enqueue")
    url = base + case.endpoint.url.removeprefix(case.endpoint.base)
    monkeypatch.setenv("LAZARUS_TEST_MOVED_URL", url)
    return case.notifier(
        url=case.config.url.model_copy(update={"env": "LAZARUS_TEST_MOVED_URL", "file": None})
    )


def _secret_parts_at(case: Case, port: int) -> list[str]:
    path = case.endpoint.url.removeprefix(case.endpoint.base)
    return [f"http://127.0.0.1:{port}{path}"] if case.kind != "pagerduty" else []


def test_results_say_what_happened_without_the_url(case: Case) -> None:
    case.endpoint.then("500")
    result: NotifyResult = case.notifier().notify(message())
    assert case.endpoint.base in result.detail  # scheme, host and port are fine to show
    assert "500" in result.detail
