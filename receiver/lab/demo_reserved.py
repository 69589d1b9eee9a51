"""The demo's reserved_host scenario: a rack whose segment keeps a spare in reserve.

The lab has six hosts. The operator's inventory (applied with `lazarus inventory apply`, as an
operator would) makes two segments: `lab` (auto: node-01..03, Nova's scheduler chooses) and
`rack-b` (reserved_host: node-04, node-05 and spare-01, a reserved spare whose nova-compute is
kept disabled so nothing lands there). When node-04 dies, its HA-enabled instances must go to
spare-01 and nowhere else: the recovery plans it before fencing, enables spare-01's compute
service, marks it no longer reserved, evacuates to it by name. Afterwards rack-b has no free
spare left, which `lazarus segment show` warns about (and the lazarus_segment_free_spares
gauge says, for the alert LazarusSegmentWithoutFreeSpare).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml

from receiver.lab import chain as alert_chain
from receiver.lab.demo_support import (
    describe,
    follow,
    host_recovery,
    judge_moves,
    say,
    servers_on,
    show_diagnosis,
    show_fencing,
    show_milestones,
)
from receiver.lab.stack import Stack

SEGMENT = "rack-b"
ALERT = "LazarusSegmentWithoutFreeSpare"
HOST = "node-04"
SPARE = "spare-01"
RACK_A = ("node-01", "node-02", "node-03")
RACK_B = ("node-04", "node-05", SPARE)
# Rack b's hosts are small (16 GB after Nova's 512 MB reserve). The lab's scheduler, like Nova's
# without aggregates or zones, knows no segments: with the RAM weigher, rack a's much larger
# hosts take what the scheduler places when a rack-a host dies, as a real cloud's aggregates would.
RACK_B_CAPACITY = tuple(f"{host}:memory_mb=16896" for host in RACK_B)


def lab_hosts() -> tuple[str, ...]:
    return (*RACK_A, *RACK_B)


@dataclass(frozen=True)
class SpareOutcome:
    ok: bool
    record: dict[str, Any] | None
    before: dict[str, dict[str, Any]]  # the dead host's servers, as they were
    spare_service: dict[str, Any] | None  # Nova's compute service of the spare, afterwards
    segment: dict[str, Any] | None  # `lazarus segment show rack-b --json`, afterwards


def apply_inventory(stack: Stack) -> bool:
    """Split the lab's single generated segment into rack a (auto) and rack b (reserved_host)."""
    generated = yaml.safe_load(stack.lab.inventory.read_text())
    hosts = {h["name"]: h for s in generated["segments"] for h in s["hosts"]}
    lab = {**generated["segments"][0], "hosts": [hosts[name] for name in RACK_A]}
    rack_b = {
        "name": SEGMENT,
        "description": "rack b: a reserved spare takes a dead host's instances",
        "recovery_method": "reserved_host",
        "service_type": "COMPUTE",
        "shared_storage": True,
        "hosts": [{**hosts[name], "reserved": name == SPARE} for name in RACK_B],
    }
    path = stack.workdir / "inventory.yaml"
    path.write_text(yaml.safe_dump({**generated, "segments": [lab, rack_b]}, sort_keys=False))
    say(f"inventory {path.name}: segment lab (auto): {', '.join(RACK_A)}; segment {SEGMENT} (reserved_host): "
        f"{', '.join(RACK_B)} ({SPARE} a reserved spare, its nova-compute disabled)")  # fmt: skip
    applied = stack.cli("inventory", "apply", str(path))
    for line in applied.stdout.splitlines():
        say(f"  lazarus inventory apply: {line}")
    if applied.returncode != 0:
        say(f"lazarus inventory apply failed ({applied.returncode}): {applied.stderr.strip()}")
        return False
    return True


def run(stack: Stack, timeout: float, chain: alert_chain.Chain | None = None) -> SpareOutcome:
    before = servers_on(stack, HOST)
    say(f"{SEGMENT} uses reserved_host; {HOST} runs {len(before)} instances: {describe(before)}")
    show_segment(stack, "before")
    died = datetime.now().astimezone()
    stack.control.hang(HOST)
    say(f"{HOST} hung: its instances must go to the reserved spare {SPARE}, and only there")
    uuid = host_recovery(stack, HOST, died, timeout, chain)
    if uuid is None:
        return SpareOutcome(False, None, before, None, None)
    record = follow(stack, uuid, timeout)
    if chain is not None:
        show_milestones(stack, uuid, died)
    show_fencing(record)
    judged = judge_moves(stack, record, before, HOST, targets={SPARE})
    plan = record.get("plan") or {}
    planned = (
        plan.get("method") == "reserved_host"
        and plan.get("spares_used") == [SPARE]
        and all(a["target"] == SPARE for a in plan.get("assignments", ()))
    )
    verdict = "ok" if planned and judged.ok else "NOT AS PLANNED"
    say(f"plan against outcome: {judged.moved} of {len(plan.get('assignments', ()))} planned to {SPARE} "
        f"run there, {judged.left} left by policy  {verdict}")  # fmt: skip
    service = stack.nova(f"/os-services?binary=nova-compute&host={SPARE}")["services"][0]
    segment = show_segment(stack, "after")
    taken = _spare_taken(service, segment)
    reserved = {True: "still reserved", False: "no longer reserved", None: "not in the inventory"}
    verdict = "ok" if taken else "SPARE NOT TAKEN INTO SERVICE"
    say(
        f"{SPARE}: nova-compute {service['status']} and {service['state']}, {reserved[_reserved(segment)]}; "
        f"{SEGMENT} free spares: {_free(segment)}  {verdict}"
    )
    gauge = free_spares_gauge(stack)
    if gauge is not None:
        say(f"/metrics: {gauge} (alert {ALERT} fires when it stays 0 for 15m; the demo's rules: 10s)")
    if chain is not None:
        taken &= _alert_fires(chain, timeout)
    say(f"final status: {record['status']} ({record['reason']}): {record['message']}")
    show_diagnosis(record)
    ok = judged.ok and planned and taken
    return SpareOutcome(ok, record, before, service, segment)


def _alert_fires(chain: alert_chain.Chain, timeout: float) -> bool:
    """Prometheus, with our rules, fires the no-free-spare alert for rack b."""
    started = time.monotonic()
    deadline = started + min(timeout, 60.0)
    while not any(labels.get("segment") == SEGMENT for labels in chain.firing(ALERT)):
        if time.monotonic() > deadline:
            waited = time.monotonic() - started
            say(f"Prometheus: {ALERT} not firing for {SEGMENT} after {waited:.0f}s  NOT REPORTED")
            return False
        time.sleep(0.5)
    say(f"Prometheus: {ALERT} firing for segment {SEGMENT} ({time.monotonic() - started:.1f}s later)  ok")
    return True


def show_segment(stack: Stack, when: str) -> dict[str, Any] | None:
    """Print the hosts and spares part of `lazarus segment show`; return its JSON."""
    shown = stack.cli("segment", "show", SEGMENT)
    lines = shown.stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("hosts")), 0)
    say(f"lazarus segment show {SEGMENT} ({when}):")
    for line in lines[start:]:
        say(f"  {line}")
    answer = stack.cli("segment", "show", SEGMENT, "--json")
    if answer.returncode != 0:
        say(f"lazarus segment show {SEGMENT} --json failed: {answer.stderr.strip()}")
        return None
    segment: dict[str, Any] = json.loads(answer.stdout)["segment"]
    return segment


def free_spares_gauge(stack: Stack) -> str | None:
    status, text = stack.http("GET", f"{stack.receivers[0][1]}/metrics", auth=False)
    if status != 200 or not isinstance(text, str):
        return None
    wanted = f'segment="{SEGMENT}"'
    return next(
        (
            line
            for line in text.splitlines()
            if line.startswith("lazarus_segment_free_spares") and wanted in line
        ),
        None,
    )


def _spare_taken(service: dict[str, Any], segment: dict[str, Any] | None) -> bool:
    """The spare is in service (enabled, up), no longer reserved, and rack b says it has no
    free spare left."""
    return (
        service["status"] == "enabled"
        and service["state"] == "up"
        and segment is not None
        and _reserved(segment) is False
        and segment["spares"]["free"] == []
        and bool(segment["spares"]["message"])
    )


def _reserved(segment: dict[str, Any] | None) -> bool | None:
    hosts = (segment or {}).get("hosts", ())
    return next((bool(h["reserved"]) for h in hosts if h["name"] == SPARE), None)


def _free(segment: dict[str, Any] | None) -> str:
    if segment is None:
        return "unknown"
    free = segment["spares"]["free"]
    return ", ".join(free) if free else "none"
