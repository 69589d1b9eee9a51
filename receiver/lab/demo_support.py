"""What the demo's host scenarios share: delivering the host-down alert, following the record as
it grows (its steps, and the capacity plan once it is made), and judging the outcome against what
Nova says, instance by instance.

The verdict follows the placement rules: an instance with metadata HA_Enabled=True must end as it
was (ACTIVE, or SHUTOFF where it was SHUTOFF) on another host, unlocked; any other instance is
left where it is, recorded `ignored` with the reason `not_ha_enabled` (Masakari's rule, unless the
segment or `evacuation.evacuate_all` says evacuate all, which the demo does not).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from receiver.domain.instance import ha_enabled
from receiver.domain.model import Server
from receiver.domain.placement import Plan
from receiver.lab import chain as alert_chain
from receiver.lab.stack import Stack

ENDED = ("finished", "failed", "ignored", "error")
HA_KEY = "HA_Enabled"
POLICY_REASON = "not_ha_enabled"
LEFT_BY_POLICY = f"left by policy: not {HA_KEY}"


def say(message: str, at: str | None = None) -> None:
    stamp = at[11:23] if at else datetime.now().astimezone().isoformat()[11:23]
    print(f"{stamp}  {message}", flush=True)


def wants_ha(server: dict[str, Any]) -> bool:
    """Whether Lazarus must move this instance (the same test the recovery applies)."""
    found = Server(id=server["id"], name=server["name"], host=None, status="", metadata=server["metadata"])
    return ha_enabled(found, HA_KEY)


def servers_on(stack: Stack, host: str) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in stack.nova(f"/servers/detail?all_tenants=1&host={host}")["servers"]}


def describe(servers: dict[str, dict[str, Any]]) -> str:
    def one(s: dict[str, Any]) -> str:
        return f"{s['name']} ({s['status']}{'' if wants_ha(s) else f', no {HA_KEY}'})"

    return ", ".join(one(s) for s in sorted(servers.values(), key=lambda s: str(s["name"])))


def host_recovery(
    stack: Stack, host: str, died: datetime, timeout: float, chain: alert_chain.Chain | None
) -> str | None:
    """The host recovery of `host`: through Prometheus and Alertmanager when the chain runs,
    else the webhook LazarusHostDown produces, posted by us. None if the receiver refused it."""
    if chain is not None:
        uuid = str(alert_chain.wait_for_recovery(stack, host, died, timeout)["notification_uuid"])
        say(f"Prometheus fired LazarusHostDown, Alertmanager delivered it: notification {uuid}")
        return uuid
    status, answer = stack.post_alerts(host_down_webhook(host))
    if status != 200:
        say(f"webhook answered {status}: {answer}")
        return None
    result = answer["alerts"][0]
    say(f"Alertmanager webhook delivered: {result['outcome']}, notification {result['notification_uuid']}")
    return str(result["notification_uuid"])


def follow(stack: Stack, uuid: str, timeout: float, printed: int = 0) -> dict[str, Any]:
    """Print each step of the record as it appears (after the first `printed`), and the capacity
    plan once it is on the record (it is made before anything is fenced)."""
    deadline = time.monotonic() + timeout
    plan_shown = False
    while True:
        record = stack.notification(uuid)
        for step in record["steps"][printed:]:
            say(f"  [{step['name']:8}] {step['message']}", at=step["at"])
        printed = len(record["steps"])
        if record.get("plan") and not plan_shown:
            show_plan(record["plan"])
            plan_shown = True
        if record["status"] in ENDED:
            return record
        if time.monotonic() > deadline:
            say(f"gave up after {timeout:.0f}s: the recovery is still {record['status']}")
            return record
        time.sleep(0.2)


def show_plan(plan: dict[str, Any]) -> None:
    say(f"plan, made before fencing: {Plan.from_dict(plan).summary()}")
    for entry in plan["assignments"]:
        where = "Nova's scheduler chooses" if entry["target"] is None else f"{entry['target']}"
        say(f"    {entry['name']:16} -> {where} ({entry['route']})")
    for entry in plan["cannot_place"]:
        say(f"    {entry['name']:16} cannot be placed: {entry['reason']}: {entry['message']}")
    for entry in plan["not_selected"]:
        why = LEFT_BY_POLICY if entry["reason"] == POLICY_REASON else f"left by policy: {entry['reason']}"
        say(f"    {entry['name']:16} {why}")
    for note in plan.get("notes", ()):
        say(f"    note: {note}")


@dataclass(frozen=True)
class Judged:
    ok: bool
    moved: int  # HA-enabled instances now running elsewhere as they were
    left: int  # instances left by policy on the dead host


def judge_moves(
    stack: Stack,
    record: dict[str, Any],
    before: dict[str, dict[str, Any]],
    source: str,
    *,
    targets: Collection[str] = (),
) -> Judged:
    """Print one line per instance of the dead host and judge it against Nova (see the module
    docstring). `targets`: where the moved instances must be (empty: anywhere but `source`)."""
    moves = {m["instance_uuid"]: m for m in record["vmoves"]}
    ok = record["status"] == "finished" and record.get("plan") is not None
    moved = left = 0
    for uuid, was in sorted(before.items(), key=lambda item: str(item[1]["name"])):
        move = moves.get(uuid)
        server = stack.nova(f"/servers/{uuid}")["server"]
        host = server["OS-EXT-SRV-ATTR:host"]
        if move is None:
            ok = False
            say(f"  {was['name']:16} not on the record  NOT RECORDED")
            continue
        if wants_ha(was):
            good = (
                move["status"] == "succeeded"
                and host != source
                and (not targets or host in targets)
                and server["status"] == was["status"]
                and not server.get("locked")
            )
            moved += good
            lock = "unlocked" if not server.get("locked") else "STILL LOCKED"
            took = seconds(move["start_time"], move["end_time"])
            say(
                f"  {was['name']:16} {source} -> {host:8} {server['status']:8} (was {was['status']}) "
                f"in {took}, {lock}  {'ok' if good else 'NOT RECOVERED'}"
            )
        else:
            # Masakari's rule: without HA_Enabled=True the instance is not evacuated; the record
            # says so, and the instance stays (with the host, off) where it was.
            good = (
                move["status"] == "ignored"
                and move["reason"] == POLICY_REASON
                and move["attempts"] == 0
                and host == source
            )
            left += good
            say(
                f"  {was['name']:16} stays on {host:8} {LEFT_BY_POLICY} "
                f"(recorded {move['status']}/{move['reason']})  {'ok' if good else 'UNEXPECTED'}"
            )
        ok &= good
    return Judged(ok, moved, left)


def show_diagnosis(record: dict[str, Any]) -> None:
    diagnosis = record.get("diagnosis")
    if not diagnosis:
        say("diagnosis: none on the record")
        return
    findings = diagnosis.get("findings") or ()
    if not findings:
        say(f"diagnosis: {diagnosis['summary']}")
        return
    # The summary is the head line and the findings joined: show the head, then one finding a line.
    say(f"diagnosis: {diagnosis['summary'].split('; ')[0]}")
    for finding in findings:
        say(f"  {finding['cause']}: {finding['message']}")


def show_fencing(record: dict[str, Any]) -> None:
    for attempt in record["fencing"]:
        say(
            f"fencing evidence: {attempt['method']} {attempt['bmc']} power {attempt['power_before']} -> "
            f"{attempt['power_after']} ({attempt['outcome']})"
        )


def show_milestones(stack: Stack, uuid: str, died: datetime) -> None:
    spans = alert_chain.milestones(stack.notification(uuid), died)
    say("host death -> " + ", ".join(f"{name.replace('_', ' ')} {_s(v)}" for name, v in spans.items()))


def host_down_webhook(host: str, starts_at: datetime | None = None) -> dict[str, Any]:
    """What Alertmanager sends for our LazarusHostDown rule (rules/lazarus-host.rules.yml); the same
    host and start give the same alert (fingerprint and startsAt are Lazarus's dedup key)."""
    moment = starts_at or datetime.now().astimezone()
    labels = {"alertname": "LazarusHostDown", "recovery": "host", "host": host, "severity": "critical"}
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": f"Compute host {host} is down (all signals agree)"},
        "startsAt": moment.isoformat(),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": hashlib.sha256(repr(sorted(labels.items())).encode()).hexdigest()[:16],
    }
    return {
        "receiver": "lazarus",
        "status": "firing",
        "alerts": [alert],
        "groupLabels": {"host": host},
        "commonLabels": labels,
        "commonAnnotations": alert["annotations"],
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": f'{{}}:{{host="{host}"}}',
        "truncatedAlerts": 0,
    }


def seconds(start: str | None, end: str | None) -> str:
    if not (start and end):
        return "-"
    return f"{(datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds():.1f}s"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"
