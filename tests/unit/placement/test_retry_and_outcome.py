"""Where a failed move may go next, and how a host recovery ends given its moves."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from receiver.domain.capacity import AllocationRatios, HypervisorReport, target_from_report
from receiver.domain.evacuation import SCHEDULER, judge_outcome, next_target, retry_target
from receiver.domain.model import Server
from receiver.domain.reasons import Reason
from receiver.domain.record import MoveStatus, Status, VMove

pytestmark = pytest.mark.unit

SOURCE = "dead-01"
AUTO, RESERVED = ("auto",), ("reserved_host",)
AUTO_PRIORITY, RH_PRIORITY = ("auto", "reserved_host"), ("reserved_host", "auto")


def move(target: str | None = None, attempts: int = 1, tried: tuple[str, ...] = ()) -> VMove:
    return VMove(
        "i-1", "vm", SOURCE, "ACTIVE", status=MoveStatus.FAILED, target_host=target, attempts=attempts,
        tried_hosts=tried,
    )  # fmt: skip


def server(host: str | None = SOURCE, status: str = "ERROR", task: str | None = None) -> Server:
    return Server("i-1", "vm", host, status, task_state=task)


@dataclass(frozen=True)
class RetryCase:
    name: str
    move: VMove
    routes: tuple[str, ...]
    spares: tuple[str, ...]
    retry: bool
    target: str | None = None
    route: str = "auto"
    server: Server | None = None
    max_attempts: int = 2


RETRY_CASES = [
    RetryCase("auto: the scheduler again", move(), AUTO, (), True, None, "auto"),
    RetryCase(
        "reserved_host: the next spare", move("s1"), RESERVED, ("s1", "s2"), True, "s2", "reserved_host"
    ),
    RetryCase(
        "reserved_host: spares tried before are skipped",
        move("s2", 2, ("s1",)),
        RESERVED,
        ("s1", "s2", "s3"),
        True,
        "s3",
        "reserved_host",
        max_attempts=3,
    ),
    RetryCase("reserved_host: no other spare", move("s1"), RESERVED, ("s1",), False),
    RetryCase(
        "auto_priority: a scheduler failure goes to a spare",
        move(),
        AUTO_PRIORITY,
        ("s1",),
        True,
        "s1",
        "reserved_host",
    ),
    RetryCase(
        "rh_priority: the next spare first",
        move("s1"),
        RH_PRIORITY,
        ("s1", "s2"),
        True,
        "s2",
        "reserved_host",
    ),
    RetryCase("rh_priority: then the scheduler", move("s1"), RH_PRIORITY, ("s1",), True, None, "auto"),
    RetryCase("bounded", move(attempts=2), AUTO, (), False),
    RetryCase("it reached another host: never again", move(), AUTO, (), False, server=server("node-02")),
    RetryCase("Nova still busy: never again", move(), AUTO, (), False, server=server(task="rebuilding")),
]


@pytest.mark.parametrize("case", RETRY_CASES, ids=lambda c: c.name)
def test_retry_target(case: RetryCase) -> None:
    decision = retry_target(
        case.move,
        case.server or server(),
        max_attempts=case.max_attempts,
        routes=case.routes,
        spares=case.spares,
    )
    assert decision.retry is case.retry, decision.message
    if case.retry:
        assert (decision.target, decision.route) == (case.target, case.route)
        assert f"attempt {case.move.attempts + 1} of {case.max_attempts}" in decision.message
    else:
        assert decision.message


def test_when_every_target_failed_the_scheduler_is_asked_again_while_attempts_remain() -> None:
    failed = move("s1", 2, (SCHEDULER,))
    decision = retry_target(failed, server(), max_attempts=3, routes=AUTO_PRIORITY, spares=("s1",))
    assert (decision.retry, decision.target) == (True, None)
    only_spares = retry_target(failed, server(), max_attempts=3, routes=RESERVED, spares=("s1",))
    assert not only_spares.retry


def done(status: MoveStatus, reason: str | None = None, name: str = "vm") -> VMove:
    return VMove(name, name, SOURCE, "ACTIVE", status=status, reason=reason, message=f"{name} {status}")


@pytest.mark.parametrize(
    ("moves", "status", "reason", "text"),
    [
        (
            [done(MoveStatus.SUCCEEDED, name="a"), done(MoveStatus.SUCCEEDED, name="b")],
            Status.FINISHED,
            Reason.COMPLETED,
            "2 instances recovered off dead-01",
        ),
        (
            [done(MoveStatus.SUCCEEDED), done(MoveStatus.IGNORED, "not_ha_enabled", "x")],
            Status.FINISHED,
            Reason.COMPLETED,
            "1 instances recovered off dead-01; 1 left by policy (not HA-enabled)",
        ),
        (
            [
                done(MoveStatus.IGNORED, "excluded_project", "amphora"),
                done(MoveStatus.SUCCEEDED),
                done(MoveStatus.IGNORED, "instance_in_error", "e"),
            ],
            Status.FINISHED,
            Reason.COMPLETED,
            "2 left by policy (ERROR skipped, excluded project)",
        ),
        ([], Status.FINISHED, Reason.NO_INSTANCES, "no instances"),
        (
            [done(MoveStatus.IGNORED, "not_ha_enabled")],
            Status.FINISHED,
            Reason.NO_INSTANCES,
            "left by policy",
        ),
        (
            [done(MoveStatus.SUCCEEDED), done(MoveStatus.IGNORED, "pci_passthrough", "gpu")],
            Status.FAILED,
            Reason.PCI_PASSTHROUGH,
            "gpu: pci_passthrough",
        ),
        (
            [done(MoveStatus.IGNORED, "insufficient_capacity", "big"), done(MoveStatus.FAILED, name="f")],
            Status.FAILED,
            Reason.EVACUATION_FAILED,
            "2 of 2 instances not recovered",
        ),
        (
            [done(MoveStatus.IGNORED, None, "gone"), done(MoveStatus.SUCCEEDED)],
            Status.FINISHED,
            Reason.COMPLETED,
            "1 instances recovered",
        ),
    ],
)
def test_outcome(moves: list[VMove], status: Status, reason: Reason, text: str) -> None:
    got = judge_outcome(moves, SOURCE)
    assert got[:2] == (status, reason)
    assert text in got[2]


def test_target_from_the_hypervisor_report() -> None:
    report = HypervisorReport("node-02", 16, 4, 65536, 8192, 1000, 100, enabled=True, up=True)
    target = target_from_report(report, AllocationRatios(cpu=4.0), reserved=True)
    assert target.vcpus.free == 16 * 4 - 4
    assert target.ram_mb.free == 65536 - 8192
    assert target.disk_gb.free == 900
    assert target.pcpus is not None and target.pcpus.free == 12  # pinned CPUs: physical, no ratio
    assert target.reserved and not target.schedulable and target.usable_as_spare
    down = target_from_report(replace(report, up=False), AllocationRatios())
    assert not down.schedulable


@pytest.mark.parametrize(
    ("tried", "routes", "spares", "expected"),
    [
        ({"s1"}, RESERVED, ("s1", "s2"), ("s2", "reserved_host")),
        ({"s1"}, RESERVED, ("s1",), None),
        ({"s1"}, RH_PRIORITY, ("s1",), (None, "auto")),
        ({SCHEDULER}, AUTO_PRIORITY, ("s1",), ("s1", "reserved_host")),
        ({SCHEDULER}, AUTO, (), None),
        (set(), AUTO_PRIORITY, ("s1",), (None, "auto")),
    ],
)
def test_next_target_follows_the_methods_routes(
    tried: set[str], routes: tuple[str, ...], spares: tuple[str, ...], expected: tuple[str | None, str] | None
) -> None:
    assert next_target(tried, routes, spares) == expected
