"""Re-verification just before fencing: do independent signals still say the host is down?

The alert may be minutes old, or may come from an observer that lost sight of a healthy
host. Fencing a live host is the failure operators fear most, so each signal is asked again
and the record says which agreed (k of n).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from receiver.domain.model import ComputeService
from receiver.domain.reasons import Reason


@dataclass(frozen=True)
class Signal:
    name: str  # "nova" | "prometheus"
    says_down: bool | None  # None: the signal could not be read
    detail: str


@dataclass(frozen=True)
class VerifyVerdict:
    proceed: bool
    agreed: int
    asked: int
    reason: Reason | None
    message: str


def nova_signal(service: ComputeService, now: datetime, heartbeat_stale_s: float) -> Signal:
    """Nova agrees when it reports the service down, or its last heartbeat is older than the limit."""
    if service.state == "down":
        return Signal("nova", True, f"Nova reports nova-compute on {service.host} down")
    if service.updated_at is not None and now - service.updated_at > timedelta(seconds=heartbeat_stale_s):
        age = (now - service.updated_at).total_seconds()
        return Signal("nova", True, f"last heartbeat from {service.host} {age:.0f}s ago")
    return Signal("nova", False, f"Nova reports nova-compute on {service.host} up with a fresh heartbeat")


def judge_signals(signals: list[Signal], min_agree: int | None) -> VerifyVerdict:
    """`min_agree` None: every signal asked must agree (an unreadable one does not)."""
    agreed = sum(1 for s in signals if s.says_down)
    needed = len(signals) if min_agree is None else min(min_agree, len(signals))
    summary = "; ".join(
        f"{s.name}: {'down' if s.says_down else ('unknown' if s.says_down is None else 'UP')} ({s.detail})"
        for s in signals
    )
    if agreed >= needed:
        return VerifyVerdict(
            True, agreed, len(signals), None, f"{agreed} of {len(signals)} signals agree: {summary}"
        )
    return VerifyVerdict(
        False,
        agreed,
        len(signals),
        Reason.NOT_VERIFIED,
        f"only {agreed} of {len(signals)} signals say the host is down (need {needed}): {summary}",
    )
