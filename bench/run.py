"""`make bench`: run the benchmarks, write bench.json, print a short table.

    python -m bench.run --out bench-results/ [--only intake,lab_scale,recovery,ipmi,placement] [--quick]

Every benchmark starts its own processes (redis-server, the lab, gunicorn, RQ workers) on free
ports under a temporary work directory, kept when something fails. Timings are reported, never
judged: the exit status is non-zero only when a benchmark could not run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import intake, ipmi, lab_scale, placement, recovery
from bench.machine import machine
from bench.report import table

Benchmark = Callable[[Path], dict[str, Any]]


def benchmarks(quick: bool) -> dict[str, Benchmark]:
    if quick:  # a smoke run: same code paths, fewer samples
        return {
            "intake": lambda d: intake.run(d, intake.IntakeParams(rounds=2, batch=50, warmup=10)),
            "lab_scale": lambda d: lab_scale.run(d, lab_scale.LabScaleParams(queries=20, idle_window_s=1)),
            "recovery": lambda d: recovery.run(d, recovery.RecoveryParams(repeats=1)),
            "ipmi": lambda d: ipmi.run(d, ipmi.IpmiParams(cycles=5)),
            "placement": lambda d: placement.run(d, placement.PlacementParams(repeats=3)),
        }
    return {
        "intake": lambda d: intake.run(d, intake.IntakeParams()),
        "lab_scale": lambda d: lab_scale.run(d, lab_scale.LabScaleParams()),
        "recovery": lambda d: recovery.run(d, recovery.RecoveryParams()),
        "ipmi": lambda d: ipmi.run(d, ipmi.IpmiParams()),
        "placement": lambda d: placement.run(d, placement.PlacementParams()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="where bench.json goes")
    parser.add_argument("--only", help="comma-separated benchmark names (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer samples: a smoke run")
    parser.add_argument(
        "--workdir", type=Path, help="processes' work directories and logs (default: temporary)"
    )
    args = parser.parse_args(argv)
    available = benchmarks(args.quick)
    chosen = list(available) if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in available]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(available)}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lazarus-bench-"))
    began = time.perf_counter()
    results: dict[str, Any] = {
        "version": 1,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "benchmarks": {},
    }
    for name in chosen:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        results["benchmarks"][name] = _run_one(name, available[name], workdir / name)
    results["duration_s"] = time.perf_counter() - began
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    text = table(results)
    (args.out / "bench.txt").write_text(text + "\n")
    print(text)
    failed = [n for n, b in results["benchmarks"].items() if not b["ok"]]
    if failed:
        print(f"\nbench: {', '.join(failed)} could not run; logs kept in {workdir}", file=sys.stderr)
        return 1
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nresults: {args.out / 'bench.json'}")
    return 0


def _run_one(name: str, benchmark: Benchmark, workdir: Path) -> dict[str, Any]:
    began = time.perf_counter()
    try:
        result = benchmark(workdir)
    except Exception as error:  # noqa: BLE001 - the process boundary: record it, run the others, exit 1
        traceback.print_exc()
        return {
            "ok": False,
            "error": f"{type(error).__name__}: {error}",
            "duration_s": time.perf_counter() - began,
            "machine": machine(),
        }
    return {"ok": True, "duration_s": time.perf_counter() - began, "machine": machine(), **result}


if __name__ == "__main__":
    sys.exit(main())
