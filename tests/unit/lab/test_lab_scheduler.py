"""The lab scheduler's pure choice of a destination host."""

from __future__ import annotations

import pytest

from receiver.lab.scheduler import AllocationRatios, Candidate, Demand, choose_host, fits

pytestmark = pytest.mark.unit

SMALL = Demand(vcpus=1, memory_mb=2048, disk_gb=20)


def host(
    name: str, *, usable: bool = True, memory_used: int = 0, vcpus: int = 8, vcpus_used: int = 0
) -> Candidate:
    return Candidate(
        name=name,
        usable=usable,
        vcpus=vcpus,
        memory_mb=16384,
        disk_gb=100,
        vcpus_used=vcpus_used,
        memory_mb_used=memory_used,
        disk_gb_used=0,
    )


def test_prefers_the_host_with_most_free_ram() -> None:
    hosts = [host("a", memory_used=8192), host("b", memory_used=1024), host("c", memory_used=4096)]
    assert choose_host(hosts, SMALL, exclude=None) == "b"


def test_never_the_source_nor_an_unusable_host() -> None:
    hosts = [host("src"), host("down", usable=False), host("ok", memory_used=8192)]
    assert choose_host(hosts, SMALL, exclude="src") == "ok"


def test_no_valid_host_when_nothing_fits() -> None:
    full = host("full", memory_used=16384 - 1024)
    assert choose_host([full, host("src")], SMALL, exclude="src") is None
    assert choose_host([], SMALL, exclude=None) is None


def test_requested_host_still_goes_through_the_filters() -> None:
    hosts = [host("a"), host("b", usable=False)]
    assert choose_host(hosts, SMALL, exclude=None, only="a") == "a"
    assert choose_host(hosts, SMALL, exclude=None, only="b") is None


def test_cpu_allocation_ratio_allows_overcommit() -> None:
    busy = host("busy", vcpus=2, vcpus_used=2)
    assert not fits(busy, SMALL, AllocationRatios(cpu=1.0))
    assert fits(busy, SMALL, AllocationRatios(cpu=4.0))


def test_ties_break_by_name_for_a_stable_answer() -> None:
    assert choose_host([host("b"), host("a")], SMALL, exclude=None) == "a"
