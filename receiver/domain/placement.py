"""The capacity plan: where a dead host's instances go, or why they cannot. Pure functions.

Recovery methods, as Masakari runs them (`driver.py`), each a sequence of routes:

    auto           the scheduler chooses (targets are None in the plan)
    reserved_host  the segment's reserved spares, in order
    auto_priority  the scheduler; what does not fit goes to the spares
    rh_priority    the spares; what does not fit goes to the scheduler

Masakari checks nothing before it starts; the plan predicts, before fencing, what will fit:

- Routes run one after the other over every instance not yet placed, as Masakari's flows
  do (the second flow only sees what the first left behind).
- Instances are placed in priority order (higher first, so a shortage hits the lowest),
  and by decreasing size within a priority (RAM, then CPUs, then disk): first-fit
  decreasing, the classic bin-packing heuristic. Ties keep the selection's order.
- Spares: first fit in the given order. A spare takes instances while it has room, then
  the next; smaller instances later still fill the first spare's gaps. Spares used are
  listed: they stop being `reserved` (Masakari) and, enabled in Nova, join the
  scheduler's hosts for a later scheduler route (rh_priority).
- The scheduler: a prediction of Nova's default behaviour: only enabled, up, non-reserved
  hosts, each instance on the fitting host with the most free RAM (Nova's RAM weigher
  spreads), ties by name. Nova's answer may still differ (aggregates, availability zones,
  traits): the plan is a forecast, the outcome is the truth.
- Room is counted as Placement counts it (`capacity`); the failed host is never a target.

Deterministic: the same inputs give the same plan. Cost: O(instances x targets), a few
hundred thousand cheap comparisons for 200 instances and 1000 targets.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from receiver.domain.capacity import NO_CAPACITY, Demand, Target, shortfall_text, unit
from receiver.domain.model import Server
from receiver.domain.reasons import Reason
from receiver.domain.selection import Candidate, Selection, instance_label

if TYPE_CHECKING:
    from receiver.inventory import RecoveryMethod


class Route(enum.StrEnum):
    """How one instance travels; the values are Masakari's method names."""

    SCHEDULER = "auto"  # evacuate without a host: Nova's scheduler chooses
    RESERVED_HOST = "reserved_host"  # evacuate to a named reserved spare


ROUTES: Mapping[str, tuple[Route, ...]] = {
    "auto": (Route.SCHEDULER,),
    "reserved_host": (Route.RESERVED_HOST,),
    "auto_priority": (Route.SCHEDULER, Route.RESERVED_HOST),
    "rh_priority": (Route.RESERVED_HOST, Route.SCHEDULER),
}
# Plan entries that more room (or a spare) would fix; the segment's policy decides on them.
CAPACITY_REASONS = frozenset({Reason.INSUFFICIENT_CAPACITY, Reason.NO_FREE_SPARE, Reason.FLAVOR_UNKNOWN})


@dataclass(frozen=True)
class InstanceRef:
    id: str
    name: str


@dataclass(frozen=True)
class Assignment:
    instance: InstanceRef
    target: str | None  # None: Nova's scheduler chooses
    route: Route  # the method used for this instance


@dataclass(frozen=True)
class Unplaced:
    instance: InstanceRef
    reason: Reason
    message: str


@dataclass(frozen=True)
class Plan:
    """Which instance goes where, or cannot, and why. Entries follow the move order."""

    method: str
    order: tuple[str, ...]  # instance ids in move order (placed and not)
    assignments: tuple[Assignment, ...]
    cannot_place: tuple[Unplaced, ...]  # non-evacuable first, then those without room
    not_selected: tuple[Unplaced, ...] = ()  # left out by policy (HA_Enabled, ERROR): no failure
    spares_used: tuple[str, ...] = ()
    shortfall: Demand = field(default_factory=Demand)  # per resource, how much more room the unplaced need
    notes: tuple[str, ...] = ()
    room_checked: bool = True  # False: Nova gave no hypervisor figures; a forecast of routes only

    @property
    def complete(self) -> bool:
        return not self.cannot_place

    @property
    def short(self) -> tuple[Unplaced, ...]:
        """The entries more room would fix."""
        return tuple(u for u in self.cannot_place if u.reason in CAPACITY_REASONS)

    def summary(self) -> str:
        to_scheduler = sum(1 for a in self.assignments if a.target is None)
        evacuable = len(self.cannot_place) - len(self.short)
        total = len(self.order) + evacuable
        parts = [f"{self.method}: {len(self.assignments)} of {total} placed"]
        if to_scheduler:
            parts.append(f"{to_scheduler} to the scheduler")
        for spare in self.spares_used:
            parts.append(f"{sum(1 for a in self.assignments if a.target == spare)} to spare {spare}")
        no_room = [u for u in self.short if u.reason is not Reason.FLAVOR_UNKNOWN]
        if no_room:
            parts.append(f"{len(no_room)} without room ({shortfall_text(self.shortfall)})")
        if len(no_room) < len(self.short):
            parts.append(f"{len(self.short) - len(no_room)} of unknown size")
        if evacuable:
            parts.append(f"{evacuable} cannot be evacuated")
        if not self.room_checked:
            parts.append("room not checked (no hypervisor figures)")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        def ref(r: InstanceRef) -> dict[str, str]:
            return {"id": r.id, "name": r.name}

        def left(items: tuple[Unplaced, ...]) -> list[dict[str, str]]:
            return [{**ref(u.instance), "reason": u.reason.value, "message": u.message} for u in items]

        return {
            "method": self.method,
            "order": list(self.order),
            "assignments": [
                {**ref(a.instance), "target": a.target, "route": a.route.value} for a in self.assignments
            ],
            "cannot_place": left(self.cannot_place),
            "not_selected": left(self.not_selected),
            "spares_used": list(self.spares_used),
            "shortfall": dict(self.shortfall.items()),
            "notes": list(self.notes),
            "room_checked": self.room_checked,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        def left(items: Sequence[Mapping[str, Any]]) -> tuple[Unplaced, ...]:
            return tuple(
                Unplaced(InstanceRef(u["id"], u["name"]), Reason(u["reason"]), u["message"]) for u in items
            )

        return cls(
            method=data["method"],
            order=tuple(data["order"]),
            assignments=tuple(
                Assignment(InstanceRef(a["id"], a["name"]), a["target"], Route(a["route"]))
                for a in data["assignments"]
            ),
            cannot_place=left(data["cannot_place"]),
            not_selected=left(data.get("not_selected", ())),
            spares_used=tuple(data.get("spares_used", ())),
            shortfall=Demand(**data.get("shortfall", {})),
            notes=tuple(data.get("notes", ())),
            room_checked=bool(data.get("room_checked", True)),
        )


class _Bin:
    """A target's room while the plan fills it (mutable, private)."""

    __slots__ = ("cap", "free", "name")

    def __init__(self, target: Target) -> None:
        pcpus = target.pcpus or NO_CAPACITY
        resources = (target.vcpus, pcpus, target.ram_mb, target.disk_gb)
        self.name = target.name
        self.free = [c.free for c in resources]
        self.cap = [c.max_unit for c in resources]

    def fits(self, need: tuple[int, int, int, int]) -> bool:
        for amount, free, cap in zip(need, self.free, self.cap, strict=True):
            if amount and (amount > free or (cap is not None and amount > cap)):
                return False
        return True

    def take(self, need: tuple[int, int, int, int]) -> None:
        self.free = [free - amount for free, amount in zip(self.free, need, strict=True)]

    def room_for_one(self, index: int) -> int:
        cap = self.cap[index]
        return self.free[index] if cap is None else min(self.free[index], cap)


def plan_placement(
    selection: Selection,
    targets: Sequence[Target],
    method: RecoveryMethod,
    spares: Sequence[str] = (),
) -> Plan:
    """Place the selection's instances on `targets` following `method`.

    `spares` are the segment's reserved spares, in the order to use them (names of
    `targets`); the scheduler's hosts are the enabled, up, non-reserved targets.
    """
    routes = ROUTES.get(str(method))
    if routes is None:
        raise ValueError(f"unknown recovery method {method!r}")
    notes: list[str] = []
    # The plan is made before fencing, while Nova may still report the failed host up and enabled.
    targets = [t for t in targets if t.name != selection.failed_host]
    spare_bins = _spare_bins(targets, [s for s in spares if s != selection.failed_host], notes)
    pool = [_Bin(t) for t in sorted(targets, key=lambda t: t.name) if t.schedulable and t.name not in spares]
    if Route.RESERVED_HOST in routes and not spare_bins:
        fallback = " (the scheduler takes everything)" if Route.SCHEDULER in routes else ""
        notes.append(f"no usable reserved spare in the segment{fallback}")

    candidates = selection.candidates
    sized = [c for c in candidates if c.needs.demand is not None]
    placed, unplaced, used = _pack(sorted(sized, key=_fill_order), routes, pool, spare_bins)
    by_route = (pool if Route.SCHEDULER in routes else []) + (
        spare_bins if Route.RESERVED_HOST in routes else []
    )
    eligible = list(dict.fromkeys(by_route))  # a used spare is in both
    left: dict[str, Unplaced] = {c.server.id: _no_room(c, routes, spare_bins, eligible) for c in unplaced}
    for c in candidates:
        if c.needs.demand is None:
            message = (
                f"{instance_label(c.server)}: no flavor details in the server record; its room is unknown"
            )
            left[c.server.id] = Unplaced(_ref(c.server), Reason.FLAVOR_UNKNOWN, message)
    need = [sum(_demand(c).as_tuple()[k] for c in unplaced) for k in range(4)]
    free = [sum(b.free[k] for b in eligible) for k in range(4)]
    non_evacuable, not_selected = _left_by_selection(selection)
    return Plan(
        method=str(method),
        order=tuple(c.server.id for c in candidates),
        assignments=tuple(placed[c.server.id] for c in candidates if c.server.id in placed),
        cannot_place=non_evacuable + tuple(left[c.server.id] for c in candidates if c.server.id in left),
        not_selected=not_selected,
        spares_used=tuple(b.name for b in used),
        shortfall=Demand.of([max(0, n - f) for n, f in zip(need, free, strict=True)]),
        notes=tuple(notes),
    )


def plan_unchecked(selection: Selection, method: RecoveryMethod, spares: Sequence[str], why: str) -> Plan:
    """The plan when Nova gives no hypervisor figures (`why`: say, its policy refuses the
    listing): no room can be checked, so every instance takes the method's first route that
    exists, as Masakari would, and Nova decides. The first free spare takes everything; a
    move that fails is retried on the next spare or the scheduler, as the method allows.
    Instances the selection leaves out stay out: that needs no figures."""
    routes = ROUTES.get(str(method))
    if routes is None:
        raise ValueError(f"unknown recovery method {method!r}")
    spares = [s for s in spares if s != selection.failed_host]
    notes = [f"no hypervisor figures ({why}): room not checked, Nova decides"]
    route = next((r for r in routes if r is Route.SCHEDULER or spares), None)
    if Route.RESERVED_HOST in routes and not spares:
        notes.append("no usable reserved spare in the segment")
    candidates = selection.candidates
    assignments: tuple[Assignment, ...] = ()
    no_spare: tuple[Unplaced, ...] = ()
    if route is None:
        message = "recovery method reserved_host needs a free reserved spare and none is usable"
        no_spare = tuple(
            Unplaced(_ref(c.server), Reason.NO_FREE_SPARE, f"{instance_label(c.server)}: {message}")
            for c in candidates
        )
    else:
        target = spares[0] if route is Route.RESERVED_HOST else None
        assignments = tuple(Assignment(_ref(c.server), target, route) for c in candidates)
    non_evacuable, not_selected = _left_by_selection(selection)
    return Plan(
        method=str(method),
        order=tuple(c.server.id for c in candidates),
        assignments=assignments,
        cannot_place=non_evacuable + no_spare,
        not_selected=not_selected,
        spares_used=(spares[0],) if route is Route.RESERVED_HOST else (),
        notes=tuple(notes),
        room_checked=False,
    )


def _left_by_selection(selection: Selection) -> tuple[tuple[Unplaced, ...], tuple[Unplaced, ...]]:
    """What the selection leaves out: (cannot be evacuated, not selected by policy)."""
    non_evacuable = selection.non_evacuable
    return (
        tuple(Unplaced(_ref(s.server), s.reason, s.message) for s in non_evacuable),
        tuple(
            Unplaced(_ref(s.server), s.reason, s.message) for s in selection.skipped if s not in non_evacuable
        ),
    )


def _pack(
    ordered: Sequence[Candidate], routes: tuple[Route, ...], pool: list[_Bin], spare_bins: Sequence[_Bin]
) -> tuple[dict[str, Assignment], list[Candidate], list[_Bin]]:
    """Run the routes one after the other over what is still unplaced, as Masakari's flows do.

    Returns the assignments by instance id, what found no room, and the spares used.
    Spares used join the scheduler's `pool`: enabled in Nova, the scheduler may choose them.
    """
    placed: dict[str, Assignment] = {}
    used: list[_Bin] = []
    remaining = list(ordered)
    for route in routes:
        still: list[Candidate] = []
        for candidate in remaining:
            need = _demand(candidate).as_tuple()
            chosen = _widest(pool, need) if route is Route.SCHEDULER else _first(spare_bins, need)
            if chosen is None:
                still.append(candidate)
                continue
            chosen.take(need)
            if route is Route.RESERVED_HOST and chosen not in used:
                used.append(chosen)
                pool.append(chosen)
            target = None if route is Route.SCHEDULER else chosen.name
            placed[candidate.server.id] = Assignment(_ref(candidate.server), target, route)
        remaining = still
    return placed, remaining, used


def _spare_bins(targets: Sequence[Target], spares: Sequence[str], notes: list[str]) -> list[_Bin]:
    by_name = {t.name: t for t in targets}
    bins: list[_Bin] = []
    seen: set[str] = set()
    for name in spares:
        if name in seen:
            continue
        seen.add(name)
        target = by_name.get(name)
        if target is None:
            notes.append(f"spare {name}: no hypervisor figures; not used")
        elif not target.usable_as_spare:
            notes.append(f"spare {name}: {'on maintenance' if target.on_maintenance else 'down'}; not used")
        else:
            bins.append(_Bin(target))
    return bins


def _fill_order(candidate: Candidate) -> tuple[int, int, int, int]:
    """Priority first (a shortage hits the lowest), then decreasing size: first-fit decreasing."""
    demand = _demand(candidate)
    return (-candidate.priority, -demand.ram_mb, -(demand.vcpus + demand.pcpus), -demand.disk_gb)


def _widest(bins: Sequence[_Bin], need: tuple[int, int, int, int]) -> _Bin | None:
    """The fitting bin with the most free RAM (Nova's RAM weigher spreads); ties: the first
    (the scheduler's hosts by name, then spares enabled earlier in the plan)."""
    best: _Bin | None = None
    for b in bins:
        if (best is None or b.free[2] > best.free[2]) and b.fits(need):
            best = b
    return best


def _first(bins: Sequence[_Bin], need: tuple[int, int, int, int]) -> _Bin | None:
    return next((b for b in bins if b.fits(need)), None)


def _no_room(
    candidate: Candidate, routes: tuple[Route, ...], spare_bins: Sequence[_Bin], eligible: Sequence[_Bin]
) -> Unplaced:
    label = instance_label(candidate.server)
    if routes == (Route.RESERVED_HOST,) and not spare_bins:
        message = f"{label}: recovery method reserved_host needs a free reserved spare and none is usable"
        return Unplaced(_ref(candidate.server), Reason.NO_FREE_SPARE, message)
    demand = _demand(candidate)
    where = _WHERE.get(routes, "neither a host nor a reserved spare")
    tight = []
    for k, (name, amount) in enumerate(demand.items()):
        best = max((b.room_for_one(k) for b in eligible), default=0)
        if amount > best:
            tight.append(f"{best} {unit(name)}")
    detail = f"the most left on one: {', '.join(tight)}" if tight else "none has all of it at once"
    if not eligible:
        detail = "none is usable"
    message = f"{label} needs {demand.describe()}; {where} has room ({detail})"
    return Unplaced(_ref(candidate.server), Reason.INSUFFICIENT_CAPACITY, message)


_WHERE: Mapping[tuple[Route, ...], str] = {
    (Route.SCHEDULER,): "no host",
    (Route.RESERVED_HOST,): "no reserved spare",
}


def _demand(candidate: Candidate) -> Demand:
    assert candidate.needs.demand is not None  # instances without one never reach the packing
    return candidate.needs.demand


def _ref(server: Server) -> InstanceRef:
    return InstanceRef(server.id, server.name)
