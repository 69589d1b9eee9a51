"""Lazarus's Grafana dashboards, built as classic dashboard JSON from plain data.

    python -m receiver.monitoring.dashboards            # rewrite deploy/grafana/dashboards/*.json
    python -m receiver.monitoring.dashboards --check    # exit 1 when a committed file is stale

Every panel and variable takes its data source from the `datasource` template variable: Grafana's
file provisioning does not resolve `${DS_PROMETHEUS}` inputs. Lazarus counts in Redis, so every
receiver exposes the same cluster-wide counters: panels take the max across receivers, never a
sum (see `grown`). `queries()` lists every PromQL expression, for the test that
evaluates each one through a real Prometheus.

No dashboard library: grafana-foundation-sdk is a public preview published under epoch-numbered
versions per Grafana release, grafanalib is unmaintained; a dozen panels of plain JSON do not need
either.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from receiver.monitoring.rules import ROOT

DASHBOARDS_DIR = ROOT / "deploy" / "grafana" / "dashboards"
SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
L = 'job="lazarus"'  # the scrape job of the Lazarus receivers (deploy/prometheus.yml)
STORM = 'reason="storm_guard"'  # receiver.domain.reasons.Reason.STORM_GUARD


def grown(selector: str, by: str, window: str) -> str:
    """How much a Lazarus counter grew over `window`, per `by`, once across receivers.

    Lazarus's counters live in Redis: every receiver exposes the same values (max across them, never
    sum), they never reset, and a labelled series appears with its first increment, which increase()
    would miss. So: now minus then, or all of it for a series born within the window."""
    now = f"max by ({by}) ({selector})"
    return f"(({now} - max by ({by}) ({selector} offset {window})) or {now})"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    kind: str  # timeseries | stat | table
    queries: tuple[Query, ...]
    width: int = 12
    height: int = 8
    unit: str = "short"
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)


def overview() -> dict[str, Any]:
    rate = "$__rate_interval"
    recoveries = f"lazarus_recoveries_total{{{L}}}"
    refusals = f"lazarus_recoveries_total{{{L}, {STORM}}}"
    panels = [
        Panel(
            "Recoveries in progress", "stat", (Query(f"max(lazarus_recoveries_in_progress{{{L}}})"),), 6, 4
        ),
        Panel("Jobs waiting in the queue", "stat", (Query(f"max(lazarus_queue_depth{{{L}}})"),), 6, 4),
        Panel(
            "Redis reachable (every receiver)",
            "stat",
            (Query(f"min(lazarus_store_up{{{L}}})"),),
            6,
            4,
            description="1 when every receiver reached Redis at its last scrape.",
        ),
        Panel(
            "Last Watchdog received",
            "stat",
            (Query(f"time() - max(lazarus_watchdog_last_seen_timestamp_seconds{{{L}}})"),),
            6,
            4,
            unit="s",
            description="Age of the last Watchdog alert Alertmanager delivered: the chain works.",
        ),
        Panel(
            "Recoveries by type and outcome",
            "timeseries",
            (
                Query(
                    f"sum by (type, status) {grown(recoveries, 'type, status, reason', rate)}",
                    "{{type}} {{status}}",
                ),
            ),
        ),
        Panel(
            "Recoveries by reason (time range)",
            "table",
            (Query(f"{grown(recoveries, 'type, status, reason', '$__range')} > 0"),),
            options={"format": "table", "instant": True},
        ),
        Panel(
            "Time to recover",
            "timeseries",
            tuple(
                Query(
                    f"histogram_quantile({q}, "
                    f"{grown(f'lazarus_recovery_duration_seconds_bucket{{{L}}}', 'le, type', rate)})",
                    f"p{int(q * 100)} {{{{type}}}}",
                )
                for q in (0.5, 0.95)
            ),
            unit="s",
        ),
        Panel(
            "Fencing outcomes",
            "timeseries",
            (
                Query(
                    grown(f"lazarus_fence_attempts_total{{{L}}}", "outcome", rate),
                    "{{outcome}}",
                ),
            ),
            description="off_confirmed: the BMC read back OFF. Anything else stopped a recovery.",
        ),
        Panel(
            "Evacuations",
            "timeseries",
            (
                Query(
                    grown(f"lazarus_evacuations_total{{{L}}}", "outcome", rate),
                    "{{outcome}}",
                ),
                Query(
                    "histogram_quantile(0.95, "
                    f"{grown(f'lazarus_evacuation_duration_seconds_bucket{{{L}}}', 'le', rate)})",
                    "p95 seconds per instance",
                ),
            ),
        ),
        Panel(
            "Storm-guard refusals",
            "timeseries",
            (
                Query(
                    f"sum by (type) {grown(refusals, 'type, status', rate)}",
                    "{{type}}",
                ),
            ),
            description="Recoveries refused because too many hosts failed at once or too many were fenced.",
        ),
        Panel(
            "Alerts received",
            "timeseries",
            (
                Query(
                    grown(f"lazarus_alerts_received_total{{{L}}}", "outcome", rate),
                    "{{outcome}}",
                ),
            ),
        ),
        Panel(
            "Webhook answers",
            "timeseries",
            (Query(f"sum by (code) (rate(lazarus_webhook_requests_total{{{L}}}[{rate}]))", "{{code}}"),),
            unit="reqps",
            description="Per receiver process, summed. 503: Redis was unreachable (Alertmanager retries).",
        ),
        Panel(
            "BMC probe health",
            "timeseries",
            (Query('min by (host) (ipmi_up{job="ipmi"})', "{{host}}"),),
            description="ipmi_exporter: 0 means Lazarus could not prove the host off: no evacuation.",
        ),
        Panel(
            "Hosts down, and alerts Lazarus acts on",
            "timeseries",
            (
                Query("lazarus:hosts_down:ratio", "share of hosts down (guard above the rule's share)"),
                Query('count by (alertname) (ALERTS{alertstate="firing", recovery!=""})', "{{alertname}}"),
            ),
        ),
        Panel(
            "Free reserved spares per segment",
            "timeseries",
            (Query(f"max by (segment) (lazarus_segment_free_spares{{{L}}})", "{{segment}}"),),
            description=(
                "Reserved spares not on maintenance, not held by an open recovery, and whose nova-compute "
                "was up at the last check. A segment whose recovery method uses spares (reserved_host, "
                "auto_priority, rh_priority) needs one."
            ),
        ),
        Panel(
            "Segments that need a spare and have none",
            "stat",
            (Query(_segments_without_spare()),),
            height=8,
            description="Enabled segments whose recovery method uses spares, with none free "
            "(alert LazarusSegmentWithoutFreeSpare; `lazarus segment show NAME` says why).",
        ),
        Panel(
            "Alertmanager deliveries failing",
            "timeseries",
            (
                Query(
                    'sum by (instance) (rate(alertmanager_notifications_failed_total{integration="webhook"}'
                    f"[{rate}]))",
                    "{{instance}}",
                ),
            ),
            unit="reqps",
            width=24,
        ),
    ]
    return dashboard("lazarus-overview", "Lazarus: overview", panels, host_variable=False)


def _segments_without_spare() -> str:
    """How many segments need a spare and have none free (0 when none, empty when no segment)."""
    needed = f"max by (segment) (lazarus_segment_spares_needed{{{L}}})"
    free = f"max by (segment) (lazarus_segment_free_spares{{{L}}})"
    return f"sum({needed} * on (segment) ({free} == bool 0))"


def host_view() -> dict[str, Any]:
    h = 'host=~"$host"'
    panels = [
        Panel(
            "Signals (1 up, 0 down)",
            "timeseries",
            (
                Query(f'max by (host) (up{{job="node", {h}}})', "{{host}} node-exporter"),
                Query(f'max by (host) (up{{job="libvirt", {h}}})', "{{host}} libvirt exporter"),
                Query(f'max by (host) (probe_success{{job="blackbox-icmp", {h}}})', "{{host}} ICMP"),
            ),
            width=24,
        ),
        Panel(
            "Window verdicts (1 = every sample said down)",
            "timeseries",
            (
                Query(f"lazarus:host_node_down:window{{{h}}}", "{{host}} node"),
                Query(f"lazarus:host_libvirt_down:window{{{h}}}", "{{host}} libvirt"),
                Query(f"lazarus:host_icmp_down:window{{{h}}}", "{{host}} ICMP"),
            ),
        ),
        Panel(
            "Alerts on the host",
            "timeseries",
            (
                Query(
                    f"max by (host, alertname, alertstate) (ALERTS{{{h}}})",
                    "{{host}} {{alertname}} {{alertstate}}",
                ),
            ),
        ),
        Panel(
            "nova-compute unit state",
            "timeseries",
            (
                Query(
                    f'node_systemd_unit_state{{job="node", name="nova-compute.service", {h}}} == 1',
                    "{{host}} {{state}}",
                ),
            ),
        ),
        Panel(
            "Running domains (libvirt)",
            "timeseries",
            (Query(f'libvirt_domains_number{{job="libvirt", {h}}}', "{{host}}"),),
        ),
        Panel(
            "BMC",
            "timeseries",
            (
                Query(f'min by (host) (ipmi_up{{job="ipmi", {h}}})', "{{host}} BMC answers"),
                Query(f'ipmi_chassis_power_state{{job="ipmi", {h}}}', "{{host}} chassis power on"),
            ),
            width=24,
        ),
    ]
    return dashboard("lazarus-host", "Lazarus: host", panels, host_variable=True)


def dashboard(uid: str, title: str, panels: list[Panel], *, host_variable: bool) -> dict[str, Any]:
    variables: list[dict[str, Any]] = [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
            "regex": "",
        }
    ]
    if host_variable:
        variables.append(
            {
                "name": "host",
                "label": "Host",
                "type": "query",
                "datasource": DATASOURCE,
                "definition": 'label_values(up{job="node"}, host)',
                "query": {
                    "query": 'label_values(up{job="node"}, host)',
                    "refId": "PrometheusVariableQueryEditor",
                },
                "refresh": 2,
                "multi": True,
                "includeAll": True,
                "allValue": ".+",
                "current": {},
                "sort": 1,
            }
        )
    return {
        "uid": uid,
        "title": title,
        "tags": ["lazarus"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [{"title": "Lazarus", "type": "dashboards", "tags": ["lazarus"], "asDropdown": False}],
        "panels": _layout(panels),
    }


def _layout(panels: list[Panel]) -> list[dict[str, Any]]:
    out, x, y, row_height = [], 0, 0, 0
    for number, panel in enumerate(panels, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        options = panel.options
        out.append(
            {
                "id": number,
                "type": panel.kind,
                "title": panel.title,
                "description": panel.description,
                "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
                "datasource": DATASOURCE,
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "targets": [
                    {
                        "refId": chr(ord("A") + i),
                        "datasource": DATASOURCE,
                        "expr": q.expr,
                        "legendFormat": q.legend or "__auto",
                        "instant": options.get("instant", panel.kind == "stat"),
                        "range": not options.get("instant", panel.kind == "stat"),
                        **({"format": options["format"]} if "format" in options else {}),
                    }
                    for i, q in enumerate(panel.queries)
                ],
            }
        )
        x, row_height = x + panel.width, max(row_height, panel.height)
    return out


def dashboards() -> dict[str, dict[str, Any]]:
    return {"lazarus-overview.json": overview(), "lazarus-host.json": host_view()}


def queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel."""
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p["targets"]]


def render(board: dict[str, Any]) -> str:
    return json.dumps(board, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail when a committed dashboard is stale")
    args = parser.parse_args(argv)
    stale = []
    for name, board in dashboards().items():
        path: Path = DASHBOARDS_DIR / name
        text = render(board)
        if path.exists() and path.read_text() == text:
            continue
        if args.check:
            stale.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"stale (run python -m receiver.monitoring.dashboards): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
