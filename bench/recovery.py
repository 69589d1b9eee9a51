"""Benchmark 3: one host recovery end to end on the whole stack, as real processes.

Kill node-01 (running N instances) in the lab, deliver the host-down webhook to the gunicorn
receiver, and follow the record until it ends. The wall time is measured from the webhook to
the record seen finished; the per-phase breakdown comes from the record's own step log:

    pickup    record created -> the worker starts the job (RQ queue + work-horse fork)
    check     inventory gate
    plan      the capacity plan, before any fence: servers, hypervisors, selection, placement
    fence     re-verification, then IPMI power off and read back OFF (the lab "killed" the host)
    nova      compute service forced down, then disabled
    evacuate  every instance locked, evacuated, confirmed and unlocked (bounded concurrency)
    finish    the record closed

With evacuate_delay d and concurrency c the evacuate phase cannot be shorter than
ceil(N / c) * d; `evacuate_over_ideal` says how close it comes.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.alerts import host_down_webhook
from bench.stats import ratio
from receiver.lab.stack import Stack, running_stack
from receiver.lab.topology import LabOptions

HOST = "node-01"
PHASES = ("check", "plan", "fence", "nova", "evacuate")
ENDED = ("finished", "failed", "ignored", "error")
POLL_S = 0.05  # how often the benchmark reads the record: the resolution of `wall_s`


class RecoveryFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class RecoveryParams:
    instances: tuple[int, ...] = (4, 20)
    repeats: int = 3  # fresh stack each time; N=4 and N=20 alternate
    hosts: int = 4
    evacuate_delay_s: float = 1.0
    action_delay_s: float = 0.3
    evacuation_concurrency: int = 4
    poll_interval_s: float = 0.25  # Lazarus's fencing and evacuation polls
    timeout_s: float = 120.0


def run(workdir: Path, params: RecoveryParams) -> dict[str, Any]:
    runs = [
        _one(workdir / f"recovery-{n}-{repeat}", n, params)
        for repeat in range(params.repeats)
        for n in params.instances
    ]
    return {
        "parameters": {
            "instances": list(params.instances),
            "repeats": params.repeats,
            "lab_hosts": params.hosts,
            "evacuate_delay_s": params.evacuate_delay_s,
            "action_delay_s": params.action_delay_s,
            "evacuation_concurrency": params.evacuation_concurrency,
            "fencing_poll_interval_s": params.poll_interval_s,
            "evacuation_poll_interval_s": params.poll_interval_s,
            "record_poll_s": POLL_S,
            "receivers": "1 (gunicorn, 2 workers)",
            "rq_workers": 1,
            "killed_host": HOST,
        },
        "summary": [_summary(n, [r for r in runs if r["instances"] == n]) for n in params.instances],
        "runs": runs,
    }


def _summary(instances: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the repeats (and the spread of the wall time)."""
    walls = [r["wall_s"] for r in runs]
    return {
        "instances": instances,
        "runs": len(runs),
        "wall_s_median": statistics.median(walls),
        "wall_s_min": min(walls),
        "wall_s_max": max(walls),
        "webhook_answer_ms_median": statistics.median(r["webhook_answer_ms"] for r in runs),
        "phases_s_median": {
            phase: statistics.median(r["phases_s"][phase] for r in runs) for phase in runs[0]["phases_s"]
        },
        "fence_s_all": [round(r["phases_s"]["fence"], 3) for r in runs],
        "evacuate_ideal_s": runs[0]["evacuate_ideal_s"],
        "evacuate_over_ideal_median": statistics.median(r["evacuate_over_ideal"] for r in runs),
    }


def _one(workdir: Path, instances: int, params: RecoveryParams) -> dict[str, Any]:
    lab = {
        "hosts": LabOptions(host_count=params.hosts).host_names(),
        "servers_per_host": instances,
        "evacuate_delay": params.evacuate_delay_s,
        "action_delay": params.action_delay_s,
        "service_down_time": 3.0,
        "report_interval": 0.5,
    }
    settings = {
        "fencing": {"poll_interval_s": params.poll_interval_s},
        "evacuation": {
            "poll_interval_s": params.poll_interval_s,
            "concurrency": params.evacuation_concurrency,
            "evacuate_all": True,  # every one of the N instances, HA_Enabled or not
        },
    }
    began = time.perf_counter()
    with running_stack(workdir, receivers=1, workers=1, lab_options=lab, settings=settings) as stack:
        started_s = time.perf_counter() - began
        return {"instances": instances, "stack_start_s": started_s, **_recover(stack, instances, params)}


def _recover(stack: Stack, instances: int, params: RecoveryParams) -> dict[str, Any]:
    before = _servers_on(stack, HOST)
    if len(before) != instances:
        raise RecoveryFailed(f"{HOST} runs {len(before)} servers, expected {instances}")
    stack.control.kill(HOST)
    posted = time.perf_counter()
    status, answer = stack.post_alerts(host_down_webhook(HOST))
    answered = time.perf_counter()
    if status != 200 or answer["alerts"][0]["outcome"] != "recovery_created":
        raise RecoveryFailed(f"webhook answered {status}: {answer}")
    uuid = answer["alerts"][0]["notification_uuid"]
    record = _follow(stack, uuid, params.timeout_s)
    ended = time.perf_counter()
    _verify(stack, record, instances)
    phases = phase_breakdown(record)
    ideal = math.ceil(instances / params.evacuation_concurrency) * params.evacuate_delay_s
    moves = sorted(_seconds(m["start_time"], m["end_time"]) for m in record["vmoves"])
    return {
        "webhook_answer_ms": (answered - posted) * 1000,
        "wall_s": ended - posted,
        "record_s": phases["total"],
        "phases_s": {k: v for k, v in phases.items() if k != "total"},
        "evacuate_ideal_s": ideal,
        "evacuate_over_ideal": ratio(phases["evacuate"], ideal),
        "move_s": {"min": moves[0], "p50": moves[len(moves) // 2], "max": moves[-1]},
        "fencing": [
            {k: a[k] for k in ("method", "power_before", "power_after", "outcome")} for a in record["fencing"]
        ],
        "steps": [
            [round(_seconds(record["created_at"], s["at"]), 3), s["name"], s["state"], s["message"][:90]]
            for s in record["steps"]
        ],
    }


def phase_breakdown(record: dict[str, Any]) -> dict[str, float]:
    """Seconds per phase from the step log: each phase ends at its last step, starts where the
    previous one ended, so the phases add up to the record's whole life."""
    created = datetime.fromisoformat(record["created_at"])
    steps = [(s["name"], datetime.fromisoformat(s["at"])) for s in record["steps"]]
    if not steps:
        raise RecoveryFailed("the record has no steps")
    phases: dict[str, float] = {}
    mark = steps[0][1]  # the worker's first step: "recovery started"
    phases["pickup"] = (mark - created).total_seconds()
    for name in PHASES:
        ends = [at for step, at in steps if step == name]
        if not ends:
            raise RecoveryFailed(f"no '{name}' step in the record")
        phases[name] = (max(ends) - mark).total_seconds()
        mark = max(ends)
    last = max(at for _, at in steps)
    phases["finish"] = (last - mark).total_seconds()
    phases["total"] = (last - created).total_seconds()
    return phases


def _follow(stack: Stack, uuid: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        record = stack.notification(uuid)
        if record["status"] in ENDED:
            return record
        if time.monotonic() > deadline:
            raise RecoveryFailed(f"recovery {uuid} still {record['status']} after {timeout_s:.0f} s")
        time.sleep(POLL_S)


def _verify(stack: Stack, record: dict[str, Any], instances: int) -> None:
    if record["status"] != "finished":
        raise RecoveryFailed(f"recovery ended {record['status']}: {record['reason']}: {record['message']}")
    moved = [m for m in record["vmoves"] if m["status"] == "succeeded"]
    left = _servers_on(stack, HOST)
    if len(moved) != instances or left:
        raise RecoveryFailed(f"{len(moved)}/{instances} moves succeeded, {len(left)} servers left on {HOST}")


def _servers_on(stack: Stack, host: str) -> list[dict[str, Any]]:
    servers: list[dict[str, Any]] = stack.nova(f"/servers/detail?all_tenants=1&host={host}")["servers"]
    return servers


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
