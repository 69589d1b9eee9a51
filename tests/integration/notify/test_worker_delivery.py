"""A real `lazarus worker` process delivers: notify queue after the recovery queue, retries run by
RQ's scheduler (Retry-After honoured), and its log carries no secret even at DEBUG."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from receiver.bootstrap import build
from receiver.domain.events import EventKind
from receiver.lab.testing import wait_until
from receiver.metrics import RedisStateCollector
from receiver.notify.ledger import DeliveryLedger
from receiver.settings import Settings
from tests.integration.notify.conftest import secrets_of
from tests.integration.notify.endpoints import Endpoint
from tests.unit.notify.records import UUID, evacuation_failed_record

pytestmark = pytest.mark.e2e

CLOUDS = {
    "clouds": {
        "nowhere": {  # read at worker start; never called here
            "auth_type": "admin_token",
            "auth": {"endpoint": "http://127.0.0.1:9/v2.1", "token": "unused"},
            "compute_api_version": "2.94",
        }
    }
}


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings], redis_client: redis.Redis, notifier_settings: list[dict[str, Any]]
) -> Settings:
    return make_settings(notifiers=notifier_settings, notify={"backoff_s": [0.5]}, nova={"cloud": "nowhere"})


@pytest.fixture
def worker_log(settings: Settings, tmp_path: Path) -> Iterator[Path]:
    config = tmp_path / "lazarus.yaml"
    values = settings.model_dump(mode="json", exclude={"redis_url", "webhook"})
    values.update(
        redis_url=settings.redis_url.get_secret_value(),
        webhook={"bearer_tokens": ["t0k3n-for-tests"]},
        log_level="DEBUG",
        log_json=True,
    )
    config.write_text(yaml.safe_dump(values))
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump(CLOUDS))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OS_") and k != "LAZARUS_CONFIG"},
        "LAZARUS_CONFIG": str(config),
        "OS_CLIENT_CONFIG_FILE": str(clouds),
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "worker.log"
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "receiver", "worker", "--name", f"notify-test-{os.getpid()}"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own group: stopping it reaches the scheduler and work-horses
        )
    try:
        yield log
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)


def test_worker_delivers_with_retries_and_logs_no_secret(
    settings: Settings, worker_log: Path, slack: Endpoint, pagerduty: Endpoint, hook: Endpoint
) -> None:
    slack.then("429:2")
    pagerduty.then("500")
    services = build(settings)
    services.events.publish(EventKind.FAILED, evacuation_failed_record())
    ledger = DeliveryLedger(services.redis, settings.key_prefix)

    def all_delivered() -> bool:
        outcomes = {d.notifier: d.outcome for d in ledger.deliveries(UUID)}
        return outcomes == {"ops-slack": "delivered", "oncall": "delivered", "itsm": "delivered"}

    wait_until(all_delivered, timeout=90, interval=0.2, what="every notifier delivered by the worker")
    first, second = slack.received
    assert second.at - first.at >= 2.0  # Retry-After: 2, through RQ's scheduler
    attempts = {d.notifier: d.attempts for d in ledger.deliveries(UUID)}
    assert attempts == {"ops-slack": 2, "oncall": 2, "itsm": 1}
    assert [b["event_action"] for b in pagerduty.bodies()] == ["trigger", "trigger"]

    samples = {
        (s.name, tuple(s.labels.values())): s.value
        for family in RedisStateCollector(services.redis, settings.key_prefix, settings.queue_name).collect()
        for s in family.samples
    }
    assert samples[("lazarus_notifications_failed_total", ("ops-slack", "rate_limited"))] == 1
    assert samples[("lazarus_notifications_failed_total", ("oncall", "server_error"))] == 1
    # Series exist from the worker's start, before anything failed.
    assert samples[("lazarus_notifications_dropped_total", ("itsm", "timeout"))] == 0

    log = worker_log.read_text(errors="replace")
    assert "notification delivered" in log
    for secret in secrets_of(slack, hook):
        assert secret not in log
