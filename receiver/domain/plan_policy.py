"""What a segment's capacity policy makes of a plan that falls short. Pure functions."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from receiver.domain.capacity import plural
from receiver.domain.placement import CAPACITY_REASONS, ROUTES, Assignment, Plan, Route, Unplaced
from receiver.domain.reasons import Reason


class CapacityPolicy(enum.StrEnum):
    """A segment's answer to a plan that falls short."""

    PROCEED = "proceed"  # move everything; what the plan could not place is still tried where Nova may choose
    PROCEED_WITH_WHAT_FITS = "proceed_with_what_fits"  # move what the plan placed; record the rest
    HOLD_FOR_APPROVAL = "hold_for_approval"  # move nothing; record the plan and stop until a human decides


class PlanAction(enum.StrEnum):
    PROCEED = "proceed"
    PROCEED_WITH_WHAT_FITS = "proceed_with_what_fits"
    HOLD = "hold"


@dataclass(frozen=True)
class PlanVerdict:
    action: PlanAction
    reason: Reason | None
    message: str
    moves: tuple[Assignment, ...] = ()  # what to evacuate, in the move order
    left_out: tuple[Unplaced, ...] = ()  # recorded with the reason, never attempted


def judge_plan(plan: Plan, policy: CapacityPolicy) -> PlanVerdict:
    """What the segment's policy makes of the plan.

    Only a shortage of room is the policy's business: instances that cannot be evacuated at
    all (passthrough, local disk, NUMA) are left out whatever the policy, and a plan whose
    only gaps are those proceeds. Under `proceed`, what found no room is still sent to Nova's
    scheduler when the method uses it (its view may be fresher than ours); a method of spares
    only has nowhere to send it.
    """
    short = plan.short
    non_evacuable = tuple(u for u in plan.cannot_place if u.reason not in CAPACITY_REASONS)
    if not short:
        return PlanVerdict(PlanAction.PROCEED, None, plan.summary(), plan.assignments, non_evacuable)
    if policy is CapacityPolicy.HOLD_FOR_APPROVAL:
        message = f"held for approval: {plan.summary()}"
        return PlanVerdict(PlanAction.HOLD, Reason.CAPACITY_HOLD, message, (), plan.cannot_place)
    count = plural(len(short), "instance")
    if policy is CapacityPolicy.PROCEED_WITH_WHAT_FITS:
        message = f"moving what fits: {plan.summary()}"
        action = PlanAction.PROCEED_WITH_WHAT_FITS
        return PlanVerdict(action, Reason.INSUFFICIENT_CAPACITY, message, plan.assignments, plan.cannot_place)
    if Route.SCHEDULER not in ROUTES[plan.method]:
        message = f"proceeding; the spares have no room for {count}: {plan.summary()}"
        return PlanVerdict(
            PlanAction.PROCEED, Reason.INSUFFICIENT_CAPACITY, message, plan.assignments, plan.cannot_place
        )
    tried = {u.instance.id: Assignment(u.instance, None, Route.SCHEDULER) for u in short}
    planned = {a.instance.id: a for a in plan.assignments}
    moves = tuple(planned.get(i) or tried[i] for i in plan.order if i in planned or i in tried)
    message = f"proceeding; {count} without room left to Nova's scheduler: {plan.summary()}"
    return PlanVerdict(PlanAction.PROCEED, Reason.INSUFFICIENT_CAPACITY, message, moves, non_evacuable)
