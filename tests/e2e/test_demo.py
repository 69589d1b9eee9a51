"""The demo, as real processes: its reserved_host scenario checked against Nova and the inventory
on its own, and the whole `python -m receiver.lab.demo` run (webhooks posted directly; the real
alerting chain has its own tests in chain/)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from receiver.lab import demo, demo_reserved
from receiver.lab.demo_reserved import HOST, SEGMENT, SPARE
from receiver.lab.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

TIMEOUT = 120.0


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with running_stack(tmp_path / "stack", lab_options=demo.lab_options()) as running:
        yield running


def service(stack: Stack, host: str) -> dict[str, Any]:
    found: dict[str, Any] = stack.nova(f"/os-services?binary=nova-compute&host={host}")["services"][0]
    return found


def test_reserved_host_scenario_moves_the_ha_instances_to_the_spare(stack: Stack) -> None:
    assert demo_reserved.apply_inventory(stack)
    assert (service(stack, SPARE)["status"], service(stack, SPARE)["disabled_reason"]) == (
        "disabled",
        "reserved spare",
    )
    before = {s["id"]: s for s in stack.nova(f"/servers/detail?all_tenants=1&host={HOST}")["servers"]}
    ha = {uuid for uuid, s in before.items() if s["metadata"].get("HA_Enabled") == "True"}
    assert ha and ha != set(before), "node-04 has instances of both kinds"
    assert {s["status"] for s in before.values()} == {"ACTIVE", "SHUTOFF"}

    outcome = demo_reserved.run(stack, TIMEOUT)

    record = outcome.record
    assert record is not None
    assert (record["status"], record["reason"]) == ("finished", "completed"), record["message"]
    plan = record["plan"]
    assert plan["method"] == "reserved_host"
    assert plan["spares_used"] == [SPARE]
    assert {a["id"]: (a["target"], a["route"]) for a in plan["assignments"]} == dict.fromkeys(
        ha, (SPARE, "reserved_host")
    )
    assert {(u["id"], u["reason"]) for u in plan["not_selected"]} == {
        (uuid, "not_ha_enabled") for uuid in set(before) - ha
    }
    names = [s["name"] for s in record["steps"]]
    assert names.index("plan") < names.index("fence") < names.index("spare") < names.index("evacuate")
    assert "lock" in names
    for uuid, was in before.items():
        server = stack.nova(f"/servers/{uuid}")["server"]
        move = next(m for m in record["vmoves"] if m["instance_uuid"] == uuid)
        if uuid in ha:
            assert (move["status"], move["target_host"], move["dest_host"]) == ("succeeded", SPARE, SPARE)
            assert (server["OS-EXT-SRV-ATTR:host"], server["status"]) == (SPARE, was["status"])
            assert server["locked"] is False
        else:
            assert (move["status"], move["reason"], move["attempts"]) == ("ignored", "not_ha_enabled", 0)
            assert server["OS-EXT-SRV-ATTR:host"] == HOST
    migrations = stack.nova("/os-migrations?migration_type=evacuation")["migrations"]
    assert {m["instance_uuid"]: m["dest_compute"] for m in migrations} == dict.fromkeys(ha, SPARE)
    # The spare is in service: enabled in Nova, no longer reserved in the inventory; rack b has
    # no free spare left, and says so.
    assert (service(stack, SPARE)["status"], service(stack, SPARE)["state"]) == ("enabled", "up")
    spare = stack.cli("host", "show", SPARE)
    assert spare.returncode == 0, spare.stderr
    assert '"reserved": false' in spare.stdout
    assert outcome.segment is not None
    assert outcome.segment["spares"]["free"] == []
    shown = stack.cli("segment", "show", SEGMENT)
    assert "WARNING" in shown.stdout and "needs a free reserved spare" in shown.stdout
    assert record["diagnosis"]["summary"] == f"{HOST}: all {len(ha)} instances moved"
    assert outcome.ok


def test_the_whole_demo_passes(tmp_path: Path) -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "receiver.lab.demo", "--direct", "--workdir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stdout[-6000:] + ran.stderr[-3000:]
    out = ran.stdout
    # node-01 and node-04 each keep their instance without HA_Enabled, and say why.
    assert out.count("left by policy: not HA_Enabled (recorded ignored/not_ha_enabled)  ok") == 2
    assert "plan, made before fencing: reserved_host: 3 of 3 placed; 3 to spare spare-01" in out
    assert "spare-01: nova-compute enabled and up, no longer reserved; rack-b free spares: none  ok" in out
    assert "diagnosis: node-04: all 3 instances moved" in out
    assert "NOT RECOVERED" not in out
    assert out.rstrip().splitlines()[-1].split("  ", 1)[1].startswith("DEMO PASSED")
