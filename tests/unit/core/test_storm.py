"""The storm guard as a pure decision, including tiny segments, cliffs and the cooldown hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from receiver.domain.reasons import Reason
from receiver.domain.storm import Population, StormPolicy, judge_storm

pytestmark = pytest.mark.unit
POLICY = StormPolicy(max_fences=3, window_s=900, max_down_share=0.34, cliff_count=3, cliff_window_s=60)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def judge(segment: tuple[int, int], cloud: tuple[int, int], fences: int = 0, opened: int = 1,
          held: datetime | None = None) -> tuple[bool, bool]:  # fmt: skip
    verdict = judge_storm(
        populations=[Population("segment a", *segment), Population("cloud", *cloud)],
        fences_in_window=fences,
        opened_recently=opened,
        held_until=held,
        now=NOW,
        policy=POLICY,
    )
    assert verdict.reason is (None if verdict.allowed else Reason.STORM_GUARD)
    assert verdict.message
    return verdict.allowed, verdict.trips


@pytest.mark.parametrize(
    ("segment", "cloud", "allowed"),
    [
        ((1, 3), (1, 3), True),  # a tiny segment still recovers one host
        ((2, 3), (2, 3), False),  # 2 of 3 down: more likely the observer than the cloud
        ((1, 1), (1, 1), True),
        ((3, 10), (3, 10), True),  # 30 % of 10 is within 34 %
        ((4, 10), (4, 10), False),
        ((2, 3), (2, 100), False),  # a small segment trips even in a big cloud
        ((3, 10), (35, 100), False),  # the cloud trips even if the segment looks fine
    ],
)
def test_share_of_down_hosts(segment: tuple[int, int], cloud: tuple[int, int], allowed: bool) -> None:
    assert judge(segment, cloud) == (allowed, not allowed)


def test_fences_in_the_window() -> None:
    assert judge((1, 100), (1, 100), fences=2) == (True, False)
    assert judge((1, 100), (1, 100), fences=3) == (False, False)  # refuse, but no cooldown hold


def test_a_cliff_of_hosts_reported_down_at_once() -> None:
    assert judge((1, 100), (1, 100), opened=2) == (True, False)
    assert judge((1, 100), (1, 100), opened=3) == (False, True)


def test_the_cooldown_hold() -> None:
    assert judge((1, 100), (1, 100), held=NOW + timedelta(minutes=5)) == (False, False)
    assert judge((1, 100), (1, 100), held=NOW - timedelta(seconds=1)) == (True, False)


def test_a_segment_may_set_its_own_share() -> None:
    verdict = judge_storm(
        populations=[Population("segment tiny", 2, 3, max_share=0.7), Population("cloud", 2, 100)],
        fences_in_window=0, opened_recently=1, held_until=None, now=NOW, policy=POLICY,
    )  # fmt: skip
    assert verdict.allowed
