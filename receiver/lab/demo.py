"""`make demo`: a dead compute host, fenced and evacuated, end to end on one machine.

Starts redis-server, the lab (simulated Nova + IPMI BMCs, six hosts), a receiver (`lazarus serve`,
gunicorn with 2 workers) and a worker (`lazarus worker`), and applies the operator's inventory:
segment `lab` (auto) and segment `rack-b` (reserved_host, with the reserved spare spare-01). Then:

1. node-01 hangs: fenced (BMC read back OFF), its HA_Enabled instances evacuated where Nova's
   scheduler chooses, the one without HA_Enabled left where it is, by policy, and recorded so;
2. nova-compute dies on node-02: disabled, never fenced, re-enabled once Nova sees it up;
3. an instance crashes on node-03: stopped/started in place;
4. node-04 of rack-b hangs: its HA_Enabled instances go to the spare, which is taken into
   service; `lazarus segment show rack-b` then warns that no free spare is left.

With Debian's prometheus and prometheus-alertmanager installed, the host alerts come through the
real chain (receiver.lab.chain: Prometheus scrapes the lab's exporters every second with our
rules, Alertmanager delivers); otherwise (or with --direct) the demo delivers the Alertmanager
webhook our host-down rule produces itself.
Exits 0 only if all of it holds: every HA_Enabled instance of a dead host ends as it was (ACTIVE,
or SHUTOFF where it was SHUTOFF) on another host (rack-b's on the spare), every other instance is
left on the dead host, recorded ignored/not_ha_enabled. Stops everything it started.
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
from receiver.lab import demo_reserved
from receiver.lab.demo_support import (
    describe,
    follow,
    host_down_webhook,
    host_recovery,
    judge_moves,
    say,
    servers_on,
    show_diagnosis,
    show_fencing,
    show_milestones,
)
from receiver.lab.stack import Stack, running_stack

HOST = "node-01"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, help="keep logs and state here (default: a temporary folder)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for each recovery")
    parser.add_argument("--direct", action="store_true", help="post the webhook ourselves (no Prometheus)")
    args = parser.parse_args(argv)
    missing = alert_chain.missing_binaries()
    if missing and not args.direct:
        say(f"not installed: {', '.join(missing)}; delivering the Alertmanager webhook ourselves")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lazarus-demo-"))
    say(f"workdir {workdir} (logs: *.log)")
    t0 = time.monotonic()
    with running_stack(workdir, receivers=1, workers=1, lab_options=lab_options()) as stack:
        say(
            f"started in {time.monotonic() - t0:.1f}s: redis-server, lab (Nova API {stack.lab.nova_endpoint},"
            f" {len(stack.lab.hosts)} BMCs), receiver {stack.receivers[0][1]} (gunicorn, 2 workers), 1 worker"
        )
        if not demo_reserved.apply_inventory(stack):
            return _ended(1, t0)
        if args.direct or missing:
            return _ended(run_all(stack, args.timeout, None), t0)
        with alert_chain.running_chain(stack) as chain:
            alert_chain.wait_for_targets(chain)
            say(
                f"Prometheus {chain.prometheus_url} scrapes the lab's exporters every second with our rules; "
                f"Alertmanager {chain.alertmanager_urls[0]} delivers to Lazarus"
            )
            return _ended(run_all(stack, args.timeout, chain), t0)


def lab_options() -> dict[str, Any]:
    """Six hosts, four instances each (the 3rd without HA_Enabled, the 4th SHUTOFF), spare-01 kept
    empty and disabled; rack b's hosts are smaller (see demo_reserved)."""
    return {
        "hosts": demo_reserved.lab_hosts(),
        "servers_per_host": 4,
        "spares": (demo_reserved.SPARE,),
        "host_capacity": demo_reserved.RACK_B_CAPACITY,
        "service_down_time": 5.0,
        "report_interval": 1.0,
        "evacuate_delay": 1.0,
        "action_delay": 0.3,
    }


def run_all(stack: Stack, timeout: float, chain: alert_chain.Chain | None) -> int:
    """Each scenario in turn; the first that does not hold ends the demo (non-zero)."""
    say(f"--- {HOST} of segment lab (auto) dies: fence it, evacuate what is HA_Enabled")
    if run(stack, timeout, chain) != 0:
        return 1
    if run_others(stack, timeout) != 0:
        return 1
    say(f"--- {demo_reserved.HOST} of segment {demo_reserved.SEGMENT} (reserved_host) dies: "
        f"the reserved spare {demo_reserved.SPARE} takes its instances")  # fmt: skip
    return 0 if demo_reserved.run(stack, timeout, chain).ok else 1


def _ended(code: int, t0: float) -> int:
    say(f"{'DEMO PASSED' if code == 0 else 'DEMO FAILED'} in {time.monotonic() - t0:.1f}s")
    return code


def run(stack: Stack, timeout: float, chain: alert_chain.Chain | None = None) -> int:
    before = servers_on(stack, HOST)
    say(f"{HOST} runs {len(before)} instances: {describe(before)}")
    died = datetime.now().astimezone()
    # The failure operators actually get: a hung host (kernel panic, frozen hypervisor) whose BMC
    # still says ON. Only the fence, read back OFF, makes it safe to start its instances elsewhere.
    stack.control.hang(HOST)
    killed = time.monotonic()
    say(f"{HOST} hung: it stops heartbeating, its instances are unreachable, its BMC still says ON")
    uuid = host_recovery(stack, HOST, died, timeout, chain)
    if uuid is None:
        return 1
    record = follow(stack, uuid, timeout)
    took = time.monotonic() - killed
    if chain is not None:
        show_milestones(stack, uuid, died)
    show_fencing(record)
    judged = judge_moves(stack, record, before, HOST)
    say(f"final status: {record['status']} ({record['reason']}): {record['message']}")
    say(f"host death to last instance recovered: {took:.1f}s")
    show_diagnosis(record)
    return 0 if judged.ok else 1


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
    record = follow(stack, uuid, timeout, printed)
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
    record = follow(stack, uuid, timeout)
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
    webhook = host_down_webhook(labels["host"])
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


if __name__ == "__main__":
    sys.exit(main())
