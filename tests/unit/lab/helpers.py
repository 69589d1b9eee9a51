"""Helpers for the lab's unit tests."""

from __future__ import annotations

from receiver.lab.cloud import Cloud
from receiver.lab.model import Condition


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fence(cloud: Cloud, host: str) -> None:
    """Force the host's service down and disable it, as a recovery does."""
    cloud.update_service(
        cloud.hosts[host].service_id, forced_down=True, status="disabled", disabled_reason="x"
    )


def elapse(cloud: Cloud, clock: FakeClock, seconds: float) -> int:
    """Run what is due now (e.g. the conductor's part of an evacuation), let `seconds` pass,
    then run what is due then; returns how many operations ran."""
    ran = cloud.tick()
    clock.advance(seconds)
    return ran + cloud.tick()


def condition(cloud: Cloud, host: str) -> Condition:
    """The host's condition, read afresh (so a type checker does not carry an earlier one over)."""
    return cloud.hosts[host].condition
