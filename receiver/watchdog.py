"""The Watchdog heartbeat: proof that Prometheus -> Alertmanager -> Lazarus still works.

The always-firing `Watchdog` alert (rules/lazarus-self.rules.yml) is routed to Lazarus every minute
or so (deploy/alertmanager.yml). It is not a failure: it opens no record. Lazarus keeps the time it
last arrived in Redis (any receiver may get it; all expose it) as
`lazarus_watchdog_last_seen_timestamp_seconds`, and LazarusWatchdogMissing pages when it gets old.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from receiver.adapters.redis_store import translate_errors
from receiver.domain.alerts import Alert, AlertStatus, WebhookMessage
from receiver.errors import StoreUnavailable

ALERTNAME = "Watchdog"
OUTCOME = "watchdog"

# KEYS: 1 last-seen key; ARGV: 1 unix time. Keeps the newest: replicas may deliver out of order.
_KEEP_NEWEST = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""


def is_heartbeat(alert: Alert) -> bool:
    return alert.name == ALERTNAME and alert.status is AlertStatus.FIRING


def split(message: WebhookMessage) -> tuple[list[Alert], WebhookMessage]:
    """The firing Watchdog alerts, and the message without any Watchdog alert (firing or not)."""
    beats = [a for a in message.alerts if is_heartbeat(a)]
    rest = tuple(a for a in message.alerts if a.name != ALERTNAME)
    return beats, WebhookMessage(
        receiver=message.receiver,
        status=message.status,
        alerts=rest,
        group_key=message.group_key,
        external_url=message.external_url,
        truncated_alerts=message.truncated_alerts,
        common_labels=message.common_labels,
    )


class Heartbeat:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.redis = client
        self.key = f"{prefix}:watchdog:last_seen"
        self._keep_newest = client.register_script(_KEEP_NEWEST)

    def seen(self, now: datetime) -> None:
        """Record a delivery. Redis trouble raises StoreUnavailable: the webhook answers 503 and
        Alertmanager delivers again, rather than the heartbeat silently going stale."""
        with translate_errors():
            self._keep_newest(keys=[self.key], args=[f"{now.timestamp():.3f}"])

    def last_seen(self) -> float | None:
        with translate_errors():
            raw = self.redis.get(self.key)
        return None if raw is None else float(raw)


class HeartbeatCollector(Collector):
    """`lazarus_watchdog_last_seen_timestamp_seconds`; absent until the first Watchdog arrives (and
    while Redis does not answer: lazarus_store_up says so)."""

    def __init__(self, heartbeat: Heartbeat) -> None:
        self.heartbeat = heartbeat

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            seen = self.heartbeat.last_seen()
        except (StoreUnavailable, redis.RedisError):
            return  # the scrape goes on without it
        if seen is None:
            return
        yield GaugeMetricFamily(
            "lazarus_watchdog_last_seen_timestamp_seconds",
            "When a receiver last got the always-firing Watchdog alert from Alertmanager (unix time).",
            value=seen,
        )
