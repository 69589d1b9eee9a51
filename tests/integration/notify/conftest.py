"""Fake Slack, PagerDuty and webhook endpoints, and notifier settings whose secrets point at them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.notify.endpoints import PAGERDUTY_KEY, Endpoint, serving


@pytest.fixture
def slack() -> Iterator[Endpoint]:
    with serving("slack") as endpoint:
        yield endpoint


@pytest.fixture
def pagerduty() -> Iterator[Endpoint]:
    with serving("pagerduty") as endpoint:
        yield endpoint


@pytest.fixture
def hook() -> Iterator[Endpoint]:
    with serving("webhook") as endpoint:
        yield endpoint


@pytest.fixture
def notifier_settings(
    slack: Endpoint, pagerduty: Endpoint, hook: Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> list[dict[str, Any]]:
    """The three notifiers as an operator writes them: secrets by reference only."""
    monkeypatch.setenv("LAZARUS_TEST_SLACK_URL", slack.url)
    key_file = tmp_path / "pagerduty-routing-key"
    key_file.write_text(PAGERDUTY_KEY + "\n")
    url_file = tmp_path / "webhook-url"
    url_file.write_text(hook.url)
    return [
        {"name": "ops-slack", "type": "slack", "url": {"env": "LAZARUS_TEST_SLACK_URL"}, "timeout_s": 3},
        {
            "name": "oncall",
            "type": "pagerduty",
            "routing_key": {"file": str(key_file)},
            "endpoint": pagerduty.url,
            "timeout_s": 3,
        },
        {"name": "itsm", "type": "webhook", "url": {"file": str(url_file)}, "timeout_s": 3},
    ]


def secrets_of(slack: Endpoint, hook: Endpoint) -> list[str]:
    """What must never be shown: the webhook URLs' secret parts and the routing key."""
    from tests.integration.notify.endpoints import SLACK_PATH, WEBHOOK_PATH

    return [
        slack.url,
        hook.url,
        SLACK_PATH,
        WEBHOOK_PATH,
        SLACK_PATH.rsplit("/", 1)[1],
        WEBHOOK_PATH.rsplit("/", 1)[1],
        PAGERDUTY_KEY,
    ]
