"""The Watchdog heartbeat over HTTP against a real redis-server: recorded, never a recovery,
exposed as lazarus_watchdog_last_seen_timestamp_seconds, 503 while Redis is away."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from receiver.bootstrap import build
from receiver.settings import Settings
from receiver.watchdog import Heartbeat
from receiver.web.app import create_app
from tests.conftest import TEST_TOKEN
from tests.integration.core.helpers import host_alert, webhook

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}
URL = "/v1/webhooks/alertmanager"
METRIC = "lazarus_watchdog_last_seen_timestamp_seconds"


def watchdog_alert(status: str = "firing") -> dict[str, Any]:
    """As Alertmanager sends our always-firing Watchdog rule."""
    return {
        "status": status,
        "labels": {"alertname": "Watchdog", "severity": "none"},
        "annotations": {"summary": "Always firing: proves that alerts reach Lazarus"},
        "startsAt": "2026-11-25T12:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-25T12:30:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": "4f6878f8c16c72d5",
    }


@pytest.fixture
def client(make_settings: Callable[..., Settings], redis_client: Any) -> FlaskClient:
    return create_app(build(make_settings())).test_client()


def post(client: FlaskClient, body: Any) -> Any:
    return client.post(URL, data=json.dumps(body), headers=AUTH, content_type="application/json")


def last_seen(client: FlaskClient) -> float | None:
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        if family.name == METRIC:
            return float(family.samples[0].value)
    return None


def test_watchdog_is_a_heartbeat_not_a_recovery(client: FlaskClient) -> None:
    assert last_seen(client) is None  # never received: absent, so LazarusWatchdogMissing can say so
    before = time.time()
    response = post(client, webhook(watchdog_alert()))
    assert response.status_code == 200
    assert response.get_json()["alerts"] == [{"fingerprint": "4f6878f8c16c72d5", "outcome": "watchdog"}]
    seen = last_seen(client)
    assert seen is not None and before - 1 <= seen <= time.time() + 1
    assert client.get("/v1/notifications", headers=AUTH).get_json()["notifications"] == []
    counted = client.get("/metrics").get_data(as_text=True)
    assert 'lazarus_alerts_received_total{outcome="watchdog"} 1.0' in counted


def test_a_resolved_watchdog_is_not_a_heartbeat(client: FlaskClient) -> None:
    response = post(client, webhook(watchdog_alert("resolved")))
    assert response.status_code == 200
    assert response.get_json()["alerts"] == []
    assert last_seen(client) is None
    assert client.get("/v1/notifications", headers=AUTH).get_json()["notifications"] == []


def test_watchdog_beside_a_host_alert_leaves_the_host_alert_alone(client: FlaskClient) -> None:
    response = post(client, webhook(watchdog_alert(), host_alert("node-01")))
    outcomes = [a["outcome"] for a in response.get_json()["alerts"]]
    assert outcomes == ["watchdog", "recovery_created"]
    assert last_seen(client) is not None


def test_an_older_delivery_never_moves_the_heartbeat_back(client: FlaskClient) -> None:
    services = client.application.extensions["lazarus"]
    heartbeat = Heartbeat(services.redis, services.settings.key_prefix)
    now = datetime.now(UTC)
    heartbeat.seen(now)
    heartbeat.seen(now - timedelta(seconds=30))  # a slower replica's copy
    assert heartbeat.last_seen() == pytest.approx(now.timestamp(), abs=0.01)


def test_redis_down_answers_503_so_alertmanager_retries(
    make_settings: Callable[..., Settings], redis_client: Any
) -> None:
    client = create_app(build(make_settings(redis_url="redis://127.0.0.1:1/0"))).test_client()
    response = post(client, webhook(watchdog_alert()))
    assert response.status_code == 503
    assert last_seen(client) is None  # and the scrape still answers
