"""Flap quarantine: a host fenced again and again is not healed by putting it back again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class FlapVerdict:
    quarantined: bool
    message: str


def judge_flap(fenced_at: list[datetime], now: datetime, window_s: float, max_recoveries: int) -> FlapVerdict:
    """Quarantined when the host was recovered `max_recoveries` times or more within the window."""
    recent = [t for t in fenced_at if now - t <= timedelta(seconds=window_s)]
    if len(recent) >= max_recoveries:
        return FlapVerdict(
            True,
            f"recovered {len(recent)} times in the last {window_s:.0f}s (limit {max_recoveries - 1}): "
            "quarantined; reinstate it only with --accept-flapping after finding the cause",
        )
    return FlapVerdict(False, f"recovered {len(recent)} times in the last {window_s:.0f}s")
