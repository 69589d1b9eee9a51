"""The storm guard: too many hosts failing at once means the observer is broken, not the cloud.

Safety rule 6: when it trips, fence nothing and page. Two signals, both counted cluster-wide:
hosts under recovery right now (as a share of the inventory), and fences within a window.
A tiny cloud must still recover a single host: one recovery at a time is always allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from receiver.domain.reasons import Reason


@dataclass(frozen=True)
class StormPolicy:
    max_fences: int = 3  # fences allowed within `window_s`, cluster-wide
    window_s: float = 900.0
    max_down_share: float = 0.34  # host recoveries open at once, as a share of inventory hosts


@dataclass(frozen=True)
class StormVerdict:
    allowed: bool
    reason: Reason | None
    message: str


def judge_storm(
    *, open_host_recoveries: int, inventory_hosts: int, fences_in_window: int, policy: StormPolicy
) -> StormVerdict:
    """Whether one more host may be fenced now. `open_host_recoveries` includes this one;
    `fences_in_window` does not."""
    allowed_open = max(1, math.floor(policy.max_down_share * inventory_hosts))
    if open_host_recoveries > allowed_open:
        return StormVerdict(
            False,
            Reason.STORM_GUARD,
            f"{open_host_recoveries} of {inventory_hosts} hosts are under recovery at once "
            f"(limit {allowed_open}, {policy.max_down_share:.0%}): the observer may be broken; "
            "fencing nothing",
        )
    if fences_in_window >= policy.max_fences:
        return StormVerdict(
            False,
            Reason.STORM_GUARD,
            f"{fences_in_window} hosts fenced in the last {policy.window_s:.0f}s "
            f"(limit {policy.max_fences}): fencing nothing until the window passes",
        )
    return StormVerdict(
        True, None, f"{open_host_recoveries} host recoveries open, {fences_in_window} recent fences"
    )
