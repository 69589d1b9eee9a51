"""Prometheus metrics.

Outcomes of alerts, recoveries, fences and evacuations are counted in Redis, because they
happen in gunicorn workers, in RQ's forked work-horses and on other machines; any receiver
then exposes the same cluster-wide totals (scrape one replica, or aggregate with max()).
Only per-process facts (HTTP requests answered by this process) use prometheus_client's own
counters, in multiprocess mode under gunicorn.

Label values are bounded: outcomes and `Reason` values, never hosts or instance ids. The one
exception is `segment`, on the spare gauges: segment names are operator-defined and few.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from receiver import __version__
from receiver.adapters.redis_inventory import InventoryStore
from receiver.adapters.redis_store import RecordStore
from receiver.domain.alerts import NotificationType
from receiver.domain.reasons import AlertOutcome
from receiver.domain.record import Status
from receiver.errors import LazarusError
from receiver.monitoring.spare_readiness import ReadinessStore
from receiver.monitoring.spares import SegmentSpares, all_segment_spares

log = logging.getLogger(__name__)

DURATION_BUCKETS = (5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A notifier's failed attempts, by why (receiver.notify.result.FailureReason).
NOTIFY_FAILURES = (
    "client_error",
    "server_error",
    "rate_limited",
    "timeout",
    "connection_error",
    "bad_response",
    "config_error",
    "internal_error",
)
FENCE_OUTCOMES = ("off_confirmed", "bmc_unreachable", "bmc_refused", "power_still_on", "fence_config_invalid")
EVACUATION_OUTCOMES = ("succeeded", "failed")


@dataclass(frozen=True)
class _Counter:
    name: str
    doc: str
    labels: tuple[str, ...]
    initial: tuple[tuple[str, ...], ...] = ()


COUNTERS = {
    c.name: c
    for c in (
        _Counter(
            "lazarus_alerts_received",
            "Alerts received through the webhook, by what Lazarus did with them.",
            ("outcome",),
            (*((o.value,) for o in AlertOutcome), ("firing_after_resolved",)),
        ),
        _Counter(
            "lazarus_recoveries",
            "Recoveries that ended, by type, final status and reason.",
            ("type", "status", "reason"),
        ),
        _Counter(
            "lazarus_fence_attempts",
            "Attempts to power a host off and read back OFF, by outcome.",
            ("outcome",),
            tuple((o,) for o in FENCE_OUTCOMES),
        ),
        _Counter(
            "lazarus_evacuations",
            "Instance evacuations that ended, by outcome.",
            ("outcome",),
            tuple((o,) for o in EVACUATION_OUTCOMES),
        ),
        _Counter(
            "lazarus_notifications_sent",
            "Messages a notifier's endpoint accepted.",
            ("notifier",),
        ),
        _Counter(
            "lazarus_notifications_failed",
            "Failed delivery attempts (retried or not), by notifier and reason.",
            ("notifier", "reason"),
        ),
        _Counter(
            "lazarus_notifications_dropped",
            "Messages given up on (not retryable, or out of attempts or time), by notifier and reason.",
            ("notifier", "reason"),
        ),
    )
}

# name -> (help, label names, bucket bounds)
HISTOGRAMS: dict[str, tuple[str, list[str], tuple[float, ...]]] = {
    "lazarus_recovery_duration_seconds": (
        "Time from record creation to its end.",
        ["type"],
        DURATION_BUCKETS,
    ),
    "lazarus_evacuation_duration_seconds": ("Time for one instance to move.", [], DURATION_BUCKETS),
    "lazarus_notification_latency_seconds": (
        "Time for one delivery attempt (request to answer or timeout).",
        ["notifier"],
        LATENCY_BUCKETS,
    ),
}


class Metrics:
    """Records events; every method is named for what happened (NHC's ObserveX style)."""

    def __init__(self, client: redis.Redis, prefix: str = "lazarus") -> None:
        self.redis = client
        self.key = f"{prefix}:metrics"

    def alert_received(self, outcome: str) -> None:
        self._inc("lazarus_alerts_received", (outcome,))

    def recovery_ended(self, ntype: str, status: str, reason: str | None, duration_s: float | None) -> None:
        self._inc("lazarus_recoveries", (ntype, status, reason or "none"))
        if duration_s is not None:
            self._observe("lazarus_recovery_duration_seconds", (ntype,), duration_s)

    def fence_attempted(self, outcome: str) -> None:
        self._inc("lazarus_fence_attempts", (outcome,))

    def evacuation_ended(self, outcome: str, duration_s: float) -> None:
        self._inc("lazarus_evacuations", (outcome,))
        self._observe("lazarus_evacuation_duration_seconds", (), duration_s)

    def notification_sent(self, notifier: str, latency_s: float) -> None:
        self._inc("lazarus_notifications_sent", (notifier,))
        self._observe("lazarus_notification_latency_seconds", (notifier,), latency_s, LATENCY_BUCKETS)

    def notification_failed(self, notifier: str, reason: str, latency_s: float | None) -> None:
        self._inc("lazarus_notifications_failed", (notifier, reason))
        if latency_s is not None:
            self._observe("lazarus_notification_latency_seconds", (notifier,), latency_s, LATENCY_BUCKETS)

    def notification_dropped(self, notifier: str, reason: str) -> None:
        self._inc("lazarus_notifications_dropped", (notifier, reason))

    def notifiers_configured(self, notifiers: list[str]) -> None:
        """Create every notifier's series at 0, so a first failure is a change, not a new series."""
        for name in notifiers:
            self._inc("lazarus_notifications_sent", (name,), 0.0)
            for reason in NOTIFY_FAILURES:
                self._inc("lazarus_notifications_failed", (name, reason), 0.0)
                self._inc("lazarus_notifications_dropped", (name, reason), 0.0)

    def _inc(self, name: str, labels: tuple[str, ...], amount: float = 1.0) -> None:
        # Metrics never break a recovery: a lost increment is logged, not raised.
        try:
            self.redis.hincrbyfloat(self.key, json.dumps([name, list(labels)]), amount)
        except redis.RedisError as exc:
            log.warning("metric not recorded", extra={"metric": name, "error": type(exc).__name__})

    def _observe(
        self, name: str, labels: tuple[str, ...], value: float, buckets: tuple[float, ...] = DURATION_BUCKETS
    ) -> None:
        try:
            pipe = self.redis.pipeline(transaction=True)
            for bound in (*buckets, float("inf")):
                if value <= bound:
                    pipe.hincrbyfloat(self.key, json.dumps([f"{name}_bucket", [*labels, _le(bound)]]), 1)
            pipe.hincrbyfloat(self.key, json.dumps([f"{name}_sum", list(labels)]), value)
            pipe.hincrbyfloat(self.key, json.dumps([f"{name}_count", list(labels)]), 1)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("metric not recorded", extra={"metric": name, "error": type(exc).__name__})


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class RedisStateCollector(Collector):
    """Exposes the cluster-wide counters and the live state (open recoveries, queue depth)."""

    def __init__(self, client: redis.Redis, prefix: str, queue_name: str) -> None:
        self.redis = client
        self.prefix = prefix
        self.queue_name = queue_name

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        yield _build_info()
        try:
            raw = self.redis.hgetall(f"{self.prefix}:metrics")
            open_count = int(self.redis.scard(f"{self.prefix}:open"))
            queue_depth = int(self.redis.llen(f"rq:queue:{self.queue_name}"))
        except redis.RedisError:
            up = GaugeMetricFamily("lazarus_store_up", "Whether Redis answered this scrape.")
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily("lazarus_store_up", "Whether Redis answered this scrape.")
        up.add_metric([], 1)
        yield up
        values = _decode(raw)
        yield from _counters(values)
        yield from _histograms(values)
        in_progress = GaugeMetricFamily("lazarus_recoveries_in_progress", "Recoveries open (new or running).")
        in_progress.add_metric([], open_count)
        yield in_progress
        depth = GaugeMetricFamily("lazarus_queue_depth", "Jobs waiting in the recovery queue.")
        depth.add_metric([], queue_depth)
        yield depth
        yield from self._spares()

    def _spares(self) -> Iterator[GaugeMetricFamily]:
        """Per segment: free reserved spares, and whether its recovery method needs one."""
        try:
            segments = all_segment_spares(
                InventoryStore(self.redis, self.prefix),
                RecordStore(self.redis, self.prefix),
                ReadinessStore(self.redis, self.prefix),
            )
        except (LazarusError, redis.RedisError) as exc:
            # The families are left out (absent, not zero): a zero would claim "no spare".
            log.warning("spare gauges not computed", extra={"error": type(exc).__name__})
            return
        yield from spare_families(segments)


def spare_families(segments: Iterable[SegmentSpares]) -> Iterator[GaugeMetricFamily]:
    free = GaugeMetricFamily(
        "lazarus_segment_free_spares",
        "Reserved spares of the segment that are not on maintenance, not held by an open recovery, "
        "and whose nova-compute was up at the last readiness check.",
        labels=["segment"],
    )
    needed = GaugeMetricFamily(
        "lazarus_segment_spares_needed",
        "1 when the segment is enabled and its recovery method uses reserved spares "
        "(reserved_host, auto_priority, rh_priority).",
        labels=["segment"],
    )
    for s in segments:
        free.add_metric([s.segment.name], len(s.verdict.free))
        needed.add_metric([s.segment.name], 1 if s.needed else 0)
    yield free
    yield needed


def _build_info() -> GaugeMetricFamily:
    info = GaugeMetricFamily("lazarus_build_info", "Lazarus version.", labels=["version"])
    info.add_metric([__version__], 1)
    return info


def _decode(raw: dict[bytes, bytes]) -> dict[tuple[str, tuple[str, ...]], float]:
    values: dict[tuple[str, tuple[str, ...]], float] = {}
    for field, value in raw.items():
        name, labels = json.loads(field)
        values[(name, tuple(labels))] = float(value)
    return values


def _counters(values: dict[tuple[str, tuple[str, ...]], float]) -> Iterable[CounterMetricFamily]:
    for spec in COUNTERS.values():
        family = CounterMetricFamily(spec.name, spec.doc, labels=list(spec.labels))
        seen = {labels: v for (name, labels), v in values.items() if name == spec.name}
        for labels in spec.initial:
            seen.setdefault(labels, 0.0)
        if spec.name == "lazarus_recoveries":
            for ntype in NotificationType:
                for status in (Status.FINISHED, Status.FAILED):
                    seen.setdefault((ntype.value, status.value, "none"), 0.0)
        for labels, value in sorted(seen.items()):
            family.add_metric(list(labels), value)
        yield family


def _histograms(values: dict[tuple[str, tuple[str, ...]], float]) -> Iterable[HistogramMetricFamily]:
    for name, (doc, label_names, bounds) in HISTOGRAMS.items():
        family = HistogramMetricFamily(name, doc, labels=label_names)
        series: dict[tuple[str, ...], dict[str, float]] = {}
        for (metric, labels), value in values.items():
            if metric == f"{name}_bucket":
                series.setdefault(labels[:-1], {})[labels[-1]] = value
        for labels, buckets in sorted(series.items()):
            ordered = [(_le(b), buckets.get(_le(b), 0.0)) for b in (*bounds, float("inf"))]
            total = values.get((f"{name}_sum", labels), 0.0)
            family.add_metric(list(labels), ordered, total)
        yield family
