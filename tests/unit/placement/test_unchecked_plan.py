"""The plan without hypervisor figures (Nova's policy refuses the listing): every method's
first route that exists, no room checked, what the selection leaves out still left out."""

from __future__ import annotations

import pytest

from receiver.domain.placement import Plan, Route, plan_unchecked
from receiver.domain.plan_policy import CapacityPolicy, PlanAction, judge_plan
from receiver.domain.reasons import Reason
from receiver.domain.selection import SelectionPolicy, select_instances
from receiver.inventory import RecoveryMethod
from tests.unit.placement.builders import BFV, IMAGE_ONLY, flavor, server

pytestmark = pytest.mark.unit

WHY = "Nova refused to list the hypervisors: 403 Policy doesn't allow it; request req-1"
# A big pinned instance: with figures it might be ruled out; without them Nova decides.
INSTANCES = [
    server("a", priority="5"),
    server("pinned", fl=flavor(64, 262144, hw__cpu_policy="dedicated")),
    server("gpu", fl=flavor(pci_passthrough__alias="gpu:1")),
    server("local"),
    server("no-ha", ha=False),
]
DISKS = {"a": BFV, "pinned": BFV, "gpu": BFV, "local": IMAGE_ONLY, "no-ha": BFV}


def unchecked(method: RecoveryMethod, spares: str) -> Plan:
    selection = select_instances(
        INSTANCES, SelectionPolicy(), failed_host="dead-1", disks=DISKS, targets=None
    )
    return plan_unchecked(selection, method, spares.split(), WHY)


@pytest.mark.parametrize(
    ("method", "spares", "target", "route", "used"),
    [
        (RecoveryMethod.AUTO, "s1 s2", None, Route.SCHEDULER, ()),
        (RecoveryMethod.AUTO_PRIORITY, "s1 s2", None, Route.SCHEDULER, ()),
        # The first free spare takes everything (its room unknown); a failed move goes on to the next.
        (RecoveryMethod.RESERVED_HOST, "s1 s2", "s1", Route.RESERVED_HOST, ("s1",)),
        (RecoveryMethod.RH_PRIORITY, "s2 s1", "s2", Route.RESERVED_HOST, ("s2",)),
        (RecoveryMethod.RH_PRIORITY, "", None, Route.SCHEDULER, ()),
        (
            RecoveryMethod.RESERVED_HOST,
            "dead-1 s1",
            "s1",
            Route.RESERVED_HOST,
            ("s1",),
        ),  # never the dead host
    ],
)
def test_each_method_takes_its_first_route_that_exists(
    method: RecoveryMethod, spares: str, target: str | None, route: Route, used: tuple[str, ...]
) -> None:
    plan = unchecked(method, spares)
    assert [(a.instance.id, a.target, a.route) for a in plan.assignments] == [
        ("a", target, route),
        ("pinned", target, route),
    ]
    assert plan.spares_used == used
    assert [(u.instance.id, u.reason) for u in plan.cannot_place] == [
        ("gpu", Reason.PCI_PASSTHROUGH),
        ("local", Reason.LOCAL_DISK),
    ]
    assert [(u.instance.id, u.reason) for u in plan.not_selected] == [("no-ha", Reason.NOT_HA_ENABLED)]
    assert not plan.room_checked
    assert plan.notes[0] == f"no hypervisor figures ({WHY}): room not checked, Nova decides"
    assert plan.summary().endswith("room not checked (no hypervisor figures)")
    # Nothing is short of room that the plan could know of: every policy proceeds.
    for policy in CapacityPolicy:
        assert judge_plan(plan, policy).action is PlanAction.PROCEED


def test_reserved_host_without_a_free_spare_places_nothing_and_the_policy_decides() -> None:
    plan = unchecked(RecoveryMethod.RESERVED_HOST, "")
    assert plan.assignments == ()
    assert [(u.instance.id, u.reason) for u in plan.short] == [
        ("a", Reason.NO_FREE_SPARE),
        ("pinned", Reason.NO_FREE_SPARE),
    ]
    assert "no usable reserved spare in the segment" in plan.notes
    assert judge_plan(plan, CapacityPolicy.HOLD_FOR_APPROVAL).action is PlanAction.HOLD


def test_the_unchecked_plan_survives_the_record() -> None:
    plan = unchecked(RecoveryMethod.RH_PRIORITY, "s1")
    assert plan.to_dict()["room_checked"] is False
    assert Plan.from_dict(plan.to_dict()) == plan
    # Records written before the field existed read as checked.
    older = {k: v for k, v in plan.to_dict().items() if k != "room_checked"}
    assert Plan.from_dict(older).room_checked
