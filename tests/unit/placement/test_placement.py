"""The capacity plan: each recovery method, spares running out, shortfall numbers, determinism."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from receiver.domain.capacity import Capacity, Demand, Target
from receiver.domain.placement import Plan, Route, plan_placement
from receiver.domain.reasons import Reason
from receiver.domain.selection import Selection, SelectionPolicy, select_instances
from receiver.inventory import RecoveryMethod
from tests.unit.placement.builders import IMAGE_ONLY, flavor, host, select, server, spare

pytestmark = pytest.mark.unit

AUTO, RH, AUTO_PRIORITY, RH_PRIORITY = (
    RecoveryMethod.AUTO,
    RecoveryMethod.RESERVED_HOST,
    RecoveryMethod.AUTO_PRIORITY,
    RecoveryMethod.RH_PRIORITY,
)
S = Route.SCHEDULER
R = Route.RESERVED_HOST


@pytest.mark.parametrize(
    ("capacity", "limit", "free", "largest"),
    [
        (Capacity(16), 16, 16, 16),
        (Capacity(16, used=10), 16, 6, 16),
        (Capacity(16, used=10, allocation_ratio=4.0), 64, 54, 64),
        (Capacity(16, used=10, reserved=2, allocation_ratio=4.0), 56, 46, 56),
        (Capacity(16, used=10, allocation_ratio=1.5, max_unit=16), 24, 14, 16),
        (Capacity(10, allocation_ratio=0.95), 9, 9, 9),  # Placement's capacity rounds down
        (Capacity(8, used=12), 8, 0, 8),  # over-committed by hand: no room, never negative
    ],
)
def test_capacity_as_placement_counts_it(capacity: Capacity, limit: int, free: int, largest: int) -> None:
    assert (capacity.limit, capacity.free, capacity.largest_instance) == (limit, free, largest)


# The same dead host and segment for every method: two scheduler hosts, two spares (each room
# for 4 vCPU / 8 GB), one big high-priority instance and four small ones: 12 vCPU, 24 GB in all.
POOL = [host("h1", 4, 8192), host("h2", 4, 8192)]
SPARES = [spare("s1", 4, 8192), spare("s2", 4, 8192)]
INSTANCES = [
    server("x1", fl=flavor(2, 4096)),
    server("x2", fl=flavor(2, 4096)),
    server("p1", priority="9", fl=flavor(4, 8192)),
    server("x3", fl=flavor(2, 4096)),
    server("x4", fl=flavor(2, 4096)),
]


@dataclass(frozen=True)
class MethodCase:
    method: RecoveryMethod
    spares: str  # the segment's spares, in order
    placed: str  # "instance:target", "*" for the scheduler
    unplaced: str = ""
    used: str = ""  # spares used, in order
    shortfall: Demand = field(default_factory=Demand)
    reason: Reason = Reason.INSUFFICIENT_CAPACITY


SHORT_4 = Demand(vcpus=4, ram_mb=8192)
METHODS = {
    # auto: the scheduler chooses; the plan predicts it (most free RAM first) and finds it 4 vCPU short.
    "auto": MethodCase(AUTO, "s1 s2", "p1:* x1:* x2:*", "x3 x4", shortfall=SHORT_4),
    # reserved_host: spares in order, each while it has room; the scheduler's hosts are never used.
    "reserved_host": MethodCase(RH, "s1 s2", "p1:s1 x1:s2 x2:s2", "x3 x4", "s1 s2", SHORT_4),
    "reserved_host, other order": MethodCase(RH, "s2 s1", "p1:s2 x1:s1 x2:s1", "x3 x4", "s2 s1", SHORT_4),
    "reserved_host, no spare": MethodCase(
        RH, "", "", "p1 x1 x2 x3 x4", shortfall=Demand(vcpus=12, ram_mb=24576), reason=Reason.NO_FREE_SPARE
    ),
    # auto_priority: the scheduler first, the spares take what it leaves (one spare suffices).
    "auto_priority": MethodCase(AUTO_PRIORITY, "s1 s2", "p1:* x1:* x2:* x3:s1 x4:s1", used="s1"),
    "auto_priority, no spare": MethodCase(AUTO_PRIORITY, "", "p1:* x1:* x2:*", "x3 x4", shortfall=SHORT_4),
    # rh_priority: the spares first, the scheduler takes the rest.
    "rh_priority": MethodCase(RH_PRIORITY, "s1 s2", "p1:s1 x1:s2 x2:s2 x3:* x4:*", used="s1 s2"),
    "rh_priority, one spare": MethodCase(RH_PRIORITY, "s1", "p1:s1 x1:* x2:* x3:* x4:*", used="s1"),
    "rh_priority, no spare": MethodCase(RH_PRIORITY, "", "p1:* x1:* x2:*", "x3 x4", shortfall=SHORT_4),
}


@pytest.mark.parametrize("case", METHODS.values(), ids=METHODS.keys())
def test_each_recovery_method(case: MethodCase) -> None:
    plan = plan_placement(select(INSTANCES), POOL + SPARES, case.method, case.spares.split())
    expected = {}
    for entry in case.placed.split():
        instance, target = entry.split(":")
        expected[instance] = (None, S) if target == "*" else (target, R)
    assert {a.instance.id: (a.target, a.route) for a in plan.assignments} == expected
    assert list(plan.spares_used) == case.used.split()
    assert [(u.instance.id, u.reason) for u in plan.cannot_place] == [
        (i, case.reason) for i in case.unplaced.split()
    ]
    assert plan.shortfall == case.shortfall
    assert plan.complete == (not case.unplaced)
    assert plan.method == case.method.value
    # Entries follow the move order: the priority-9 instance first, then Nova's listing order.
    assert plan.order == ("p1", "x1", "x2", "x3", "x4")
    assert [a.instance.id for a in plan.assignments] == [i for i in plan.order if i in expected]


def test_a_spare_runs_out_partial_plan() -> None:
    # Spare s1 holds two of the 4 GB instances, s2 one; the fourth has nowhere to go.
    instances = [server(f"v{i}", fl=flavor(2, 4096, disk=0)) for i in range(1, 5)]
    targets = [*POOL, spare("s1", 8, 8192), spare("s2", 8, 6144)]
    plan = plan_placement(select(instances), targets, RH, ["s1", "s2"])
    assert [(a.instance.id, a.target) for a in plan.assignments] == [("v1", "s1"), ("v2", "s1"), ("v3", "s2")]
    assert plan.spares_used == ("s1", "s2")
    (left,) = plan.cannot_place
    assert (left.instance.id, left.reason) == ("v4", Reason.INSUFFICIENT_CAPACITY)
    assert left.message == (
        "vm-v4 (v4) needs 2 vCPU, 4096 MB RAM; no reserved spare has room (the most left on one: 2048 MB RAM)"
    )
    assert plan.shortfall == Demand(ram_mb=2048)
    assert plan.summary() == (
        "reserved_host: 3 of 4 placed; 2 to spare s1; 1 to spare s2; 1 without room (short 2048 MB RAM)"
    )


def test_later_small_instances_fill_an_earlier_spares_gap() -> None:
    instances = [
        server("big-1", fl=flavor(4, 6144)),
        server("big-2", fl=flavor(4, 6144)),
        server("small", fl=flavor(1, 2048)),
    ]
    plan = plan_placement(select(instances), [spare("s1", 8, 8192), spare("s2", 8, 8192)], RH, ["s1", "s2"])
    assert [(a.instance.id, a.target) for a in plan.assignments] == [
        ("big-1", "s1"),
        ("big-2", "s2"),
        ("small", "s1"),
    ]


@pytest.mark.parametrize(
    ("targets", "notes"),
    [
        ([*POOL], ["spare s1: no hypervisor figures; not used", "spare s2: no hypervisor figures; not used"]),
        ([*POOL, spare("s1", up=False), spare("s2", on_maintenance=True)],
         ["spare s1: down; not used", "spare s2: on maintenance; not used"]),
    ],
)  # fmt: skip
def test_unusable_spares_are_noted_and_skipped(targets: list[Target], notes: list[str]) -> None:
    rh = plan_placement(select(INSTANCES), targets, RH, ["s1", "s2", "s1"])
    assert list(rh.notes) == [*notes, "no usable reserved spare in the segment"]
    assert {u.reason for u in rh.cannot_place} == {Reason.NO_FREE_SPARE}
    assert rh.cannot_place[0].message == (
        "vm-p1 (p1): recovery method reserved_host needs a free reserved spare and none is usable"
    )
    rh_priority = plan_placement(select(INSTANCES), targets, RH_PRIORITY, ["s1", "s2"])
    assert rh_priority.notes[-1] == "no usable reserved spare in the segment (the scheduler takes everything)"
    assert {a.route for a in rh_priority.assignments} == {Route.SCHEDULER}


@pytest.mark.parametrize(
    "excluded",
    [
        host("z", 64, 262144, enabled=False),
        host("z", 64, 262144, up=False),
        host("z", 64, 262144, on_maintenance=True),
        host("z", 64, 262144, reserved=True),  # a reserved host the scheduler could reach is still kept
        spare("z", 64, 262144),
    ],
)
def test_the_scheduler_only_gets_enabled_up_unreserved_hosts(excluded: Target) -> None:
    plan = plan_placement(select(INSTANCES), [*POOL, excluded], AUTO)
    assert plan.shortfall == Demand(vcpus=4, ram_mb=8192)  # as if `z` were not there


def test_a_named_spare_is_not_the_schedulers_even_if_enabled() -> None:
    plan = plan_placement(select(INSTANCES), [*POOL, host("s1", 64, 262144)], AUTO, ["s1"])
    assert plan.shortfall == Demand(vcpus=4, ram_mb=8192)


PINNED_4 = flavor(4, 1024, hw__cpu_policy="dedicated")
SWAP_EPHEMERAL = flavor(2, 2048, disk=20, ephemeral=5, swap=1024)


@pytest.mark.parametrize(
    ("target", "instances", "placed", "shortfall"),
    [
        # allocation ratio 4.0: 4 physical cores take 16 vCPU
        (host("h", 4, 65536, cpu_ratio=4.0), 8 * [flavor(2, 1024)], 8, Demand()),
        (host("h", 4, 65536, cpu_ratio=4.0), 9 * [flavor(2, 1024)], 8, Demand(vcpus=2)),
        # what is already used counts
        (host("h", 16, 16384, used=(10, 8192, 0)), 4 * [flavor(2, 2048)], 3, Demand(vcpus=2)),
        (host("h", 16, 16384, used=(0, 12288, 0)), 3 * [flavor(2, 2048)], 2, Demand(ram_mb=2048)),
        # disk on the target: ephemeral + swap (the root is a volume); several resources short at once
        (host("h", 4, 4096, 10), 3 * [SWAP_EPHEMERAL], 1, Demand(vcpus=2, ram_mb=2048, disk_gb=8)),
        # pinned instances take dedicated CPUs, not shared ones
        (host("h", 2, 65536, pcpus=8), 2 * [PINNED_4], 2, Demand()),
        (host("h", 64, 65536, pcpus=6), 2 * [PINNED_4], 1, Demand(pcpus=2)),
    ],
)  # fmt: skip
def test_shortfall_numbers(
    target: Target, instances: list[dict[str, object]], placed: int, shortfall: Demand
) -> None:
    servers = [server(f"i{n}", fl=fl) for n, fl in enumerate(instances)]
    plan = plan_placement(select(servers, [target]), [target], AUTO)
    assert len(plan.assignments) == placed
    assert plan.shortfall == shortfall
    assert len(plan.cannot_place) == len(servers) - placed


def test_enough_in_total_but_no_single_host_has_room() -> None:
    targets = [host("h1", 4, 4096), host("h2", 2, 8192)]
    plan = plan_placement(select([server("a", fl=flavor(4, 8192))]), targets, AUTO)
    (left,) = plan.cannot_place
    assert left.message == "vm-a (a) needs 4 vCPU, 8192 MB RAM; no host has room (none has all of it at once)"
    assert plan.shortfall == Demand()
    assert plan.summary() == (
        "auto: 0 of 1 placed; "
        "1 without room (enough in total, but no single host has room for all of one instance)"
    )


def test_larger_than_any_host_allows_for_one_instance() -> None:
    target = Target("h1", Capacity(32, allocation_ratio=4.0, max_unit=32), Capacity(262144), Capacity(1000))
    plan = plan_placement(select([server("a", fl=flavor(48, 4096))]), [target], AUTO)
    assert plan.cannot_place[0].message == (
        "vm-a (a) needs 48 vCPU, 4096 MB RAM; no host has room (the most left on one: 32 vCPU)"
    )


def test_no_usable_host_at_all() -> None:
    plan = plan_placement(select([server("a")]), [host("h1", up=False)], AUTO)
    assert (
        plan.cannot_place[0].message
        == "vm-a (a) needs 2 vCPU, 4096 MB RAM; no host has room (none is usable)"
    )


def test_a_shortage_hits_the_lowest_priority_first() -> None:
    instances = [
        server("low-big", priority="1", fl=flavor(4, 8192)),
        server("small", fl=flavor(1, 1024)),
        server("top", priority="10", fl=flavor(2, 4096)),
        server("mid-big", priority="5", fl=flavor(4, 8192)),
    ]
    plan = plan_placement(select(instances), [host("h1", 8, 12288)], AUTO)
    assert plan.order == ("top", "mid-big", "low-big", "small")
    assert [a.instance.id for a in plan.assignments] == ["top", "mid-big"]
    assert [u.instance.id for u in plan.cannot_place] == ["low-big", "small"]


def test_within_a_priority_bigger_first_so_more_fits() -> None:
    # In listing order (first fit) the small ones would split the hosts' room and the big one find none.
    instances = [
        server("s1", fl=flavor(1, 2048)),
        server("s2", fl=flavor(1, 2048)),
        server("big", fl=flavor(2, 6144)),
    ]
    plan = plan_placement(select(instances), [host("h1", 8, 6144), host("h2", 8, 4096)], AUTO)
    assert plan.complete
    assert plan.order == ("s1", "s2", "big")  # the move order stays the selection's


def test_what_selection_left_out_is_in_the_plan() -> None:
    instances = [
        server("gpu", fl=flavor(pci_passthrough__alias="gpu:1")),
        server("plain", ha=False),
        server("ok"),
        server("old", fl={"id": "f1"}),
    ]
    plan = plan_placement(select(instances), POOL, AUTO)
    assert [a.instance.id for a in plan.assignments] == ["ok"]
    assert [(u.instance.id, u.reason) for u in plan.cannot_place] == [
        ("gpu", Reason.PCI_PASSTHROUGH),
        ("old", Reason.FLAVOR_UNKNOWN),
    ]
    assert (
        plan.cannot_place[1].message
        == "vm-old (old): no flavor details in the server record; its room is unknown"
    )
    assert [(u.instance.id, u.reason) for u in plan.not_selected] == [("plain", Reason.NOT_HA_ENABLED)]
    assert (
        plan.summary() == "auto: 1 of 3 placed; 1 to the scheduler; 1 of unknown size; 1 cannot be evacuated"
    )


def test_deterministic_whatever_the_order_of_the_targets() -> None:
    targets = [host(f"h{n:02}", 4, 8192) for n in range(12)] + [spare("s1", 8, 16384)]
    instances = [server(f"i{n:02}", fl=flavor(1 + n % 3, 1024 * (1 + n % 4))) for n in range(30)]
    first = plan_placement(select(instances), targets, AUTO_PRIORITY, ["s1"])
    shuffled = list(targets)
    random.Random(7).shuffle(shuffled)
    assert plan_placement(select(instances), shuffled, AUTO_PRIORITY, ["s1"]) == first


def test_two_hundred_instances_on_a_thousand_targets() -> None:
    targets = [host(f"h{n:04}", 32, 131072, 2000, used=(n % 32, (n * 4096) % 131072, 0)) for n in range(1000)]
    targets += [spare(f"s{n}", 64, 262144) for n in range(3)]
    instances = [
        server(f"i{n:03}", priority=str(n % 5), fl=flavor(2 + n % 7, 2048 * (1 + n % 16), disk=0))
        for n in range(200)
    ]
    plan = plan_placement(select(instances), targets, RH_PRIORITY, ["s0", "s1", "s2"])
    assert plan.complete
    assert len(plan.assignments) == 200
    assert plan.spares_used == ("s0", "s1", "s2")
    assert plan.shortfall == Demand()
    assert plan == plan_placement(select(instances), targets, RH_PRIORITY, ["s0", "s1", "s2"])


def test_the_plan_survives_the_record() -> None:
    instances = [*INSTANCES, server("gpu", fl=flavor(pci_passthrough__alias="gpu:1")), server("no", ha=False)]
    plan = plan_placement(select(instances), POOL + SPARES, RH, ["s1", "s2"])
    assert plan.to_dict()["assignments"][0] == {
        "id": "p1",
        "name": "vm-p1",
        "target": "s1",
        "route": "reserved_host",
    }
    assert Plan.from_dict(plan.to_dict()) == plan


def test_an_unknown_method_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown recovery method 'fastest'"):
        plan_placement(Selection("dead-1", (), ()), POOL, "fastest")  # type: ignore[arg-type]


def test_a_local_disk_instance_is_in_the_plan_as_cannot_move() -> None:
    blocked = select_instances(
        [server("a")], SelectionPolicy(), failed_host="dead-1", disks={"a": IMAGE_ONLY}, targets=POOL
    )
    plan = plan_placement(blocked, POOL, AUTO)
    assert [(u.instance.id, u.reason) for u in plan.cannot_place] == [("a", Reason.LOCAL_DISK)]
    assert plan.assignments == ()
    assert plan.short == ()  # no room would fix it


def test_the_failed_host_is_never_a_target_even_while_nova_reports_it_up() -> None:
    # Before fencing, Nova may still see the failed host's service up and enabled.
    roomy_dead = host("dead-1", 64, 262144)
    plan = plan_placement(select(INSTANCES), [*POOL, roomy_dead], AUTO)
    assert plan.shortfall == Demand(vcpus=4, ram_mb=8192)  # as if it were not there
    as_spare = plan_placement(select(INSTANCES), [*POOL, spare("dead-1", 64, 262144)], RH, ["dead-1"])
    assert as_spare.spares_used == ()
    assert as_spare.notes == ("no usable reserved spare in the segment",)
