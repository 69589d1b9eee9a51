"""The storm guard as a pure decision, including tiny clouds."""

from __future__ import annotations

import pytest

from receiver.domain.reasons import Reason
from receiver.domain.storm import StormPolicy, judge_storm

pytestmark = pytest.mark.unit
POLICY = StormPolicy(max_fences=3, window_s=900, max_down_share=0.34)


@pytest.mark.parametrize(
    ("open_recoveries", "hosts", "fences", "allowed"),
    [
        (1, 3, 0, True),  # a tiny cloud still recovers one host
        (2, 3, 0, False),  # 2 of 3 down: more likely the observer than the cloud
        (1, 1, 0, True),
        (3, 10, 0, True),  # 30 % of 10: within 34 %
        (4, 10, 0, False),
        (1, 100, 2, True),
        (1, 100, 3, False),  # three fences already in the window
        (30, 100, 0, True),
        (35, 100, 0, False),
    ],
)
def test_judge_storm(open_recoveries: int, hosts: int, fences: int, allowed: bool) -> None:
    verdict = judge_storm(
        open_host_recoveries=open_recoveries, inventory_hosts=hosts, fences_in_window=fences, policy=POLICY
    )
    assert verdict.allowed is allowed
    assert verdict.reason is (None if allowed else Reason.STORM_GUARD)
    assert verdict.message
