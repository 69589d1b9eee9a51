"""The whole path as real processes: gunicorn receivers, RQ workers, redis-server, the lab."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from receiver.lab.stack import Stack, running_stack
from tests.integration.core.helpers import host_alert, webhook

pytestmark = pytest.mark.e2e

LAB = {
    "hosts": ("node-01", "node-02", "node-03"),
    "service_down_time": 3.0,
    "report_interval": 0.5,
    "evacuate_delay": 0.5,
    "action_delay": 0.1,
}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with running_stack(tmp_path / "stack", receivers=2, workers=1, lab_options=LAB) as running:
        yield running


def evacuations_per_instance(stack: Stack) -> Counter[str]:
    migrations = stack.nova("/os-migrations?migration_type=evacuation")["migrations"]
    return Counter(m["instance_uuid"] for m in migrations)


def test_alert_through_two_receivers_makes_exactly_one_recovery(stack: Stack) -> None:
    servers = stack.nova("/servers/detail?all_tenants=1&host=node-01")["servers"]
    stack.control.kill("node-01")
    body = webhook(host_alert("node-01"))
    results: list[Any] = []

    def deliver(receiver: int) -> None:
        results.append(stack.post_alerts(body, receiver))

    threads = [threading.Thread(target=deliver, args=(i % 2,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in results] == [200] * 6
    outcomes = Counter(r["alerts"][0]["outcome"] for _, r in results)
    assert outcomes == {"recovery_created": 1, "duplicate": 5}
    [uuid] = {r["alerts"][0]["notification_uuid"] for _, r in results}

    record = stack.wait_until_ended(uuid)
    assert record["status"] == "finished", record["message"]
    assert record["duplicates"] == 5
    assert {m["instance_uuid"] for m in record["vmoves"]} == {s["id"] for s in servers}
    ha = {s["id"] for s in servers if s["metadata"].get("HA_Enabled") == "True"}
    moved = [m for m in record["vmoves"] if m["instance_uuid"] in ha]
    assert moved and all(m["dest_host"] not in (None, "node-01") for m in moved)
    # Without HA_Enabled=True an instance stays, recorded as left by policy (Masakari's rule).
    left = [m for m in record["vmoves"] if m["instance_uuid"] not in ha]
    assert left and all((m["status"], m["reason"]) == ("ignored", "not_ha_enabled") for m in left)
    assert evacuations_per_instance(stack) == dict.fromkeys(ha, 1)
    _, listed = stack.http("GET", f"{stack.receivers[1][1]}/v1/notifications")
    assert [n["notification_uuid"] for n in listed["notifications"]] == [uuid]
    status, metrics = stack.http("GET", f"{stack.receivers[0][1]}/metrics", auth=False)
    assert status == 200
    assert 'lazarus_recoveries_total{reason="completed",status="finished",type="COMPUTE_HOST"} 1.0' in metrics
    assert 'lazarus_fence_attempts_total{outcome="off_confirmed"} 1.0' in metrics
    # the worker's BMC probe runs at its start, read-only, and any receiver shows it
    deadline = time.monotonic() + 60
    while 'lazarus_bmc_probe_up{host="node-02"} 1.0' not in metrics:
        assert time.monotonic() < deadline, "no BMC probe result within 60 s"
        time.sleep(0.5)
        metrics = stack.http("GET", f"{stack.receivers[0][1]}/metrics", auth=False)[1]
    assert stack.lab.bmc_password() not in stack.logs()
    assert stack.token not in stack.logs()


def test_worker_killed_during_evacuation_is_resumed_without_double_evacuation(stack: Stack) -> None:
    stack.control.settings(evacuate_delay=4.0)  # long enough to kill the worker mid-move
    stack.control.kill("node-01")
    _, answer = stack.post_alerts(webhook(host_alert("node-01")))
    uuid = answer["alerts"][0]["notification_uuid"]
    deadline = time.monotonic() + 120
    while not any(m["status"] == "ongoing" for m in stack.notification(uuid)["vmoves"]):
        assert time.monotonic() < deadline, "evacuation never started"
        time.sleep(0.1)
    stack.kill(stack.workers[0], signal.SIGKILL)
    assert stack.notification(uuid)["status"] == "running"
    stack.control.settings(evacuate_delay=0.5)
    stack.start_worker()  # its reconciler finds the orphan once the dead worker's lease expires
    record = stack.wait_until_ended(uuid)
    assert record["status"] == "finished", record["message"]
    assert record["attempt"] >= 1, [
        (s["at"][11:23], s["name"], s["state"], s["message"]) for s in record["steps"]
    ]
    assert any(s["state"] == "resumed" for s in record["steps"])
    assert set(evacuations_per_instance(stack).values()) == {1}


def test_redis_down_gives_503_then_the_retry_is_accepted(stack: Stack) -> None:
    body = webhook(host_alert("node-02"))
    stack.redis.stop()
    status, answer = stack.post_alerts(body)
    assert status == 503, answer
    stack.redis.start()
    deadline = time.monotonic() + 30
    while (result := stack.post_alerts(body))[0] != 200:
        assert time.monotonic() < deadline, result
        time.sleep(0.5)
    assert result[1]["alerts"][0]["outcome"] == "recovery_created"
