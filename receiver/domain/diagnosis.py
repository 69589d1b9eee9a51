"""Why a host recovery did not move everything, in the causes operators sort by hand. Pure.

Today an operator reads a failed notification beside `openstack hypervisor list` and sorts
it into one of four causes; the diagnosis does it at a glance:

- a fencing gap: the host was never proven off, so nothing moved (no evacuation without
  the BMC reading OFF);
- not enough capacity: which resource and how short (from the plan), or Nova's own
  "No valid host" with its request id;
- instances that cannot move: PCI passthrough, local disk, NUMA (recorded up front);
- a Nova error: its message and request id, to find it in Nova's logs.

And `spares_left`: a segment whose recovery method needs a reserved spare and has no free
one, reported before the night it is needed.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from receiver.domain.capacity import plural, shortfall_text
from receiver.domain.placement import ROUTES, InstanceRef, Plan, Route, Unplaced
from receiver.domain.reasons import Reason
from receiver.domain.record import MoveStatus, VMove

if TYPE_CHECKING:
    from receiver.inventory import RecoveryMethod

# Nova's request ids (``req-<uuid>``), as our error messages carry them.
REQUEST_ID = re.compile(r"req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
# NoValidHost: "No valid host was found. There are not enough hosts available."
_NO_VALID_HOST = re.compile(r"no ?valid ?host", re.IGNORECASE)
# The record's reasons that mean the host was never proven off.
FENCING_GAP_REASONS = frozenset(
    {
        Reason.BMC_UNREACHABLE,
        Reason.BMC_REFUSED,
        Reason.POWER_STILL_ON,
        Reason.NO_FENCE_METHOD,
        Reason.FENCE_CONFIG_INVALID,
    }
)
_CANNOT_MOVE = {
    Reason.PCI_PASSTHROUGH: "PCI passthrough",
    Reason.LOCAL_DISK: "local disk without shared storage",
    Reason.NUMA_UNSATISFIABLE: "pinned CPUs / NUMA no target offers",
}
_NAMES_SHOWN = 5


class Cause(enum.StrEnum):
    FENCING_GAP = "fencing_gap"
    CAPACITY = "capacity"
    CANNOT_MOVE = "cannot_move"
    NOVA_ERROR = "nova_error"


@dataclass(frozen=True)
class Outcome:
    """How one instance's move ended."""

    instance: InstanceRef
    status: MoveStatus
    dest_host: str | None = None
    message: str = ""  # Nova's error or our judgement
    request_id: str | None = None


def outcomes_from_vmoves(moves: Sequence[VMove]) -> tuple[Outcome, ...]:
    """The record's moves as outcomes; the request id is read from the message, where our
    Nova errors put it."""
    outcomes = []
    for move in moves:
        found = REQUEST_ID.search(move.message)
        ref = InstanceRef(move.instance_uuid, move.instance_name)
        request_id = found.group(0) if found else move.request_id
        outcomes.append(Outcome(ref, move.status, move.dest_host, move.message, request_id))
    return tuple(outcomes)


@dataclass(frozen=True)
class Finding:
    cause: Cause
    message: str
    instances: tuple[str, ...] = ()  # instance ids concerned
    request_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Diagnosis:
    summary: str  # one line, for notifier messages and list views
    findings: tuple[Finding, ...] = ()  # most fundamental first

    @property
    def causes(self) -> tuple[Cause, ...]:
        return tuple(f.cause for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "findings": [
                {
                    "cause": f.cause.value,
                    "message": f.message,
                    "instances": list(f.instances),
                    "request_ids": list(f.request_ids),
                }
                for f in self.findings
            ],
        }


def diagnose(
    *,
    host: str,
    plan: Plan | None,
    outcomes: Sequence[Outcome],
    stopped_reason: str | None = None,
    stopped_message: str = "",
) -> Diagnosis:
    """Sort a finished or failed host recovery's gaps into causes.

    `stopped_reason` / `stopped_message` are the record's reason and message when it ended
    early (a fence that failed stops everything).
    """
    by_id = {o.instance.id: o for o in outcomes}
    findings = [
        f
        for f in (
            _fencing_gap(host, stopped_reason, stopped_message),
            _capacity(plan, outcomes, by_id),
            _cannot_move(plan),
            _nova_errors(outcomes),
        )
        if f is not None
    ]
    total = len(plan.order) + len(plan.cannot_place) - len(plan.short) if plan else len(outcomes)
    moved = sum(1 for o in outcomes if o.status is MoveStatus.SUCCEEDED)
    head = f"{host}: {moved} of {plural(total, 'instance')} moved"
    if not findings:
        if moved == total:
            return Diagnosis(
                f"{host}: all {plural(total, 'instance')} moved" if total else f"{host}: nothing to move"
            )
        return Diagnosis(f"{head}, none failed (the others no longer exist)")
    return Diagnosis("; ".join([head, *(f.message for f in findings)]), tuple(findings))


def _fencing_gap(host: str, reason: str | None, message: str) -> Finding | None:
    if reason not in FENCING_GAP_REASONS:
        return None
    detail = f"{reason}: {message}" if message else str(reason)
    return Finding(
        Cause.FENCING_GAP, f"fencing gap: {host} was never proven off ({detail}); nothing was evacuated"
    )


def _capacity(plan: Plan | None, outcomes: Sequence[Outcome], by_id: dict[str, Outcome]) -> Finding | None:
    parts: list[str] = []
    ids: list[str] = []
    # A planned shortage that Nova's scheduler overcame (policy `proceed`) is no gap.
    short = [u for u in (plan.short if plan else ()) if _not_moved(by_id.get(u.instance.id))]
    no_spare = [u for u in short if u.reason is Reason.NO_FREE_SPARE]
    no_room = [u for u in short if u.reason is Reason.INSUFFICIENT_CAPACITY]
    unknown = [u for u in short if u.reason is Reason.FLAVOR_UNKNOWN]
    if no_room and plan is not None:
        count = plural(len(no_room), "instance")
        parts.append(f"{count} did not fit ({_names(no_room)}); the plan: {shortfall_text(plan.shortfall)}")
    if no_spare:
        parts.append(f"no free reserved spare for {plural(len(no_spare), 'instance')} ({_names(no_spare)})")
    if unknown:
        parts.append(f"{plural(len(unknown), 'instance')} of unknown size ({_names(unknown)})")
    ids += [u.instance.id for u in short]
    refused = [o for o in outcomes if o.status is MoveStatus.FAILED and _NO_VALID_HOST.search(o.message)]
    if refused:
        planned = {a.instance.id for a in plan.assignments} if plan else set()
        text = f"Nova found no valid host for {_names(refused)}{_request_ids(refused)}"
        if plan is not None and not plan.room_checked:
            text += "; the plan could not check room (Nova gave no hypervisor figures)"
        elif any(o.instance.id in planned for o in refused):
            text += (
                ", although the plan found room: stale figures, or Nova's filters (aggregates, zones, traits)"
            )
        parts.append(text)
        ids += [o.instance.id for o in refused if o.instance.id not in ids]
    if not parts:
        return None
    request_ids = tuple(o.request_id for o in refused if o.request_id)
    return Finding(Cause.CAPACITY, "not enough capacity: " + "; ".join(parts), tuple(ids), request_ids)


def _cannot_move(plan: Plan | None) -> Finding | None:
    stuck = [u for u in (plan.cannot_place if plan else ()) if u.reason in _CANNOT_MOVE]
    if not stuck:
        return None
    groups = []
    for reason, label in _CANNOT_MOVE.items():
        members = [u for u in stuck if u.reason is reason]
        if members:
            groups.append(f"{label}: {_names(members)}")
    message = f"{plural(len(stuck), 'instance')} cannot move: " + "; ".join(groups)
    return Finding(Cause.CANNOT_MOVE, message, tuple(u.instance.id for u in stuck))


def _nova_errors(outcomes: Sequence[Outcome]) -> Finding | None:
    failed = [o for o in outcomes if o.status is MoveStatus.FAILED and not _NO_VALID_HOST.search(o.message)]
    if not failed:
        return None
    shown = []
    for o in failed[:_NAMES_SHOWN]:
        suffix = f" ({o.request_id})" if o.request_id and o.request_id not in o.message else ""
        shown.append(f"{o.instance.name or o.instance.id}: {o.message or 'failed'}{suffix}")
    if len(failed) > _NAMES_SHOWN:
        shown.append(f"and {len(failed) - _NAMES_SHOWN} more")
    return Finding(
        Cause.NOVA_ERROR,
        f"Nova error for {plural(len(failed), 'instance')}: " + "; ".join(shown),
        tuple(o.instance.id for o in failed),
        tuple(o.request_id for o in failed if o.request_id),
    )


def _not_moved(outcome: Outcome | None) -> bool:
    return outcome is None or outcome.status is not MoveStatus.SUCCEEDED


def _names(items: Sequence[Unplaced | Outcome]) -> str:
    names = [i.instance.name or i.instance.id for i in items]
    shown = ", ".join(names[:_NAMES_SHOWN])
    return shown if len(names) <= _NAMES_SHOWN else f"{shown} and {len(names) - _NAMES_SHOWN} more"


def _request_ids(outcomes: Sequence[Outcome]) -> str:
    ids = [o.request_id for o in outcomes if o.request_id]
    return f" ({', '.join(ids)})" if ids else ""


@dataclass(frozen=True)
class SegmentHost:
    """A host of the segment as the inventory has it now."""

    name: str
    reserved: bool
    on_maintenance: bool
    unready: str | None = None  # why it could not take instances now (its nova-compute down, ...)


@dataclass(frozen=True)
class SpareVerdict:
    needed: bool  # the segment's method uses spares
    free: tuple[str, ...]
    reason: Reason | None  # NO_FREE_SPARE when needed and none is free
    message: str

    @property
    def ok(self) -> bool:
        return self.reason is None


def spares_left(
    segment: str, method: RecoveryMethod, hosts: Sequence[SegmentHost], claimed: Collection[str]
) -> SpareVerdict:
    """Whether a segment whose recovery method needs reserved spares still has a free one.

    A spare is free when it is reserved, not on maintenance, ready (the last check found its
    nova-compute up) and not `claimed`: the hosts that an open recovery holds (the host failed
    itself, or a plan took it as its spare).
    """
    routes = ROUTES.get(str(method))
    if routes is None:
        raise ValueError(f"unknown recovery method {method!r}")
    reserved = [h for h in hosts if h.reserved]
    free = tuple(
        h.name for h in reserved if not h.on_maintenance and h.unready is None and h.name not in claimed
    )
    needed = Route.RESERVED_HOST in routes
    if not needed:
        return SpareVerdict(False, free, None, f"segment {segment}: recovery method {method} uses no spares")
    if free:
        # A spare that would not take instances is said even while others are free: one fewer.
        broken = "".join(
            f"; {h.name} not ready: {h.unready}" for h in reserved if h.unready and h.name not in claimed
        )
        message = f"segment {segment}: {plural(len(free), 'free spare')}: {', '.join(free)}{broken}"
        return SpareVerdict(True, free, None, message)
    busy = [f"{h.name} {_why_not_free(h, claimed)}" for h in reserved]
    why = f" ({'; '.join(busy)})" if busy else " (no host is reserved)"
    fallback = "; only the scheduler will take instances" if Route.SCHEDULER in routes else ""
    message = (
        f"segment {segment}: recovery method {method} needs a free reserved spare and has none{why}{fallback}"
    )
    return SpareVerdict(True, (), Reason.NO_FREE_SPARE, message)


def _why_not_free(host: SegmentHost, claimed: Collection[str]) -> str:
    if host.on_maintenance:
        return "on maintenance"
    if host.name in claimed:
        return "held by an open recovery"
    return f"not ready: {host.unready}"
