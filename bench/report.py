"""The short table `make bench` prints: one block per benchmark, read from the JSON results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def table(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Lazarus benchmarks: nproc {m['nproc']}, Python {m['python']}, "
        f"load {' '.join(f'{x:.2f}' for x in m['loadavg'])}, commit {(m['git_commit'] or '?')[:10]}, "
        f"{results['duration_s']:.0f} s in all",
    ]
    render = {
        "intake": _intake,
        "lab_scale": _lab_scale,
        "recovery": _recovery,
        "ipmi": _ipmi,
        "placement": _placement,
    }
    for name, bench in results["benchmarks"].items():
        lines.append("")
        if not bench["ok"]:
            lines.append(f"{name}: FAILED after {bench['duration_s']:.1f} s: {bench['error']}")
            continue
        lines += render[name](bench)
    return "\n".join(lines)


def _grid(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [list(header)] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _intake(bench: dict[str, Any]) -> list[str]:
    p = bench["parameters"]
    title = (
        f"1. Webhook intake: gunicorn {p['gunicorn_workers']} sync workers, redis-server "
        f"{p['redis_version']}, no RQ worker; {p['rounds']} interleaved rounds x "
        f"{p['requests_per_round']} requests"
    )
    rows = [
        [
            s["kind"],
            s["clients"],
            s["n"],
            s["p50_ms"],
            s["p95_ms"],
            s["p99_ms"],
            s["max_ms"],
            s["throughput_rps"],
            s["p50_over_healthz"],
            s["p99_over_healthz"],
            s["p99_over_target"],
            s["receiver_cpu_ms_per_request"],
            s["redis_commands_per_request"],
        ]
        for s in bench["series"]
    ]
    header = [
        "kind",
        "clients",
        "n",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "req/s",
        "p50/healthz",
        "p99/healthz",
        "p99/1s",
        "cpu ms/req",
        "redis cmds",
    ]
    return [title, *_grid(header, rows)]


def _lab_scale(bench: dict[str, Any]) -> list[str]:
    big, small = bench["labs"]["big"], bench["labs"]["small"]
    r = bench["ratios_big_over_small"]
    title = (
        f"2. Lab scale: {big['hosts']} hosts / {big['servers']} servers / {big['bmcs']} BMCs beside "
        f"{small['hosts']} hosts / {small['servers']} servers; {bench['parameters']['queries_per_endpoint']} "
        "queries each, alternating"
    )
    rows: list[list[Any]] = [
        ["start s", big["start_s"], small["start_s"], r["start_s"]],
        [
            "RSS MiB",
            big["memory_after_start"]["rss_kib"] / 1024,
            small["memory_after_start"]["rss_kib"] / 1024,
            r["rss"],
        ],
        ["idle CPU %", big["idle_cpu_fraction"] * 100, small["idle_cpu_fraction"] * 100, None],
    ]
    for endpoint, summary in big["endpoints"].items():
        other = small["endpoints"][endpoint]
        rows.append([f"{endpoint} p50 ms", summary["p50_ms"], other["p50_ms"], r[f"{endpoint}_p50"]])
        rows.append([f"{endpoint} p99 ms", summary["p99_ms"], other["p99_ms"], None])
    return [title, *_grid(["", "big", "small", "big/small"], rows)]


def _recovery(bench: dict[str, Any]) -> list[str]:
    p = bench["parameters"]
    title = (
        f"3. Host recovery on the stack: evacuate_delay {p['evacuate_delay_s']} s, concurrency "
        f"{p['evacuation_concurrency']}, polls {p['evacuation_poll_interval_s']} s; median of "
        f"{p['repeats']} runs (seconds)"
    )
    header = [
        "N",
        "wall",
        "min-max",
        "answer ms",
        "pickup",
        "check",
        "plan",
        "fence",
        "nova",
        "evacuate",
        "ideal",
        "evac/ideal",
        "fence, every run",
    ]
    rows = []
    for s in bench["summary"]:
        ph = s["phases_s_median"]
        rows.append(
            [
                s["instances"],
                s["wall_s_median"],
                f"{s['wall_s_min']:.2f}-{s['wall_s_max']:.2f}",
                s["webhook_answer_ms_median"],
                ph["pickup"],
                ph["check"],
                ph["plan"],
                ph["fence"],
                ph["nova"],
                ph["evacuate"],
                s["evacuate_ideal_s"],
                s["evacuate_over_ideal_median"],
                " ".join(f"{f:.2f}" for f in s["fence_s_all"]),
            ]
        )
    return [title, *_grid(header, rows)]


def _ipmi(bench: dict[str, Any]) -> list[str]:
    p = bench["parameters"]
    title = (
        f"4. IPMI calls as the fence makes them (read, off, read back) x {p['cycles']}; "
        f"slow = over {p['slow_threshold_s']} s (a pyghmi retransmit)"
    )
    rows = [
        [name, b["n"], b["p50_ms"], b["p95_ms"], b["p99_ms"], b["max_ms"], b["slow_calls"]]
        for name, b in bench["bmcs"].items()
    ]
    lines = [title, *_grid(["BMC / client", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "slow"], rows)]
    if bench.get("pyghmi_child_over_ipmitool_p50") is not None:
        lines.append(
            f"IpmiPower p50 / ipmitool p50 (same BMC): {bench['pyghmi_child_over_ipmitool_p50']:.1f}"
        )
    return lines


def _placement(bench: dict[str, Any]) -> list[str]:
    sizes = [f"{n}x{t}" for n, t in bench["parameters"]["sizes"]]
    p = bench["parameters"]
    title = (
        f"capacity plan (selection + placement, pure; instances x hosts, {p['spares']} spares), "
        f"median of {p['repeats']}; one large plan peaks at {bench['large_plan_peak_kib']:.0f} KiB"
    )
    rows = [
        [m["method"], *(m["ms_median"][s] for s in sizes), m["large_over_small"], m["work_ratio"]]
        for m in bench["methods"]
    ]
    return [title, *_grid(["method", *(f"{s} ms" for s in sizes), "large/small", "work ratio"], rows)]
