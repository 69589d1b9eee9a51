"""The segment's policy on a plan: proceed, proceed with what fits, or hold for approval."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from receiver.domain.capacity import Target
from receiver.domain.placement import Route, plan_placement
from receiver.domain.plan_policy import CapacityPolicy, PlanAction, judge_plan
from receiver.domain.reasons import Reason
from receiver.inventory import RecoveryMethod
from tests.unit.placement.builders import flavor, host, select, server, spare

pytestmark = pytest.mark.unit

PROCEED, WHAT_FITS, HOLD = CapacityPolicy
INSTANCES = [
    server("a", priority="2", fl=flavor(4, 8192)),
    server("b", fl=flavor(4, 8192)),
    server("gpu", fl=flavor(pci_passthrough__alias="gpu:1")),
    server("c", fl=flavor(4, 8192)),
]
ROOMY: list[Target] = [host("h1", 16, 65536), spare("s1", 16, 65536)]
TIGHT: list[Target] = [host("h1", 4, 8192), spare("s1", 4, 8192)]


@dataclass(frozen=True)
class Case:
    targets: list[Target]
    method: RecoveryMethod
    policy: CapacityPolicy
    action: PlanAction
    moves: str  # "instance:target", "*" for the scheduler
    left_out: str
    reason: Reason | None = Reason.INSUFFICIENT_CAPACITY


AUTO, RH, AUTO_PRIORITY, RH_PRIORITY = RecoveryMethod
GO, PARTIAL, HELD = PlanAction
CASES = {
    # Everything evacuable fits: every policy proceeds; the passthrough instance is left out regardless.
    "fits, proceed": Case(ROOMY, AUTO, PROCEED, GO, "a:* b:* c:*", "gpu", None),
    "fits, what fits": Case(ROOMY, AUTO, WHAT_FITS, GO, "a:* b:* c:*", "gpu", None),
    "fits, hold": Case(ROOMY, AUTO, HOLD, GO, "a:* b:* c:*", "gpu", None),
    "fits on the spare, hold": Case(ROOMY, RH, HOLD, GO, "a:s1 b:s1 c:s1", "gpu", None),
    # Short: proceed still sends what found no room to Nova's scheduler (its view may be fresher) ...
    "short, proceed": Case(TIGHT, AUTO, PROCEED, GO, "a:* b:* c:*", "gpu"),
    "short, rh_priority, proceed": Case(TIGHT, RH_PRIORITY, PROCEED, GO, "a:s1 b:* c:*", "gpu"),
    # ... but a method of spares only has nowhere to send it.
    "short, reserved_host, proceed": Case(TIGHT, RH, PROCEED, GO, "a:s1", "gpu b c"),
    # proceed with what fits: only what the plan placed; the rest is recorded, never attempted.
    "short, what fits": Case(TIGHT, AUTO, WHAT_FITS, PARTIAL, "a:*", "gpu b c"),
    "short, auto_priority, what fits": Case(TIGHT, AUTO_PRIORITY, WHAT_FITS, PARTIAL, "a:* b:s1", "gpu c"),
    # hold: nothing moves; the plan is recorded and the recovery stops.
    "short, hold": Case(TIGHT, AUTO, HOLD, HELD, "", "gpu b c", Reason.CAPACITY_HOLD),
    "short, reserved_host, hold": Case(TIGHT, RH, HOLD, HELD, "", "gpu b c", Reason.CAPACITY_HOLD),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_policy_on_the_plan(case: Case) -> None:
    plan = plan_placement(select(INSTANCES, case.targets), case.targets, case.method, ["s1"])
    verdict = judge_plan(plan, case.policy)
    assert (verdict.action, verdict.reason) == (case.action, case.reason)
    assert [f"{m.instance.id}:{m.target or '*'}" for m in verdict.moves] == case.moves.split()
    for move in verdict.moves:
        assert move.route is (Route.SCHEDULER if move.target is None else Route.RESERVED_HOST)
    assert [u.instance.id for u in verdict.left_out] == case.left_out.split()
    assert plan.summary() in verdict.message


def test_the_messages() -> None:
    plan = plan_placement(select(INSTANCES, TIGHT), TIGHT, RecoveryMethod.AUTO, ["s1"])
    summary = (
        "auto: 1 of 4 placed; 1 to the scheduler; 2 without room (short 8 vCPU, 16384 MB RAM); "
        "1 cannot be evacuated"
    )
    assert plan.summary() == summary
    assert judge_plan(plan, PROCEED).message == (
        f"proceeding; 2 instances without room left to Nova's scheduler: {summary}"
    )
    assert judge_plan(plan, WHAT_FITS).message == f"moving what fits: {summary}"
    assert judge_plan(plan, HOLD).message == f"held for approval: {summary}"
    spares_only = plan_placement(select(INSTANCES, TIGHT), TIGHT, RecoveryMethod.RESERVED_HOST, ["s1"])
    assert judge_plan(spares_only, PROCEED).message == (
        f"proceeding; the spares have no room for 2 instances: {spares_only.summary()}"
    )


def test_an_empty_host_proceeds_with_nothing_to_do() -> None:
    plan = plan_placement(select([]), ROOMY, RecoveryMethod.AUTO)
    verdict = judge_plan(plan, HOLD)
    assert (verdict.action, verdict.reason, verdict.moves, verdict.left_out) == (
        PlanAction.PROCEED,
        None,
        (),
        (),
    )
    assert verdict.message == "auto: 0 of 0 placed"
