"""The real alerting chain around a lab stack: Prometheus scrapes the lab's exporters with our rules,
Alertmanager (one, or a clustered pair) delivers to the Lazarus receivers.

    with running_stack(workdir) as stack, running_chain(stack, alertmanagers=2) as chain:
        stack.control.kill("node-01")        # ... LazarusHostDown fires, Lazarus recovers node-01

Demo timings: scrape and evaluate every second, rules rendered with `DEMO_TIMINGS` (windows of
seconds), Alertmanager's timers shortened. The routes, receivers and inhibitions are those of
deploy/alertmanager.yml, pointed at the stack's receivers. Uses Debian's `prometheus` and
`prometheus-alertmanager` (upstream's `alertmanager` name works too); `missing_binaries()` says
what is not installed. Every process it starts, it stops.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from receiver.lab.redis_server import free_port
from receiver.lab.stack import Stack
from receiver.monitoring.rules import DEMO_TIMINGS, ROOT, write_rules

ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager.yml"
READY_DEADLINE_S = 60.0
SCRAPE_INTERVAL = "1s"
RESEND_DELAY = "2s"
# Alertmanager's timers for the demo: re-drive failed deliveries and repeat within seconds.
DEMO_ROUTE_TIMERS = {"group_interval": "2s", "repeat_interval": "10s"}
WATCHDOG_ROUTE_TIMERS = {"group_interval": "2s", "repeat_interval": "5s"}


class ChainError(RuntimeError):
    pass


def binary(*names: str) -> str | None:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def prometheus_binary() -> str | None:
    return binary("prometheus")


def alertmanager_binary() -> str | None:
    return binary("prometheus-alertmanager", "alertmanager")


def missing_binaries() -> list[str]:
    """Debian package names of what the chain needs and is not installed."""
    missing = []
    if prometheus_binary() is None:
        missing.append("prometheus")
    if alertmanager_binary() is None:
        missing.append("prometheus-alertmanager")
    return missing


@dataclass
class Chain:
    workdir: Path
    prometheus_url: str
    alertmanager_urls: list[str]
    processes: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query through Prometheus's HTTP API; raises ChainError on an error."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._api("/api/v1/query", params)
        result: list[dict[str, Any]] = data["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        data = self._api(
            "/api/v1/query_range",
            {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": str(step)},
        )
        result: list[dict[str, Any]] = data["result"]
        return result

    def label_values(self, label: str, match: str) -> list[str]:
        """What Grafana's `label_values(MATCH, LABEL)` variable query lists."""
        values: list[str] = self._api(f"/api/v1/label/{label}/values", {"match[]": match})
        return values

    def targets_down(self) -> list[str]:
        """Scrape targets that are not (yet) up, as job/instance."""
        targets = self._api("/api/v1/targets", {"state": "active"})["activeTargets"]
        if not targets:
            return ["(no targets yet)"]
        return [f"{t['labels']['job']}/{t['labels']['instance']}" for t in targets if t["health"] != "up"]

    def firing(self, alertname: str) -> list[dict[str, str]]:
        """Labels of the firing alerts of that name, as Prometheus sees them."""
        return [r["metric"] for r in self.query(f'ALERTS{{alertname="{alertname}", alertstate="firing"}}')]

    def _api(self, path: str, params: Mapping[str, str]) -> Any:
        url = f"{self.prometheus_url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (loopback)
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            body = json.loads(error.read() or b"{}")
        if body.get("status") != "success":
            raise ChainError(f"{path} {dict(params)}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def logs(self) -> str:
        return "\n".join(
            f"== {name}\n{log.read_text(errors='replace')[-4000:]}" for name, _, log in self.processes
        )


@contextmanager
def running_chain(
    stack: Stack, *, alertmanagers: int = 1, timings: Mapping[str, str] = DEMO_TIMINGS
) -> Iterator[Chain]:
    missing = missing_binaries()
    if missing:
        raise ChainError(f"not installed: {', '.join(missing)} (apt-get install {' '.join(missing)})")
    workdir = stack.workdir / "chain"
    workdir.mkdir(parents=True, exist_ok=True)
    token_file = workdir / "lazarus.token"
    token_file.write_text(stack.token)
    token_file.chmod(0o600)
    rule_files = write_rules(timings, workdir / "rules")
    web_ports = [free_port() for _ in range(alertmanagers)]
    cluster_ports = [free_port() for _ in range(alertmanagers)] if alertmanagers > 1 else []
    am_urls = [f"http://127.0.0.1:{p}" for p in web_ports]
    am_config = workdir / "alertmanager.yml"
    am_config.write_text(yaml.safe_dump(alertmanager_config(stack, token_file), sort_keys=False))
    prom_port = free_port()
    prom_config = workdir / "prometheus.yml"
    prom_config.write_text(yaml.safe_dump(prometheus_config(stack, rule_files, web_ports), sort_keys=False))
    chain = Chain(workdir, f"http://127.0.0.1:{prom_port}", am_urls)
    with ExitStack() as cleanup:
        cleanup.callback(_stop_all, chain)
        for i, port in enumerate(web_ports):
            args = [
                f"--config.file={am_config}",
                f"--storage.path={workdir / f'am-{i}'}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--web.external-url=http://127.0.0.1:{port}",
            ]
            if cluster_ports:
                args += [
                    f"--cluster.listen-address=127.0.0.1:{cluster_ports[i]}",
                    f"--cluster.advertise-address=127.0.0.1:{cluster_ports[i]}",
                    *(f"--cluster.peer=127.0.0.1:{p}" for p in cluster_ports if p != cluster_ports[i]),
                ]
            else:
                args.append("--cluster.listen-address=")  # a single replica gossips with nobody
            _spawn(chain, f"alertmanager-{i}", [str(alertmanager_binary()), *args])
        _spawn(
            chain,
            "prometheus",
            [
                str(prometheus_binary()),
                f"--config.file={prom_config}",
                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                # Firing alerts are re-sent this often (default 1m): one sent before Prometheus discovered
                # its Alertmanagers, as the always-firing Watchdog is at start, is lost until then.
                f"--rules.alert.resend-delay={RESEND_DELAY}",
            ],
        )
        for url in [*am_urls, chain.prometheus_url]:
            _wait_ready(chain, url)
        yield chain


def alertmanager_config(stack: Stack, token_file: Path) -> dict[str, Any]:
    """deploy/alertmanager.yml with its Lazarus receivers pointed at every receiver of the stack."""
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    webhook_urls = [f"{url}/v1/webhooks/alertmanager" for _, url in stack.receivers]
    for receiver in config["receivers"]:
        if not receiver.get("webhook_configs"):
            continue
        template = receiver["webhook_configs"][0]
        receiver["webhook_configs"] = [
            {
                **template,
                "url": url,
                "http_config": {"authorization": {"type": "Bearer", "credentials_file": str(token_file)}},
            }
            for url in webhook_urls
        ]
    for route in config["route"]["routes"]:
        if route["receiver"] == "lazarus":
            route.update(DEMO_ROUTE_TIMERS)
        elif route["receiver"] == "lazarus-watchdog":
            route.update(WATCHDOG_ROUTE_TIMERS)
    return config


def prometheus_config(stack: Stack, rule_files: list[Path], alertmanager_ports: list[int]) -> dict[str, Any]:
    """deploy/prometheus.yml's jobs, for the lab: its hosts' exporters live under /exporters."""
    lab = stack.lab.nova_endpoint.removesuffix("/v2.1")
    address = lab.removeprefix("http://")
    hosts = sorted(stack.lab.hosts)

    def per_host(kind: str, port: int) -> list[dict[str, Any]]:
        return [
            {
                "targets": [address],
                "labels": {
                    "host": h,
                    "instance": f"{h}:{port}",
                    "__metrics_path__": f"/exporters/{h}/{kind}/metrics",
                },
            }
            for h in hosts
        ]

    def multi_target(job: str, path: str, params: dict[str, list[str]]) -> dict[str, Any]:
        # The blackbox_exporter / ipmi_exporter pattern: the target is a parameter of the prober's URL.
        return {
            "job_name": job,
            "metrics_path": path,
            "params": params,
            "static_configs": [{"targets": [h], "labels": {"host": h}} for h in hosts],
            "relabel_configs": [
                {"source_labels": ["__address__"], "target_label": "__param_target"},
                {"source_labels": ["__param_target"], "target_label": "instance"},
                {"target_label": "__address__", "replacement": address},
            ],
        }

    receivers = [url.removeprefix("http://") for _, url in stack.receivers]
    return {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "scrape_timeout": SCRAPE_INTERVAL,
            "evaluation_interval": SCRAPE_INTERVAL,
        },
        "rule_files": [str(p) for p in rule_files],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"127.0.0.1:{p}" for p in alertmanager_ports]}]}
            ]
        },
        "scrape_configs": [
            {"job_name": "node", "static_configs": per_host("node", 9100)},
            {"job_name": "libvirt", "static_configs": per_host("libvirt", 9177)},
            multi_target("blackbox-icmp", "/exporters/probe", {"module": ["icmp"]}),
            multi_target("ipmi", "/exporters/ipmi", {}),
            {"job_name": "lazarus", "static_configs": [{"targets": receivers}]},
            {
                "job_name": "alertmanager",
                "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in alertmanager_ports]}],
            },
        ],
    }


def wait_for_targets(chain: Chain, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        down = chain.targets_down()
        if not down:
            return
        if time.monotonic() > deadline:
            raise ChainError(f"targets still down after {timeout:.0f}s: {', '.join(down)}")
        time.sleep(0.5)


def wait_for_notification(
    stack: Stack, ntype: str, wanted: Callable[[dict[str, Any]], bool], since: datetime, timeout: float
) -> dict[str, Any]:
    """The first record of type `ntype` created at or after `since` that `wanted` accepts."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = stack.http("GET", f"{stack.receivers[0][1]}/v1/notifications?type={ntype}")
        if status == 200:
            mine = [
                n
                for n in body["notifications"]
                if wanted(n) and datetime.fromisoformat(n["created_at"]) >= since
            ]
            if mine:
                first: dict[str, Any] = min(mine, key=lambda n: n["created_at"])
                return first
        if time.monotonic() > deadline:
            raise ChainError(f"no {ntype} notification within {timeout:.0f}s")
        time.sleep(0.2)


def wait_for_recovery(stack: Stack, host: str, since: datetime, timeout: float) -> dict[str, Any]:
    """The first host recovery of `host` created at or after `since` (as Alertmanager delivered it)."""
    return wait_for_notification(stack, "COMPUTE_HOST", lambda n: n["hostname"] == host, since, timeout)


def milestones(record: dict[str, Any], died: datetime) -> dict[str, float | None]:
    """Seconds from the host's death to: the alert firing in Prometheus (its startsAt), the receiver
    recording it, the BMC reading back OFF, and the last instance recovered."""

    def after(stamp: str | None) -> float | None:
        return None if not stamp else (datetime.fromisoformat(stamp) - died).total_seconds()

    starts = [a["starts_at"] for a in record.get("alerts", []) if a.get("status") == "firing"]
    fenced = [f["ended_at"] for f in record.get("fencing", []) if f.get("outcome") == "off_confirmed"]
    ends = [m["end_time"] for m in record.get("vmoves", []) if m.get("end_time")]
    return {
        "alert_firing": after(min(starts)) if starts else None,
        "alert_received": after(record["created_at"]),
        "fenced": after(min(fenced)) if fenced else None,
        "all_active": after(max(ends)) if ends else None,
    }


def _spawn(chain: Chain, name: str, command: list[str]) -> None:
    log = chain.workdir / f"{name}.log"
    with log.open("ab") as handle:
        process = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    chain.processes.append((name, process, log))


def _wait_ready(chain: Chain, url: str) -> None:
    deadline = time.monotonic() + READY_DEADLINE_S
    while True:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=5) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except OSError:
            pass
        exited = [name for name, process, _ in chain.processes if process.poll() is not None]
        if exited or time.monotonic() > deadline:
            why = f"{', '.join(exited)} exited" if exited else f"not ready within {READY_DEADLINE_S:.0f}s"
            raise ChainError(f"{url}: {why}\n{chain.logs()}")
        time.sleep(0.2)


def _stop_all(chain: Chain) -> None:
    for _, process, _ in chain.processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for _, process, _ in chain.processes:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
