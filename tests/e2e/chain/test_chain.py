"""The real chain, end to end: a real Prometheus scrapes the lab's exporters with our rules (demo
timings), a clustered pair of real Alertmanagers delivers to two Lazarus receivers (each replica to
both), two workers recover. One host dies: exactly one recovery. A second one dies: the storm guard
refuses to fence it. Then every panel of every dashboard is evaluated through that Prometheus.

One scenario, run once for the module (about a minute); each test checks one part of it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from receiver.lab import chain as alert_chain
from receiver.lab.chain import (
    Chain,
    milestones,
    running_chain,
    wait_for_notification,
    wait_for_recovery,
    wait_for_targets,
)
from receiver.lab.stack import Stack, running_stack
from receiver.lab.testing import wait_until
from receiver.monitoring.dashboards import dashboards, queries

pytestmark = pytest.mark.e2e

HOSTS = ("node-01", "node-02", "node-03", "node-04", "node-05")  # 2 down of 5: below the demo's 50 % guard
LAB = {
    "hosts": HOSTS,
    "service_down_time": 5.0,
    "report_interval": 1.0,
    "evacuate_delay": 1.0,
    "action_delay": 0.3,
}
SETTINGS = {"storm": {"max_fences": 1, "window_s": 900}}  # the second fence within 15 min is refused
TIMEOUT = 120.0


@dataclass
class Scenario:
    stack: Stack
    chain: Chain
    started: float
    first: dict[str, Any]  # node-01's record
    first_died: datetime
    second: dict[str, Any]  # node-02's record
    before: dict[str, dict[str, Any]]  # node-01's servers before it died
    process: dict[str, Any]  # nova-compute died on node-03
    instance: dict[str, Any]  # a guest crashed on node-04
    crashed: str  # that guest's id


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    missing = alert_chain.missing_binaries()
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (apt-get install {' '.join(missing)}; `make deps`)")
    workdir: Path = tmp_path_factory.mktemp("chain")
    with (
        running_stack(workdir, receivers=2, workers=2, lab_options=LAB, settings=SETTINGS) as stack,
        running_chain(stack, alertmanagers=2) as chain,
    ):
        try:
            started = time.time()
            wait_for_targets(chain)
            before = {s["id"]: s for s in stack.nova("/servers/detail?all_tenants=1&host=node-01")["servers"]}

            died = datetime.now().astimezone()
            stack.control.kill("node-01")
            uuid = wait_for_recovery(stack, "node-01", died, TIMEOUT)["notification_uuid"]
            stack.wait_until_ended(uuid, TIMEOUT)
            first = stack.notification(uuid)

            second_died = datetime.now().astimezone()
            stack.control.kill("node-02")
            uuid = wait_for_recovery(stack, "node-02", second_died, TIMEOUT)["notification_uuid"]
            stack.wait_until_ended(uuid, TIMEOUT)
            second = stack.notification(uuid)

            # nova-compute dies on node-03; a guest crashes on node-04 (its domain leaves the running-only
            # listing while Nova still says ACTIVE): both reach Lazarus, with the labels it needs.
            since = datetime.now().astimezone()
            stack.control.compute("node-03", running=False)
            servers = stack.nova("/servers/detail?all_tenants=1&host=node-04")["servers"]
            crashed = next(s["id"] for s in servers if s["status"] == "ACTIVE")
            stack.control.crash(crashed)
            process = wait_for_notification(
                stack, "PROCESS", lambda n: n["hostname"] == "node-03", since, TIMEOUT
            )
            instance = wait_for_notification(
                stack, "VM", lambda n: n["payload"].get("instance_uuid") == crashed, since, TIMEOUT
            )
            # Prometheus has scraped the refusal for a few seconds already (the panels' range queries
            # step every 2 s).
            wait_until(
                lambda: chain.query(
                    'max(lazarus_recoveries_total{reason="storm_guard"}) > 0', at=time.time() - 3
                ),
                timeout=30,
                interval=0.5,
                what="the storm-guard refusal in Prometheus",
            )
            yield Scenario(stack, chain, started, first, died, second, before, process, instance, crashed)
        except BaseException:
            print(stack.logs()[-20000:])
            print(chain.logs())
            raise


def test_host_death_is_recovered_through_the_chain(scenario: Scenario) -> None:
    record, stack = scenario.first, scenario.stack
    assert (record["status"], record["reason"]) == ("finished", "completed"), record["message"]
    assert [f["outcome"] for f in record["fencing"]] == ["off_confirmed"]
    # Every instance is on the record; those with HA_Enabled=True moved, the others stay, by policy.
    assert {m["instance_uuid"] for m in record["vmoves"]} == set(scenario.before)
    ha = {uuid for uuid, s in scenario.before.items() if s["metadata"].get("HA_Enabled") == "True"}
    assert ha and ha != set(scenario.before), "the lab's node-01 has both kinds"
    for move in record["vmoves"]:
        server = stack.nova(f"/servers/{move['instance_uuid']}")["server"]
        if move["instance_uuid"] in ha:
            assert move["status"] == "succeeded"
            assert server["OS-EXT-SRV-ATTR:host"] not in ("node-01", None)
            assert server["status"] == scenario.before[move["instance_uuid"]]["status"]
        else:
            assert (move["status"], move["reason"], move["attempts"]) == ("ignored", "not_ha_enabled", 0)
            assert server["OS-EXT-SRV-ATTR:host"] == "node-01"
    assert {a["id"] for a in record["plan"]["assignments"]} == ha
    assert record["diagnosis"]["summary"] == f"node-01: all {len(ha)} instances moved"
    # Delivered by the real Alertmanagers, with the labels our rule gives it.
    assert {a["external_url"] for a in record["alerts"]} <= set(scenario.chain.alertmanager_urls)
    assert {a["alertname"] for a in record["alerts"]} == {"LazarusHostDown"}
    assert record["alerts"][0]["labels"] == {
        "alertname": "LazarusHostDown",
        "host": "node-01",
        "recovery": "host",
        "severity": "critical",
    }
    seconds = milestones(record, scenario.first_died)
    print(f"host death -> {seconds}")
    firing, received, fenced, active = (
        seconds[k] for k in ("alert_firing", "alert_received", "fenced", "all_active")
    )
    assert firing is not None and received is not None and fenced is not None and active is not None
    assert 0 < firing <= received <= fenced <= active


def test_two_alertmanagers_and_two_receivers_make_exactly_one_recovery(scenario: Scenario) -> None:
    chain, stack = scenario.chain, scenario.stack
    members = chain.query("alertmanager_cluster_members")
    assert [float(m["value"][1]) for m in members] == [2.0, 2.0], "the two Alertmanagers form one cluster"
    _, body = stack.http("GET", f"{stack.receivers[1][1]}/v1/notifications?type=COMPUTE_HOST")
    node_01 = [n for n in body["notifications"] if n["hostname"] == "node-01"]
    assert len(node_01) == 1
    # Every notification went to both receivers (each replica lists both): at least two deliveries,
    # settled in Redis into one record and one fence.
    assert len(scenario.first["alerts"]) >= 2
    fences = chain.query('max(lazarus_fence_attempts_total{outcome="off_confirmed"})')
    assert float(fences[0]["value"][1]) == 1.0


def test_the_storm_guard_refuses_a_second_fence(scenario: Scenario) -> None:
    record, stack = scenario.second, scenario.stack
    assert (record["status"], record["reason"]) == ("ignored", "storm_guard"), record["message"]
    assert record["fencing"] == []
    # The plan was made before the gate (it records every instance up front); nothing was attempted.
    assert record["plan"] is not None
    servers = {s["id"] for s in stack.nova("/servers/detail?all_tenants=1&host=node-02")["servers"]}
    assert {m["instance_uuid"] for m in record["vmoves"]} == servers
    assert all(m["attempts"] == 0 and m["dest_host"] is None for m in record["vmoves"])
    assert {m["status"] for m in record["vmoves"]} <= {"pending", "ignored"}
    migrations = stack.nova("/os-migrations?migration_type=evacuation")["migrations"]
    assert not [m for m in migrations if m["source_compute"] == "node-02"]


def test_process_and_instance_alerts_reach_lazarus_with_their_labels(scenario: Scenario) -> None:
    process, instance = scenario.process, scenario.instance
    assert process["hostname"] == "node-03"
    assert process["payload"]["alertname"] == "LazarusProcessDown"
    assert process["payload"]["process_name"] == "nova-compute"
    assert instance["hostname"] == "node-04"
    assert instance["payload"]["alertname"] == "LazarusInstanceVanished"
    assert instance["payload"]["instance_uuid"] == scenario.crashed


def test_the_watchdog_heartbeat_reaches_lazarus(scenario: Scenario) -> None:
    chain = scenario.chain
    wait_until(
        lambda: chain.query("time() - max(lazarus_watchdog_last_seen_timestamp_seconds) < 30"),
        timeout=30,
        interval=0.5,
        what="a recent Watchdog in lazarus_watchdog_last_seen_timestamp_seconds",
    )
    assert chain.query('ALERTS{alertname="LazarusWatchdogMissing", alertstate="firing"}') == []


def test_every_dashboard_panel_returns_data(scenario: Scenario) -> None:
    chain = scenario.chain
    start, end = scenario.started, time.time()
    hosts = chain.label_values("host", 'up{job="node"}')
    assert set(HOSTS) <= set(hosts), "the host variable's query"
    empty = []
    for name, board in dashboards().items():
        for title, expr in queries(board):
            promql = grafana_variables(expr, range_s=end - start)
            result = chain.query_range(promql, start, end, step=2.0)  # raises on a PromQL error
            if not result:
                empty.append(f"{name} / {title}: {promql}")
    assert not empty, "panels without data:\n" + "\n".join(empty)


def grafana_variables(expr: str, range_s: float) -> str:
    """What Grafana substitutes before it sends a query (all hosts selected)."""
    substitutions = {
        "$__rate_interval": "1m",
        "$__interval": "2s",
        "$__range": f"{int(range_s) + 1}s",
        "$host": ".+",
    }
    for variable, value in substitutions.items():
        expr = expr.replace(variable, value)
    assert not re.search(r"\$\w", expr), f"unsubstituted variable in {expr}"
    return expr
