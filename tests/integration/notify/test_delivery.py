"""Delivery jobs over a real redis-server and RQ, against the fake Slack, PagerDuty and webhook."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import redis

from receiver.bootstrap import Services, build
from receiver.domain.events import EventKind
from receiver.domain.record import Notification
from receiver.metrics import RedisStateCollector
from receiver.notify.ledger import DeliveryEntry, DeliveryLedger
from receiver.settings import Settings
from tests.integration.notify.conftest import secrets_of
from tests.integration.notify.delivery_helpers import drain, everything_in, logged, wire
from tests.integration.notify.endpoints import Endpoint
from tests.unit.notify.records import UUID, evacuation_failed_record, finished_record, new_record

pytestmark = pytest.mark.integration

FAST = {"backoff_s": [0.2], "max_attempts": 3, "max_age_s": 600}


@pytest.fixture
def make_services(
    make_settings: Callable[..., Settings], redis_client: redis.Redis, notifier_settings: list[dict[str, Any]]
) -> Callable[..., Services]:
    def make(
        only: tuple[str, ...] = ("slack", "pagerduty", "webhook"), timeout_s: float = 3, **overrides: Any
    ) -> Services:
        chosen = [{**n, "timeout_s": timeout_s} for n in notifier_settings if n["type"] in only]
        services = build(make_settings(notifiers=chosen, **{"notify": FAST, **overrides}))
        wire(services)
        return services

    return make


def deliveries(services: Services, uuid: str = UUID) -> dict[str, DeliveryEntry]:
    return {
        d.notifier: d for d in DeliveryLedger(services.redis, services.settings.key_prefix).deliveries(uuid)
    }


def counters(services: Services) -> dict[tuple[str, tuple[str, ...]], float]:
    collector = RedisStateCollector(
        services.redis, services.settings.key_prefix, services.settings.queue_name
    )
    values = {}
    for family in collector.collect():
        for sample in family.samples:
            values[(sample.name, tuple(sample.labels.values()))] = sample.value
    return values


def publish(services: Services, kind: EventKind, record: Notification) -> None:
    services.events.publish(kind, record)


def test_publish_queues_one_job_per_routed_notifier(make_services: Callable[..., Services]) -> None:
    services = make_services()
    publish(services, EventKind.FAILED, evacuation_failed_record())
    queued = deliveries(services)
    assert {n: (d.outcome, d.event, d.seq) for n, d in queued.items()} == {
        "ops-slack": ("queued", "recovery_failed", 1),
        "oncall": ("queued", "recovery_failed", 1),
        "itsm": ("queued", "recovery_failed", 1),
    }
    publish(services, EventKind.STARTED, new_record())  # PagerDuty does not take "started"
    assert {n: d.seq for n, d in deliveries(services).items()} == {"ops-slack": 2, "oncall": 1, "itsm": 2}


def test_delivered_results_metrics_and_payloads(
    make_services: Callable[..., Services], slack: Endpoint, pagerduty: Endpoint, hook: Endpoint
) -> None:
    services = make_services()
    publish(services, EventKind.FAILED, evacuation_failed_record())
    drain(services)
    done = deliveries(services)
    assert {n: (d.outcome, d.attempts) for n, d in done.items()} == {
        "ops-slack": ("delivered", 1),
        "oncall": ("delivered", 1),
        "itsm": ("delivered", 1),
    }
    assert (done["ops-slack"].status, done["oncall"].status) == (200, 202)
    assert all(d.latency_s is not None and d.latency_s >= 0 for d in done.values())
    [slack_body] = slack.bodies()
    assert slack_body["blocks"][0]["text"]["text"].endswith("node-01: recovery failed (evacuation_failed)")
    [trigger] = pagerduty.bodies()
    assert (trigger["event_action"], trigger["dedup_key"]) == ("trigger", UUID)
    assert pagerduty.open_incidents() == [UUID]
    [webhook_request] = hook.received
    assert webhook_request.headers["Idempotency-Key"] == f"{UUID}:1"
    assert webhook_request.body["record"]["notification_uuid"] == UUID
    values = counters(services)
    for name in ("ops-slack", "oncall", "itsm"):
        assert values[("lazarus_notifications_sent_total", (name,))] == 1
        assert values[("lazarus_notification_latency_seconds_count", (name,))] == 1


def test_429_is_retried_after_its_retry_after(
    make_services: Callable[..., Services], slack: Endpoint
) -> None:
    services = make_services(only=("slack",))
    slack.then("429:1")
    publish(services, EventKind.FAILED, evacuation_failed_record())
    drain(services)
    first, second = slack.received
    assert second.at - first.at >= 1.0  # Retry-After honoured (our own backoff is 0.2 s)
    entry = deliveries(services)["ops-slack"]
    assert (entry.outcome, entry.attempts, entry.status) == ("delivered", 2, 200)
    values = counters(services)
    assert values[("lazarus_notifications_failed_total", ("ops-slack", "rate_limited"))] == 1
    assert values[("lazarus_notifications_sent_total", ("ops-slack",))] == 1


def test_5xx_is_retried_until_max_attempts_then_given_up(
    make_services: Callable[..., Services], hook: Endpoint
) -> None:
    services = make_services(only=("webhook",))
    hook.then("500", "500", "500")
    publish(services, EventKind.FAILED, evacuation_failed_record())
    drain(services)
    assert len(hook.received) == 3  # max_attempts
    entry = deliveries(services)["itsm"]
    assert (entry.outcome, entry.attempts, entry.reason, entry.status) == ("failed", 3, "server_error", 500)
    assert counters(services)[("lazarus_notifications_dropped_total", ("itsm", "server_error"))] == 1


def test_other_4xx_is_not_retried(make_services: Callable[..., Services], pagerduty: Endpoint) -> None:
    services = make_services(only=("pagerduty",))
    pagerduty.then("400")
    publish(services, EventKind.FAILED, evacuation_failed_record())
    drain(services)
    assert len(pagerduty.received) == 1
    entry = deliveries(services)["oncall"]
    assert (entry.outcome, entry.reason, entry.status) == ("failed", "client_error", 400)
    assert "Event object is invalid" in entry.detail
    assert counters(services)[("lazarus_notifications_dropped_total", ("oncall", "client_error"))] == 1


def test_slack_gets_at_most_one_message_per_second(
    make_services: Callable[..., Services], slack: Endpoint
) -> None:
    services = make_services(only=("slack",))
    for n in range(5):  # some wait in the job, later ones are rescheduled for their slot
        publish(services, EventKind.FAILED, replace(evacuation_failed_record(), notification_uuid=f"r{n}"))
    drain(services)
    times = sorted(r.at for r in slack.received)
    assert len(times) == 5
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.5, gaps  # paced (1 s slots); unpaced they would be milliseconds apart


def test_a_trigger_still_retrying_never_reopens_a_resolved_incident(
    make_services: Callable[..., Services], pagerduty: Endpoint
) -> None:
    services = make_services(only=("pagerduty",))
    pagerduty.then("500")  # the trigger fails once and is retried later...
    record = evacuation_failed_record()
    publish(services, EventKind.FAILED, record)
    publish(services, EventKind.FINISHED, finished_record())  # ...after the recovery already finished
    drain(services)
    actions = [b["event_action"] for b in pagerduty.bodies()]
    assert actions == ["trigger", "resolve"]  # the failed trigger, then the resolve; no late trigger
    assert pagerduty.open_incidents() == []
    entry = deliveries(services)["oncall"]
    assert (entry.event, entry.outcome, entry.seq) == ("recovery_finished", "delivered", 2)


def test_unreadable_secret_is_a_config_error_naming_the_reference(
    make_services: Callable[..., Services], slack: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = make_services(only=("slack",))
    monkeypatch.delenv("LAZARUS_TEST_SLACK_URL")
    publish(services, EventKind.FAILED, evacuation_failed_record())
    drain(services)
    entry = deliveries(services)["ops-slack"]
    assert (entry.outcome, entry.reason, entry.attempts) == ("failed", "config_error", 1)
    assert entry.detail == (
        "notifier ops-slack: url: environment variable LAZARUS_TEST_SLACK_URL is not set; "
        "config_error is not worth retrying"
    )
    assert slack.received == []


def test_failing_endpoints_leak_no_secret_into_redis_or_logs(
    make_services: Callable[..., Services],
    slack: Endpoint,
    pagerduty: Endpoint,
    hook: Endpoint,
    *,
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    services = make_services(notify={**FAST, "max_attempts": 2}, timeout_s=0.5)
    slack.then("400")
    pagerduty.then("429:1", "500")
    hook.then("hang", "500")
    publish(services, EventKind.FAILED, evacuation_failed_record())
    drain(services)
    assert {d.outcome for d in deliveries(services).values()} == {"failed"}
    stored = "\n".join(everything_in(redis_client))
    assert "rq:job:notify-" in stored  # the jobs are there, arguments included
    logs = logged(caplog.records)
    for secret in secrets_of(slack, hook):
        assert secret not in stored, "a secret reached Redis"
        assert secret not in logs, "a secret reached a log line"
    shown = json.dumps([d.__dict__ for d in deliveries(services).values()])
    assert "answered HTTP 400" in shown and "answered HTTP 500" in shown
    assert "no answer from" in logs  # the webhook's first attempt timed out
