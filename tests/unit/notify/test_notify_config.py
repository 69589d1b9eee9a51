"""The `notifiers` and `notify` settings: references only, routing, PagerDuty's events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from receiver.domain.events import EventKind
from receiver.errors import ConfigError
from receiver.notify.config import (
    PAGERDUTY_EVENTS,
    PagerDutyNotifierConfig,
    SecretRef,
    SlackNotifierConfig,
    url_secret_parts,
)
from receiver.settings import Settings, load_settings

pytestmark = pytest.mark.unit

SLACK = {"name": "ops", "type": "slack", "url": {"env": "SLACK_URL"}}
PD = {"name": "oncall", "type": "pagerduty", "routing_key": {"file": "/etc/lazarus/pd"}}


def settings(*notifiers: dict[str, Any], **extra: Any) -> Settings:
    return Settings(notifiers=list(notifiers), **extra)


def test_three_kinds_with_their_defaults() -> None:
    hook = {"name": "itsm", "type": "webhook", "url": {"file": "/etc/lazarus/itsm"}}
    slack, pd, webhook = settings(SLACK, PD, hook).notifiers
    assert isinstance(slack, SlackNotifierConfig) and isinstance(pd, PagerDutyNotifierConfig)
    assert (slack.type, slack.min_interval_s, slack.finished) == ("slack", 1.0, "summary")
    assert set(slack.events) == set(EventKind)
    assert set(pd.events) == PAGERDUTY_EVENTS
    assert pd.endpoint == "https://events.pagerduty.com/v2/enqueue"
    assert (webhook.type, webhook.min_interval_s) == ("webhook", 0.0)


@pytest.mark.parametrize(
    ("notifier", "problem"),
    [
        ({**SLACK, "url": "https://hooks.slack.com/services/T/B/secret"}, "url"),  # inline value refused
        ({**SLACK, "url": {"env": "A", "file": "/x"}}, "exactly one"),
        ({**SLACK, "url": {}}, "exactly one"),
        ({**SLACK, "type": "teams"}, "type"),
        ({**SLACK, "name": "Ops Slack"}, "name"),
        ({**PD, "events": ["recovery_started"]}, "pagerduty acts only on"),
        ({**SLACK, "events": ["something_else"]}, "events"),
    ],
)
def test_invalid_notifiers_name_the_key(notifier: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(notifiers=[notifier])
    assert problem in caught.value.message
    assert "notifiers.0" in caught.value.message
    assert "hooks.slack.com/services/T/B/secret" not in caught.value.message


def test_names_are_unique() -> None:
    with pytest.raises(ConfigError, match="unique: ops"):
        load_settings(notifiers=[SLACK, SLACK])


def test_notifiers_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAZARUS_CONFIG", raising=False)
    monkeypatch.setenv("LAZARUS_NOTIFIERS", json.dumps([SLACK]))
    monkeypatch.setenv("LAZARUS_NOTIFY__MAX_ATTEMPTS", "3")
    loaded = load_settings()
    assert [n.name for n in loaded.notifiers] == ["ops"]
    assert loaded.notify.max_attempts == 3


def test_routing_by_event_and_segment() -> None:
    [ops] = settings({**SLACK, "events": ["recovery_failed"], "segments": ["rack-a"]}).notifiers
    assert ops.wants(EventKind.FAILED, "rack-a")
    assert not ops.wants(EventKind.FAILED, "rack-b")
    assert not ops.wants(EventKind.FAILED, None)  # unknown segment: only notifiers without a filter
    assert not ops.wants(EventKind.FINISHED, "rack-a")
    [everything] = settings(SLACK).notifiers
    assert everything.wants(EventKind.REFUSED, None)


def test_notify_queue_follows_the_recovery_queue() -> None:
    assert settings(queue_name="lz").notify.queue("lz") == "lz-notify"
    assert settings(notify={"queue_name": "alerts"}).notify.queue("lz") == "alerts"


def test_secret_ref_reads_env_or_file_and_names_only_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LZ_KEY", "  value-from-env\n")
    assert SecretRef(env="LZ_KEY").resolve("notifier x").reveal() == "value-from-env"
    path = tmp_path / "key"
    path.write_text("value-from-file\n")
    assert SecretRef(file=path).resolve("notifier x").reveal() == "value-from-file"
    monkeypatch.delenv("LZ_MISSING", raising=False)
    with pytest.raises(ConfigError, match="notifier x: environment variable LZ_MISSING is not set"):
        SecretRef(env="LZ_MISSING").resolve("notifier x")
    with pytest.raises(ConfigError, match="cannot read"):
        SecretRef(file=tmp_path / "nope").resolve("notifier x")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        SecretRef(file=tmp_path / "empty").resolve("notifier x")


def test_url_secret_parts_cover_path_query_and_tokens() -> None:
    parts = url_secret_parts("https://hooks.slack.com/services/T0001/B0002/abcdefghijklmnopqrstuvwx?x=1")
    assert "/services/T0001/B0002/abcdefghijklmnopqrstuvwx?x=1" in parts
    assert "abcdefghijklmnopqrstuvwx" in parts
    assert "services" not in parts  # a common word is not scrubbed from every log line
    assert "hooks.slack.com" not in parts


def test_log_scrubber_gets_the_resolved_notifier_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_URL", "https://hooks.slack.com/services/T0001/B0002/abcdefghijklmnopqrstuvwx")
    key = tmp_path / "pd"
    key.write_text("R0UT1NGk3yLAZARUS0123456789abcde")
    values = settings(SLACK, {**PD, "routing_key": {"file": str(key)}}).secrets()
    assert "abcdefghijklmnopqrstuvwx" in values
    assert "R0UT1NGk3yLAZARUS0123456789abcde" in values
    monkeypatch.delenv("SLACK_URL")
    assert "abcdefghijklmnopqrstuvwx" not in settings(SLACK).secrets()  # unreadable now: no error either
