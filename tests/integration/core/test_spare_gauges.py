"""The spare gauges, computed at scrape from a real redis-server: the inventory, the hosts'
maintenance, and the open recoveries' claims (the failed host, the spares a plan took)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from receiver.bootstrap import Services, build
from receiver.domain.record import Status
from receiver.inventory import parse_inventory
from receiver.metrics import RedisStateCollector
from receiver.settings import Settings
from receiver.web.app import create_app
from tests.conftest import TEST_TOKEN
from tests.integration.core.helpers import host_alert, webhook

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 25, 13, 0, 0, tzinfo=UTC)
INVENTORY = {
    "segments": [
        {
            "name": "rack-a",
            "recovery_method": "reserved_host",
            "hosts": [
                {"name": "node-01"},
                {"name": "node-02"},
                {"name": "spare-01", "reserved": True},
                {"name": "spare-02", "reserved": True},
            ],
        },
        {"name": "rack-b", "recovery_method": "auto", "hosts": [{"name": "node-10"}]},
        {"name": "rack-c", "recovery_method": "auto_priority", "hosts": [{"name": "node-20"}]},
        {
            "name": "rack-d",
            "recovery_method": "rh_priority",
            "enabled": False,
            "hosts": [{"name": "node-30"}],
        },
    ]
}


@pytest.fixture
def services(make_settings: Callable[..., Settings], redis_client: Any) -> Services:
    services = build(make_settings())
    services.inventory.apply(parse_inventory(INVENTORY), NOW)
    return services


def gauges(services: Services) -> dict[tuple[str, str], float]:
    collector = RedisStateCollector(
        services.redis, services.settings.key_prefix, services.settings.queue_name
    )
    return {
        (sample.name, sample.labels["segment"]): sample.value
        for family in collector.collect()
        if family.name.startswith("lazarus_segment_")
        for sample in family.samples
    }


def free(services: Services) -> dict[str, float]:
    return {seg: v for (name, seg), v in gauges(services).items() if name == "lazarus_segment_free_spares"}


def test_gauges_follow_the_inventory_maintenance_and_open_recoveries(services: Services) -> None:
    values = gauges(services)
    needed = {seg: v for (name, seg), v in values.items() if name == "lazarus_segment_spares_needed"}
    assert needed == {"rack-a": 1, "rack-b": 0, "rack-c": 1, "rack-d": 0}  # rack-d is disabled
    assert free(services) == {"rack-a": 2, "rack-b": 0, "rack-c": 0, "rack-d": 0}

    # node-01 dies: its recovery's plan takes spare-01, which is not free for the next failure.
    client: FlaskClient = create_app(services).test_client()
    response = client.post(
        "/v1/webhooks/alertmanager",
        data=json.dumps(webhook(host_alert("node-01"))),
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
        content_type="application/json",
    )
    uuid = response.get_json()["alerts"][0]["notification_uuid"]
    plan = {"method": "reserved_host", "spares_used": ["spare-01"]}
    services.store.update(uuid, lambda r: r.with_plan(plan, NOW))
    assert free(services)["rack-a"] == 1

    # The other spare goes on maintenance: none left, and /metrics says so.
    services.inventory.set_maintenance("spare-02", "disk swap", None, NOW)
    assert free(services)["rack-a"] == 0
    text = client.get("/metrics").get_data(as_text=True)
    assert 'lazarus_segment_free_spares{segment="rack-a"} 0.0' in text
    assert 'lazarus_segment_spares_needed{segment="rack-a"} 1.0' in text

    # The recovery ends: its claim on spare-01 ends with it.
    services.store.update(uuid, lambda r: r.transition(Status.RUNNING, NOW))
    services.store.update(uuid, lambda r: r.transition(Status.FINISHED, NOW, reason="completed"))
    assert free(services)["rack-a"] == 1


def test_an_unreadable_inventory_leaves_the_gauges_out_not_zero(services: Services) -> None:
    services.redis.set(f"{services.settings.key_prefix}:inventory", json.dumps({"segments": "garbage"}))
    collector = RedisStateCollector(
        services.redis, services.settings.key_prefix, services.settings.queue_name
    )
    names = {family.name for family in collector.collect()}
    assert "lazarus_store_up" in names and "lazarus_queue_depth" in names
    assert not {n for n in names if n.startswith("lazarus_segment_")}
