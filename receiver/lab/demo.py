"""`make demo`: a dead compute host, fenced and evacuated, end to end on one machine.

Starts redis-server, the lab (simulated Nova + IPMI BMCs), a receiver (`lazarus serve`,
gunicorn with 2 workers) and a worker (`lazarus worker`); kills node-01; prints the recovery
as it happens. With Debian's prometheus and prometheus-alertmanager installed, the alert comes
through the real chain (receiver.lab.chain: Prometheus scrapes the lab's exporters every second
with our rules, Alertmanager delivers); otherwise (or with --direct) the demo delivers the
Alertmanager webhook our host-down rule produces itself.
Exits 0 only if every instance of node-01 ends as it was (ACTIVE, or SHUTOFF where it was
SHUTOFF) on another host. Stops everything it started.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from receiver.lab import chain as alert_chain
from receiver.lab.stack import Stack, running_stack

HOST = "node-01"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, help="keep logs and state here (default: a temporary folder)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the recovery")
    parser.add_argument("--direct", action="store_true", help="post the webhook ourselves (no Prometheus)")
    args = parser.parse_args(argv)
    missing = alert_chain.missing_binaries()
    if missing and not args.direct:
        say(f"not installed: {', '.join(missing)}; delivering the Alertmanager webhook ourselves")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lazarus-demo-"))
    say(f"workdir {workdir} (logs: *.log)")
    t0 = time.monotonic()
    with running_stack(workdir, receivers=1, workers=1, lab_options=_lab_options()) as stack:
        say(
            f"started in {time.monotonic() - t0:.1f}s: redis-server, lab (Nova API {stack.lab.nova_endpoint},"
            f" {len(stack.lab.hosts)} BMCs), receiver {stack.receivers[0][1]} (gunicorn, 2 workers), 1 worker"
        )
        if args.direct or missing:
            return run(stack, args.timeout) or run_others(stack, args.timeout)
        with alert_chain.running_chain(stack) as chain:
            alert_chain.wait_for_targets(chain)
            say(
                f"Prometheus {chain.prometheus_url} scrapes the lab's exporters every second with our rules; "
                f"Alertmanager {chain.alertmanager_urls[0]} delivers to Lazarus"
            )
            return run(stack, args.timeout, chain) or run_others(stack, args.timeout)


def _lab_options() -> dict[str, Any]:
    return {
        "hosts": ("node-01", "node-02", "node-03"),
        "service_down_time": 5.0,
        "report_interval": 1.0,
        "evacuate_delay": 1.0,
        "action_delay": 0.3,
    }


def run(stack: Stack, timeout: float, chain: alert_chain.Chain | None = None) -> int:
    before = {s["id"]: s for s in stack.nova(f"/servers/detail?all_tenants=1&host={HOST}")["servers"]}
    say(
        f"{HOST} runs {len(before)} instances: "
        + ", ".join(f"{s['name']} ({s['status']})" for s in before.values())
    )
    died = datetime.now().astimezone()
    # The failure operators actually get: a hung host (kernel panic, frozen hypervisor) whose BMC
    # still says ON. Only the fence, read back OFF, makes it safe to start its instances elsewhere.
    stack.control.hang(HOST)
    killed = time.monotonic()
    say(f"{HOST} hung: it stops heartbeating, its instances are unreachable, its BMC still says ON")
    if chain is None:
        status, answer = stack.post_alerts(_host_down_webhook())
        if status != 200:
            say(f"webhook answered {status}: {answer}")
            return 1
        result = answer["alerts"][0]
        uuid = result["notification_uuid"]
        say(f"Alertmanager webhook delivered: {result['outcome']}, notification {uuid}")
    else:
        uuid = alert_chain.wait_for_recovery(stack, HOST, died, timeout)["notification_uuid"]
        say(f"Prometheus fired LazarusHostDown, Alertmanager delivered it: notification {uuid}")
    record = _follow(stack, uuid, timeout)
    took = time.monotonic() - killed
    if chain is not None:
        seconds = alert_chain.milestones(stack.notification(uuid), died)
        say("host death -> " + ", ".join(f"{name.replace('_', ' ')} {_s(v)}" for name, v in seconds.items()))
    return _verdict(stack, record, before, took)


def run_others(stack: Stack, timeout: float) -> int:
    """The two failures that are not a dead host: neither may touch a BMC."""
    say("--- a dead nova-compute on a live host: stop scheduling there, never fence")
    if _process_scenario(stack, timeout) != 0:
        return 1
    say("--- a crashed instance on a healthy host: stop/start it where it is")
    return _instance_scenario(stack, timeout)


def _process_scenario(stack: Stack, timeout: float) -> int:
    host = "node-02"
    stack.control.compute(host, running=False)
    say(f"nova-compute on {host} killed; the host and its instances keep running")
    labels = {
        "alertname": "LazarusProcessDown",
        "recovery": "process",
        "host": host,
        "process": "nova-compute",
    }
    uuid = _deliver(stack, labels, f"nova-compute on {host} is down")
    printed = _wait_for_step(stack, uuid, "wait", timeout)
    service = stack.nova(f"/os-services?binary=nova-compute&host={host}")["services"][0]
    say(f"Nova: {host} compute service {service['status']} ({service['disabled_reason']}), "
        f"state {service['state']}; the record stays open")  # fmt: skip
    stack.control.compute(host, running=True)
    say(f"nova-compute on {host} started again; Lazarus waits for Nova to see it up")
    record = _follow(stack, uuid, timeout, printed)
    service = stack.nova(f"/os-services?binary=nova-compute&host={host}")["services"][0]
    ok = record["status"] == "finished" and service["status"] == "enabled" and not record["fencing"]
    verdict = "ok" if ok else "NOT RECOVERED"
    say(f"process recovery: {record['status']} ({record['reason']}); {host} compute service "
        f"{service['status']}; BMC: {_bmc_changes(stack, host)}  {verdict}")  # fmt: skip
    return 0 if ok else 1


def _instance_scenario(stack: Stack, timeout: float) -> int:
    host = "node-03"
    servers = stack.nova(f"/servers/detail?all_tenants=1&host={host}")["servers"]
    victim = next(
        (s for s in servers if s["status"] == "ACTIVE" and s["metadata"].get("HA_Enabled") == "True"), None
    )
    if victim is None:
        say(f"no HA-enabled ACTIVE instance on {host}: instance scenario skipped")
        return 1
    stack.control.crash(victim["id"], sync_after=2.0)
    say(f"{victim['name']} crashed on {host}: the hypervisor says it is off, Nova still says active")
    labels = {
        "alertname": "LazarusInstanceVanished",
        "recovery": "instance",
        "host": host,
        "uuid": victim["id"],
    }
    uuid = _deliver(stack, labels, f"instance {victim['name']} vanished")
    record = _follow(stack, uuid, timeout)
    server = stack.nova(f"/servers/{victim['id']}")["server"]
    ok = (
        record["status"] == "finished"
        and server["status"] == "ACTIVE"
        and server["OS-EXT-SRV-ATTR:host"] == host
        and not record["fencing"]
    )
    verdict = "ok" if ok else "NOT RECOVERED"
    say(f"instance recovery: {record['status']} ({record['reason']}); {victim['name']} {server['status']} on "
        f"{server['OS-EXT-SRV-ATTR:host']}; BMC: {_bmc_changes(stack, host)}  {verdict}")  # fmt: skip
    say("DEMO PASSED" if ok else "DEMO FAILED")
    return 0 if ok else 1


def _wait_for_step(stack: Stack, uuid: str, name: str, timeout: float) -> int:
    """Print the record's steps until one named `name` appears (or the record ends); returns how many."""
    printed = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = stack.notification(uuid)
        for step in record["steps"][printed:]:
            say(f"  [{step['name']:8}] {step['message']}", at=step["at"])
        printed = len(record["steps"])
        if any(s["name"] == name for s in record["steps"]) or record["status"] not in ("new", "running"):
            return printed
        time.sleep(0.2)
    return printed


def _deliver(stack: Stack, labels: dict[str, str], summary: str) -> str:
    webhook = _host_down_webhook()
    alert = webhook["alerts"][0]
    alert.update(
        labels=labels, annotations={"summary": summary}, fingerprint=f"d3m0{abs(hash(summary)):012x}"[:16]
    )
    webhook.update(commonLabels=labels, groupLabels={"host": labels["host"]})
    status, answer = stack.post_alerts(webhook)
    if status != 200:
        raise SystemExit(f"webhook answered {status}: {answer}")
    result = answer["alerts"][0]
    say(f"{labels['alertname']} delivered: {result['outcome']}, notification {result['notification_uuid']}")
    return str(result["notification_uuid"])


def _bmc_changes(stack: Stack, host: str) -> str:
    """Power changes the host's simulated BMC received (reads are the periodic probe's)."""
    counts = stack.control.status().get("bmc_requests", {}).get(host)
    return "no counters" if counts is None else f"{counts['power_changes']} power changes"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _follow(stack: Stack, uuid: str, timeout: float, printed: int = 0) -> dict[str, Any]:
    """Print each step of the record as it appears (after the first `printed`)."""
    deadline = time.monotonic() + timeout
    while True:
        record = stack.notification(uuid)
        for step in record["steps"][printed:]:
            say(f"  [{step['name']:8}] {step['message']}", at=step["at"])
        printed = len(record["steps"])
        if record["status"] in ("finished", "failed", "ignored", "error"):
            return record
        if time.monotonic() > deadline:
            say(f"gave up after {timeout:.0f}s: the recovery is still {record['status']}")
            return record
        time.sleep(0.2)


def _verdict(stack: Stack, record: dict[str, Any], before: dict[str, dict[str, Any]], took: float) -> int:
    for attempt in record["fencing"]:
        say(
            f"fencing evidence: {attempt['method']} {attempt['bmc']} power {attempt['power_before']} -> "
            f"{attempt['power_after']} ({attempt['outcome']})"
        )
    ok = record["status"] == "finished"
    for move in record["vmoves"]:
        server = stack.nova(f"/servers/{move['instance_uuid']}")["server"]
        host = server["OS-EXT-SRV-ATTR:host"]
        expected = before[move["instance_uuid"]]["status"]
        good = host != HOST and server["status"] == expected
        ok &= good
        seconds = _seconds(move["start_time"], move["end_time"])
        say(
            f"  {move['instance_name']:16} {HOST} -> {host:8} {server['status']:8} "
            f"(was {expected}) in {seconds}  {'ok' if good else 'NOT RECOVERED'}"
        )
    missing = set(before) - {m["instance_uuid"] for m in record["vmoves"]}
    ok &= not missing
    say(f"final status: {record['status']} ({record['reason']}): {record['message']}")
    say(f"host death to last instance recovered: {took:.1f}s")
    if not ok:
        say("DEMO FAILED")
    return 0 if ok else 1


def _host_down_webhook() -> dict[str, Any]:
    """What Alertmanager sends for our LazarusHostDown rule (rules/lazarus-host.rules.yml)."""
    now = datetime.now().astimezone().isoformat()
    labels = {"alertname": "LazarusHostDown", "recovery": "host", "host": HOST, "severity": "critical"}
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": f"Compute host {HOST} is down (all signals agree)"},
        "startsAt": now,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": "d3m0d3m0d3m0d3m0",
    }
    return {
        "receiver": "lazarus",
        "status": "firing",
        "alerts": [alert],
        "groupLabels": {"host": HOST},
        "commonLabels": labels,
        "commonAnnotations": alert["annotations"],
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": f'{{}}:{{host="{HOST}"}}',
        "truncatedAlerts": 0,
    }


def _seconds(start: str | None, end: str | None) -> str:
    if not (start and end):
        return "-"
    return f"{(datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds():.1f}s"


def say(message: str, at: str | None = None) -> None:
    stamp = at[11:23] if at else datetime.now().astimezone().isoformat()[11:23]
    print(f"{stamp}  {message}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
