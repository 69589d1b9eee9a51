"""When to try a failed delivery again: a pure decision, with its reason."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from receiver.notify.result import NotifyResult


class Verdict(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retrying"
    GIVE_UP = "failed"


@dataclass(frozen=True)
class RetryPolicy:
    backoff_s: tuple[float, ...]
    max_attempts: int
    max_age_s: float


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    delay_s: float = 0.0
    why: str = ""


def decide(policy: RetryPolicy, result: NotifyResult, attempts: int, age_s: float) -> Decision:
    """After attempt number `attempts` (1-based) of a message published `age_s` ago.

    The endpoint's Retry-After wins over our backoff: retrying sooner would be refused again
    and counts against the sender. A wait that would outlive `max_age_s` means give up now.
    """
    if result.ok:
        return Decision(Verdict.DELIVERED)
    if not result.retryable:
        return Decision(Verdict.GIVE_UP, why=f"{result.reason} is not worth retrying")
    if attempts >= policy.max_attempts:
        return Decision(Verdict.GIVE_UP, why=f"{attempts} attempts made")
    backoff = policy.backoff_s[min(attempts, len(policy.backoff_s)) - 1]
    delay = result.retry_after_s if result.retry_after_s is not None else backoff
    if age_s + delay > policy.max_age_s:
        return Decision(Verdict.GIVE_UP, why=f"a retry in {delay:g}s would exceed max_age_s")
    return Decision(Verdict.RETRY, delay_s=delay)
