"""Latency summaries: percentiles, throughput and ratios (pure functions, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (the value below which `fraction` of the samples fall)."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def latency_summary(latencies_s: Sequence[float], wall_s: float | None = None) -> dict[str, Any]:
    """Milliseconds p50/p95/p99/max/mean, and requests per second over `wall_s` when given."""
    summary: dict[str, Any] = {
        "n": len(latencies_s),
        "p50_ms": percentile(latencies_s, 0.50) * 1000,
        "p95_ms": percentile(latencies_s, 0.95) * 1000,
        "p99_ms": percentile(latencies_s, 0.99) * 1000,
        "max_ms": max(latencies_s) * 1000,
        "mean_ms": sum(latencies_s) / len(latencies_s) * 1000,
    }
    if wall_s is not None:
        summary["wall_s"] = wall_s
        summary["throughput_rps"] = len(latencies_s) / wall_s if wall_s > 0 else math.inf
    return summary


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is zero (JSON has no infinity)."""
    return numerator / denominator if denominator else None
