"""The storm guard: too many hosts failing at once means the observer is broken, not the cloud.

Safety rule 6: when it trips, fence nothing, page, and hold for a cooldown. Signals, all
counted cluster-wide:
- hosts down in the segment and in the cloud, as a share: open host recoveries plus hosts
  fenced and not yet reinstated (a fenced host is still a missing host);
- fences within a window;
- a cliff: many host recoveries opened within a short span (a partition looks like this);
- a hold set by an earlier trip, until its cooldown ends.
A tiny segment must still recover a single host: one down host is always allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from receiver.domain.reasons import Reason


@dataclass(frozen=True)
class StormPolicy:
    max_fences: int = 3  # fences allowed within `window_s`, cluster-wide
    window_s: float = 900.0
    max_down_share: float = 0.34  # down hosts (open recoveries + fenced, not reinstated) as a share
    cliff_count: int = 3  # this many host recoveries opened within `cliff_window_s` ...
    cliff_window_s: float = 60.0  # ... is a cliff
    cooldown_s: float = 900.0  # after a trip, every host recovery is refused this long


@dataclass(frozen=True)
class Population:
    """Hosts down (including the one asking) out of all hosts, for one scope."""

    scope: str  # "segment rack-a" | "cloud"
    down: int
    total: int
    max_share: float | None = None  # this scope's own limit (a segment's setting), else the policy's


@dataclass(frozen=True)
class StormVerdict:
    allowed: bool
    reason: Reason | None
    message: str
    trips: bool = False  # a new trip: start the cooldown hold


def allowed_down(total: int, share: float) -> int:
    return max(1, math.floor(share * total))


def judge_storm(
    *,
    populations: list[Population],
    fences_in_window: int,
    opened_recently: int,
    held_until: datetime | None,
    now: datetime,
    policy: StormPolicy,
) -> StormVerdict:
    """Whether one more host may be fenced now. `populations` and `opened_recently` include
    the asking host; `fences_in_window` does not."""
    if held_until is not None and now < held_until:
        return StormVerdict(
            False, Reason.STORM_GUARD, f"storm guard holding until {held_until.isoformat()}: fencing nothing"
        )
    for population in populations:
        share = population.max_share or policy.max_down_share
        limit = allowed_down(population.total, share)
        if population.down > limit:
            return StormVerdict(
                False,
                Reason.STORM_GUARD,
                f"{population.down} of {population.total} hosts in the {population.scope} are down or fenced "
                f"(limit {limit}, {share:.0%}): the observer may be broken; fencing nothing",
                trips=True,
            )
    if opened_recently >= policy.cliff_count:
        return StormVerdict(
            False,
            Reason.STORM_GUARD,
            f"{opened_recently} hosts reported down within {policy.cliff_window_s:.0f}s (cliff at "
            f"{policy.cliff_count}): looks like a partition or a monitoring outage; fencing nothing",
            trips=True,
        )
    if fences_in_window >= policy.max_fences:
        return StormVerdict(
            False,
            Reason.STORM_GUARD,
            f"{fences_in_window} hosts fenced in the last {policy.window_s:.0f}s "
            f"(limit {policy.max_fences}): fencing nothing until the window passes",
        )
    summary = ", ".join(f"{p.down}/{p.total} down in the {p.scope}" for p in populations)
    return StormVerdict(True, None, f"{summary}; {fences_in_window} recent fences")
