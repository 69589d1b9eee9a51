"""The diagnosis of a failed or partial host recovery, and spares running out."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from receiver.domain.capacity import Target
from receiver.domain.diagnosis import (
    Cause,
    Diagnosis,
    Outcome,
    SegmentHost,
    diagnose,
    outcomes_from_vmoves,
    spares_left,
)
from receiver.domain.placement import InstanceRef, Plan, plan_placement, plan_unchecked
from receiver.domain.reasons import Reason
from receiver.domain.record import MoveStatus, VMove
from receiver.inventory import RecoveryMethod
from tests.unit.placement.builders import flavor, host, select, server, spare

pytestmark = pytest.mark.unit

REQ_A = "req-0a1b2c3d-0000-4000-8000-00000000000a"
REQ_B = "req-0a1b2c3d-0000-4000-8000-00000000000b"
INSTANCES = [
    server("a", priority="2", fl=flavor(4, 8192)),
    server("b", fl=flavor(4, 8192)),
    server("gpu", fl=flavor(pci_passthrough__alias="gpu:1")),
    server("c", fl=flavor(4, 8192)),
]
ROOMY: list[Target] = [host("h1", 16, 65536)]
TIGHT: list[Target] = [host("h1", 4, 8192)]
OK, FAILED, IGNORED, PENDING = MoveStatus.SUCCEEDED, MoveStatus.FAILED, MoveStatus.IGNORED, MoveStatus.PENDING


def plan_on(
    targets: list[Target], method: RecoveryMethod = RecoveryMethod.AUTO, spares: tuple[str, ...] = ()
) -> Plan:
    return plan_placement(select(INSTANCES, targets), targets, method, spares)


def outcome(sid: str, status: MoveStatus, message: str = "", request_id: str | None = None) -> Outcome:
    dest = "h1" if status is OK else None
    return Outcome(InstanceRef(sid, f"vm-{sid}"), status, dest, message, request_id)


NO_VALID_HOST = (
    f"evacuate refused: No valid host was found. There are not enough hosts available.; request {REQ_A}"
)
TASK_STATE = (
    f"evacuate refused: Cannot 'evacuate' instance while it is in task_state rebuilding; request {REQ_B}"
)

CASES = {
    "all moved": (
        ROOMY,
        [outcome("a", OK), outcome("b", OK), outcome("c", OK)],
        None,
        "dead-1: 3 of 4 instances moved; 1 instance cannot move: PCI passthrough: vm-gpu",
        [Cause.CANNOT_MOVE],
    ),
    "short, moved what fit": (
        TIGHT,
        [outcome("a", OK), outcome("b", IGNORED, "not attempted"), outcome("c", IGNORED, "not attempted")],
        None,
        "dead-1: 1 of 4 instances moved; not enough capacity: 2 instances did not fit (vm-b, vm-c); "
        "the plan: short 8 vCPU, 16384 MB RAM; 1 instance cannot move: PCI passthrough: vm-gpu",
        [Cause.CAPACITY, Cause.CANNOT_MOVE],
    ),
    "short, proceeded, Nova found room for one": (
        TIGHT,
        [outcome("a", OK), outcome("b", OK), outcome("c", FAILED, NO_VALID_HOST, REQ_A)],
        None,
        "dead-1: 2 of 4 instances moved; not enough capacity: 1 instance did not fit (vm-c); "
        f"the plan: short 8 vCPU, 16384 MB RAM; Nova found no valid host for vm-c ({REQ_A}); "
        "1 instance cannot move: PCI passthrough: vm-gpu",
        [Cause.CAPACITY, Cause.CANNOT_MOVE],
    ),
    "Nova refused where the plan found room": (
        ROOMY,
        [outcome("a", FAILED, NO_VALID_HOST, REQ_A), outcome("b", OK), outcome("c", OK)],
        None,
        f"dead-1: 2 of 4 instances moved; not enough capacity: Nova found no valid host for vm-a ({REQ_A}), "
        "although the plan found room: stale figures, or Nova's filters (aggregates, zones, traits); "
        "1 instance cannot move: PCI passthrough: vm-gpu",
        [Cause.CAPACITY, Cause.CANNOT_MOVE],
    ),
    "Nova errors": (
        ROOMY,
        [
            outcome("a", FAILED, TASK_STATE, REQ_B),
            outcome("b", FAILED, "timed out waiting for the move (REBUILD/rebuilding on dead-1)"),
            outcome("c", FAILED, "instance went to ERROR on h1", REQ_A),
        ],
        None,
        "dead-1: 0 of 4 instances moved; 1 instance cannot move: PCI passthrough: vm-gpu; "
        f"Nova error for 3 instances: vm-a: {TASK_STATE}; "
        "vm-b: timed out waiting for the move (REBUILD/rebuilding on dead-1); "
        f"vm-c: instance went to ERROR on h1 ({REQ_A})",
        [Cause.CANNOT_MOVE, Cause.NOVA_ERROR],
    ),
    "fencing gap": (
        ROOMY,
        [outcome("a", PENDING), outcome("b", PENDING), outcome("c", PENDING)],
        (Reason.BMC_UNREACHABLE, "BMC 10.0.0.11:623 did not answer within 30s"),
        "dead-1: 0 of 4 instances moved; fencing gap: dead-1 was never proven off (bmc_unreachable: "
        "BMC 10.0.0.11:623 did not answer within 30s); nothing was evacuated; "
        "1 instance cannot move: PCI passthrough: vm-gpu",
        [Cause.FENCING_GAP, Cause.CANNOT_MOVE],
    ),
}


@pytest.mark.parametrize(
    ("targets", "outcomes", "stopped", "summary", "causes"), CASES.values(), ids=CASES.keys()
)
def test_diagnosis_texts(
    targets: list[Target],
    outcomes: list[Outcome],
    stopped: tuple[Reason, str] | None,
    summary: str,
    causes: list[Cause],
) -> None:
    reason, message = stopped or (None, "")
    diagnosis = diagnose(
        host="dead-1",
        plan=plan_on(targets),
        outcomes=outcomes,
        stopped_reason=reason,
        stopped_message=message,
    )
    assert diagnosis.summary == summary
    assert list(diagnosis.causes) == causes


def test_a_refusal_after_an_unchecked_plan_says_the_room_was_never_checked() -> None:
    """Without hypervisor figures the plan 'placed' everything: no claim that it found room."""
    selection = select(INSTANCES, figures=False)
    plan = plan_unchecked(selection, RecoveryMethod.AUTO, (), "Nova refused to list the hypervisors")
    outcomes = [outcome("a", FAILED, NO_VALID_HOST, REQ_A), outcome("b", OK), outcome("c", OK)]
    diagnosis = diagnose(host="dead-1", plan=plan, outcomes=outcomes)
    [capacity] = [f for f in diagnosis.findings if f.cause is Cause.CAPACITY]
    assert capacity.message == (
        f"not enough capacity: Nova found no valid host for vm-a ({REQ_A}); "
        "the plan could not check room (Nova gave no hypervisor figures)"
    )


def test_findings_name_instances_and_request_ids() -> None:
    outcomes = [
        outcome("a", OK),
        outcome("b", FAILED, TASK_STATE, REQ_B),
        outcome("c", FAILED, NO_VALID_HOST, REQ_A),
    ]
    diagnosis = diagnose(host="dead-1", plan=plan_on(TIGHT), outcomes=outcomes)
    capacity, cannot_move, nova = diagnosis.findings
    assert (capacity.cause, capacity.instances, capacity.request_ids) == (
        Cause.CAPACITY,
        ("b", "c"),
        (REQ_A,),
    )
    assert (cannot_move.cause, cannot_move.instances) == (Cause.CANNOT_MOVE, ("gpu",))
    assert (nova.cause, nova.instances, nova.request_ids) == (Cause.NOVA_ERROR, ("b",), (REQ_B,))
    assert Diagnosis(diagnosis.summary, diagnosis.findings).to_dict()["findings"][0] == {
        "cause": "capacity",
        "message": capacity.message,
        "instances": ["b", "c"],
        "request_ids": [REQ_A],
    }


@pytest.mark.parametrize(
    ("reason", "gap"),
    [
        (Reason.BMC_UNREACHABLE, True),
        (Reason.BMC_REFUSED, True),
        (Reason.POWER_STILL_ON, True),
        (Reason.NO_FENCE_METHOD, True),
        (Reason.FENCE_CONFIG_INVALID, True),
        (Reason.STORM_GUARD, False),  # a gate, not a gap in fencing
        (Reason.EVACUATION_FAILED, False),
        (None, False),
    ],
)
def test_which_stops_are_a_fencing_gap(reason: Reason | None, gap: bool) -> None:
    diagnosis = diagnose(host="dead-1", plan=None, outcomes=[], stopped_reason=reason, stopped_message="")
    assert diagnosis.causes == ((Cause.FENCING_GAP,) if gap else ())


def test_everything_moved_and_nothing_to_move() -> None:
    plan = plan_placement(select([server("a"), server("b")]), ROOMY, RecoveryMethod.AUTO)
    moved = diagnose(host="dead-1", plan=plan, outcomes=[outcome("a", OK), outcome("b", OK)])
    assert (moved.summary, moved.findings) == ("dead-1: all 2 instances moved", ())
    gone = diagnose(host="dead-1", plan=plan, outcomes=[outcome("a", OK), outcome("b", IGNORED, "deleted")])
    assert (gone.summary, gone.findings) == (
        "dead-1: 1 of 2 instances moved, none failed (the others no longer exist)",
        (),
    )
    empty = plan_placement(select([]), ROOMY, RecoveryMethod.AUTO)
    assert diagnose(host="dead-1", plan=empty, outcomes=[]).summary == "dead-1: nothing to move"


def test_no_free_spare_and_many_names() -> None:
    servers = [server(f"i{n}") for n in range(8)]
    plan = plan_placement(
        select(servers), [host("h1"), spare("s1", up=False)], RecoveryMethod.RESERVED_HOST, ["s1"]
    )
    diagnosis = diagnose(host="dead-1", plan=plan, outcomes=[])
    assert diagnosis.summary == (
        "dead-1: 0 of 8 instances moved; not enough capacity: no free reserved spare for 8 instances "
        "(vm-i0, vm-i1, vm-i2, vm-i3, vm-i4 and 3 more)"
    )
    assert diagnosis.findings[0].instances == tuple(f"i{n}" for n in range(8))


def test_outcomes_from_the_records_moves() -> None:
    moves = [
        VMove("a", "vm-a", "dead-1", "ACTIVE", MoveStatus.SUCCEEDED, "h1", message="ACTIVE on h1"),
        VMove("b", "vm-b", "dead-1", "SHUTOFF", MoveStatus.FAILED, message=TASK_STATE),
        VMove("c", "vm-c", "dead-1", "ACTIVE", MoveStatus.FAILED, message="timed out waiting for the move"),
    ]
    assert [(o.instance.id, o.status, o.dest_host, o.request_id) for o in outcomes_from_vmoves(moves)] == [
        ("a", MoveStatus.SUCCEEDED, "h1", None),
        ("b", MoveStatus.FAILED, None, REQ_B),
        ("c", MoveStatus.FAILED, None, None),
    ]


@dataclass(frozen=True)
class SpareCase:
    method: RecoveryMethod
    hosts: str  # "name" a plain host, "name:r" reserved, "name:rm" reserved and on maintenance
    claimed: str  # hosts an open recovery holds
    free: str
    message: str


NONE_FREE = "segment rack-a: recovery method {} needs a free reserved spare and has none "
SPARES = {
    "auto needs none": SpareCase(
        RecoveryMethod.AUTO, "h1 h2", "", "", "segment rack-a: recovery method auto uses no spares"
    ),
    "one free": SpareCase(
        RecoveryMethod.RESERVED_HOST, "h1 s1:r", "", "s1", "segment rack-a: 1 free spare: s1"
    ),
    "a claimed one is not free": SpareCase(
        RecoveryMethod.AUTO_PRIORITY, "s1:r s2:r s3:r", "s2", "s1 s3", "segment rack-a: 2 free spares: s1, s3"
    ),
    "maintenance and claimed": SpareCase(
        RecoveryMethod.RESERVED_HOST,
        "h1 s1:rm s2:r",
        "s2",
        "",
        NONE_FREE.format("reserved_host") + "(s1 on maintenance; s2 held by an open recovery)",
    ),
    "none reserved": SpareCase(
        RecoveryMethod.RH_PRIORITY,
        "h1 h2",
        "h1",
        "",
        NONE_FREE.format("rh_priority") + "(no host is reserved); only the scheduler will take instances",
    ),
    "the only spare claimed": SpareCase(
        RecoveryMethod.AUTO_PRIORITY,
        "h1 s1:r",
        "s1",
        "",
        NONE_FREE.format("auto_priority")
        + "(s1 held by an open recovery); only the scheduler will take instances",
    ),
}


@pytest.mark.parametrize("case", SPARES.values(), ids=SPARES.keys())
def test_spares_left(case: SpareCase) -> None:
    segment_hosts = []
    for spec in case.hosts.split():
        name, _, flags = spec.partition(":")
        segment_hosts.append(SegmentHost(name, reserved="r" in flags, on_maintenance="m" in flags))
    verdict = spares_left("rack-a", case.method, segment_hosts, set(case.claimed.split()))
    assert (verdict.free, verdict.message) == (tuple(case.free.split()), case.message)
    assert verdict.reason is (
        None if case.free or case.method is RecoveryMethod.AUTO else Reason.NO_FREE_SPARE
    )
    assert verdict.ok is (verdict.reason is None)
    assert verdict.needed is (case.method is not RecoveryMethod.AUTO)
