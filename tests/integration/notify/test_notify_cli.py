"""`lazarus notify test NOTIFIER` and the delivery results shown by `lazarus notifications show`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from click.testing import CliRunner, Result

from receiver.bootstrap import build
from receiver.cli import main
from receiver.domain.alerts import parse_webhook
from receiver.domain.events import EventKind
from receiver.settings import Settings
from tests.integration.core.helpers import host_alert, webhook
from tests.integration.notify.conftest import secrets_of
from tests.integration.notify.delivery_helpers import drain, wire
from tests.integration.notify.endpoints import Endpoint

pytestmark = pytest.mark.integration


@pytest.fixture
def config(
    make_settings: Callable[..., Settings],
    redis_client: redis.Redis,
    notifier_settings: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    settings = make_settings(notifiers=notifier_settings, notify={"backoff_s": [0.2]})
    path = tmp_path / "lazarus.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "redis_url": settings.redis_url.get_secret_value(),
                "queue_name": settings.queue_name,
                "webhook": {"bearer_tokens": ["t0k3n-for-tests"]},
                "notifiers": notifier_settings,
                "notify": {"backoff_s": [0.2]},
                "public_url": "https://lazarus.example",
                "log_json": False,
            }
        )
    )
    monkeypatch.setenv("LAZARUS_CONFIG", str(path))
    return settings


def lazarus(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_notify_test_sends_one_message_to_slack(config: Settings, slack: Endpoint) -> None:
    result = lazarus("notify", "test", "ops-slack")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "ops-slack (slack) message: delivered"
    [body] = slack.bodies()
    assert "Lazarus test message from" in body["blocks"][0]["text"]["text"]


def test_notify_test_triggers_and_resolves_on_pagerduty(config: Settings, pagerduty: Endpoint) -> None:
    result = lazarus("notify", "test", "oncall")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "oncall (pagerduty) trigger: delivered trigger accepted",
        "oncall (pagerduty) resolve: delivered resolve accepted",
    ]
    [(dedup, actions)] = pagerduty.incidents.items()
    assert dedup.startswith("lazarus-test-")
    assert actions == ["trigger", "resolve"]  # nothing left open by a wiring check


def test_notify_test_failure_exits_non_zero_without_the_secret(
    config: Settings, slack: Endpoint, hook: Endpoint
) -> None:
    slack.then("400")
    result = lazarus("notify", "test", "ops-slack")
    assert result.exit_code == 1
    assert "FAILED (client_error)" in result.output
    assert f"{slack.base} answered HTTP 400 invalid_payload" in result.output
    for secret in secrets_of(slack, hook):
        assert secret not in result.output


def test_notify_test_names_the_known_notifiers(config: Settings) -> None:
    result = lazarus("notify", "test", "nope")
    assert result.exit_code != 0
    assert "no notifier named 'nope' (known: ops-slack, oncall, itsm)" in result.output


def test_notifications_show_has_the_last_delivery_per_notifier(
    config: Settings, slack: Endpoint, pagerduty: Endpoint
) -> None:
    services = build(config)
    [accepted] = services.intake().accept(parse_webhook(webhook(host_alert("node-01"))))
    uuid = accepted.notification_uuid
    record = services.store.get(uuid)
    pagerduty.then("400")
    services.events.publish(EventKind.FAILED, record)
    wire(services)
    drain(services)

    shown = lazarus("notifications", "show", uuid)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.split("  notified (last result per notifier)\n", 1)[1].splitlines()
    assert [line.split()[1:5] for line in lines] == [
        ["itsm", "recovery_failed", "delivered", "attempt"],
        ["oncall", "recovery_failed", "failed", "attempt"],
        ["ops-slack", "recovery_failed", "delivered", "attempt"],
    ]
    assert "HTTP 400" in lines[1] and "client_error is not worth retrying" in lines[1]

    as_json = json.loads(lazarus("notifications", "show", uuid, "--json").output)
    deliveries = {d["notifier"]: d for d in as_json["notification"]["deliveries"]}
    assert deliveries["ops-slack"]["status"] == 200
    assert (deliveries["oncall"]["outcome"], deliveries["oncall"]["reason"]) == ("failed", "client_error")
