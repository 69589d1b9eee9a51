"""Settings -> a notifier, with its secret read now (so a rotated file is picked up per send)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from receiver.adapters.notifiers.http import JsonPoster
from receiver.adapters.notifiers.pagerduty import PagerDutyNotifier
from receiver.adapters.notifiers.slack import SlackNotifier
from receiver.adapters.notifiers.webhook import WebhookNotifier
from receiver.notify.config import (
    NotifierConfig,
    PagerDutyNotifierConfig,
    SlackNotifierConfig,
    WebhookNotifierConfig,
)
from receiver.notify.result import Notifier


def build_notifier(config: NotifierConfig, http: JsonPoster, now: Callable[[], datetime]) -> Notifier:
    """Raises ConfigError (naming the notifier and the reference) when the secret cannot be read."""
    what = f"notifier {config.name}"
    if isinstance(config, SlackNotifierConfig):
        return SlackNotifier(
            config.name,
            config.url.resolve(f"{what}: url"),
            http,
            timeout_s=config.timeout_s,
            now=now,
            finished=config.finished,
        )
    if isinstance(config, PagerDutyNotifierConfig):
        return PagerDutyNotifier(
            config.name,
            config.routing_key.resolve(f"{what}: routing_key"),
            http,
            endpoint=config.endpoint,
            timeout_s=config.timeout_s,
            now=now,
        )
    assert isinstance(config, WebhookNotifierConfig)
    return WebhookNotifier(
        config.name, config.url.resolve(f"{what}: url"), http, timeout_s=config.timeout_s, now=now
    )
