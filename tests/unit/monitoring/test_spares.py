"""Free reserved spares per segment: which hosts open recoveries hold, the verdict, the gauges."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from receiver.adapters.redis_inventory import HostView
from receiver.domain.alerts import NotificationType
from receiver.domain.model import ComputeService
from receiver.domain.reasons import Reason
from receiver.domain.record import Status
from receiver.inventory import HostSpec, RecoveryMethod, SegmentSpec
from receiver.inventory_edits import HostState
from receiver.metrics import spare_families
from receiver.monitoring.spare_readiness import judge_spares, why_unready
from receiver.monitoring.spares import claims_of, segment_spares
from tests.unit.notify.records import new_record

pytestmark = pytest.mark.unit


def segment(method: str = "reserved_host", *hosts: HostSpec, **extra: Any) -> SegmentSpec:
    return SegmentSpec(name="rack-a", recovery_method=RecoveryMethod(method), hosts=list(hosts), **extra)


def view(
    seg: SegmentSpec, name: str, *, reserved: bool = False, maintenance: bool = False, held: str | None = None
) -> HostView:
    spec = HostSpec(name=name, reserved=reserved)
    return HostView(spec, seg, HostState(maintenance), recovery=held)


def record(uuid: str, host: str, status: Status, spares: tuple[str, ...] = (), **changes: Any) -> Any:
    plan = {"spares_used": list(spares)} if spares else None
    return replace(new_record(host), notification_uuid=uuid, status=status, plan=plan, **changes)


def test_an_open_host_recovery_holds_its_host_and_the_spares_its_plan_took() -> None:
    records = [
        record("r1", "node-01", Status.RUNNING, ("spare-01", "spare-02")),
        record("r2", "node-02", Status.NEW),
        record("r3", "node-03", Status.ERROR, ("spare-03",)),  # waits for a retry: still holds
        record("done", "node-04", Status.FINISHED, ("spare-04",)),
        record("fail", "node-05", Status.FAILED, ("spare-05",)),
        record("proc", "node-06", Status.RUNNING, type=NotificationType.PROCESS),
    ]
    assert claims_of(records) == {
        "node-01": "r1",
        "spare-01": "r1",
        "spare-02": "r1",
        "node-02": "r2",
        "node-03": "r3",
        "spare-03": "r3",
    }


CASES = {
    # method, hosts (name, reserved, maintenance, host claim), plan claims, enabled -> needed, free
    "free spare": ("reserved_host", [("s1", True, False, None)], {}, True, (True, ("s1",))),
    "spare on maintenance": ("reserved_host", [("s1", True, True, None)], {}, True, (True, ())),
    "spare taken by an open plan": (
        "rh_priority",
        [("s1", True, False, None), ("s2", True, False, None)],
        {"s1": "r1"},
        True,
        (True, ("s2",)),
    ),
    "the failed host was a spare": ("auto_priority", [("s1", True, False, "r9")], {}, True, (True, ())),
    "no host reserved": ("reserved_host", [("n1", False, False, None)], {}, True, (True, ())),
    "auto uses no spares": ("auto", [("n1", False, False, None)], {}, True, (False, ())),
    "auto still counts its reserved hosts": ("auto", [("s1", True, False, None)], {}, True, (False, ("s1",))),
    "disabled segment needs none": ("reserved_host", [], {}, False, (False, ())),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_segment_spares(case: tuple[Any, ...]) -> None:
    method, hosts, claims, enabled, (needed, free) = case
    seg = segment(method, enabled=enabled)
    views = [view(seg, n, reserved=r, maintenance=m, held=h) for n, r, m, h in hosts]
    spares = segment_spares(seg, views, claims)
    assert (spares.needed, spares.verdict.free) == (needed, free)
    assert spares.short is (needed and not free)
    if spares.short:
        assert spares.verdict.reason is Reason.NO_FREE_SPARE


def test_the_verdict_says_why_no_spare_is_free() -> None:
    seg = segment()
    views = [view(seg, "s1", reserved=True, maintenance=True), view(seg, "s2", reserved=True)]
    message = segment_spares(seg, views, {"s2": "r1"}).verdict.message
    assert "s1 on maintenance" in message and "s2 held by an open recovery" in message


def test_a_spare_that_could_not_take_instances_is_not_free_and_says_why() -> None:
    seg = segment()
    views = [view(seg, "s1", reserved=True), view(seg, "s2", reserved=True)]
    unready = {"s2": "its nova-compute is down (checked 2026-11-25T13:00:00+00:00)"}
    one = segment_spares(seg, views, {}, unready)
    assert one.verdict.free == ("s1",) and not one.short
    assert one.verdict.message == (
        "segment rack-a: 1 free spare: s1; "
        "s2 not ready: its nova-compute is down (checked 2026-11-25T13:00:00+00:00)"
    )
    none = segment_spares(seg, views, {"s1": "r1"}, unready)
    assert none.short and "s2 not ready: its nova-compute is down" in none.verdict.message


@pytest.mark.parametrize(
    ("service", "why"),
    [
        (None, "Nova has no nova-compute service for it"),
        (ComputeService("1", "s1", "up", "disabled", False), None),  # disabled: how spares are kept
        (ComputeService("1", "s1", "up", "enabled", False), None),
        (ComputeService("1", "s1", "down", "disabled", False), "its nova-compute is down"),
        (ComputeService("1", "s1", "up", "disabled", True), "its nova-compute is forced down"),
    ],
)
def test_why_a_spare_is_not_ready(service: ComputeService | None, why: str | None) -> None:
    assert why_unready("s1", service) == why
    listed = [] if service is None else [service]
    assert judge_spares(["s1"], listed) == ({} if why is None else {"s1": why})


def test_gauges_one_series_per_segment() -> None:
    a = segment_spares(segment("reserved_host"), [], {})
    b_seg = SegmentSpec(name="rack-b", recovery_method=RecoveryMethod.AUTO_PRIORITY)
    b = segment_spares(b_seg, [view(b_seg, "s1", reserved=True), view(b_seg, "s2", reserved=True)], {})
    c_seg = SegmentSpec(name="rack-c")
    c = segment_spares(c_seg, [], {})
    samples = {
        (s.name, s.labels["segment"]): s.value for family in spare_families([a, b, c]) for s in family.samples
    }
    assert samples == {
        ("lazarus_segment_free_spares", "rack-a"): 0,
        ("lazarus_segment_free_spares", "rack-b"): 2,
        ("lazarus_segment_free_spares", "rack-c"): 0,
        ("lazarus_segment_spares_needed", "rack-a"): 1,
        ("lazarus_segment_spares_needed", "rack-b"): 1,
        ("lazarus_segment_spares_needed", "rack-c"): 0,
    }
