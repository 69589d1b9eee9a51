"""Which instances of a dead host move, in which order, and which cannot move at all."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest

from receiver.domain.capacity import Demand, DiskFacts, Target
from receiver.domain.model import Server
from receiver.domain.reasons import Reason
from receiver.domain.selection import SelectionPolicy, needs_of, select_instances
from tests.unit.placement.builders import (
    BFV,
    IMAGE_ONLY,
    IMAGE_WITH_VOLUME,
    flavor,
    host,
    select,
    server,
    spare,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("metadata", "evacuate_all", "moved"),
    [
        ({"HA_Enabled": "True"}, False, True),
        ({"HA_Enabled": "true"}, False, True),
        ({"HA_Enabled": "1"}, False, True),
        ({"HA_Enabled": "False"}, False, False),
        ({"HA_Enabled": "nonsense"}, False, False),
        ({}, False, False),
        ({}, True, True),  # evacuate-all (segment or settings) takes everything
        ({"HA_Enabled": "False"}, True, True),
    ],
)
def test_ha_enabled_unless_evacuate_all(metadata: dict[str, str], evacuate_all: bool, moved: bool) -> None:
    instance = Server("i-1", "vm-1", "dead-1", "ACTIVE", metadata=metadata, flavor=flavor())
    selection = select([instance], evacuate_all=evacuate_all)
    assert selection.to_move == ((instance,) if moved else ())
    if not moved:
        (skipped,) = selection.skipped
        assert (skipped.server, skipped.reason) == (instance, Reason.NOT_HA_ENABLED)
        assert (
            skipped.message
            == "vm-1 (i-1) lacks metadata HA_Enabled=True and the segment does not evacuate all"
        )


@pytest.mark.parametrize(
    ("status", "vm_state", "skip_error", "reason"),
    [
        ("ERROR", "error", True, Reason.INSTANCE_IN_ERROR),
        ("ERROR", "error", False, None),  # Masakari's default: ERROR instances are evacuated too
        ("ACTIVE", "error", True, Reason.INSTANCE_IN_ERROR),
        ("SHUTOFF", "stopped", True, None),
        ("ACTIVE", "active", True, None),
    ],
)
def test_error_instances_skipped_when_configured(
    status: str, vm_state: str, skip_error: bool, reason: Reason | None
) -> None:
    selection = select([server("a", status=status, vm_state=vm_state)], skip_error=skip_error)
    assert [s.reason for s in selection.skipped] == ([reason] if reason else [])
    assert len(selection.to_move) == (0 if reason else 1)


@pytest.mark.parametrize("evacuate_all", [False, True])
def test_an_excluded_projects_instances_stay_even_when_ha_enabled_or_evacuating_all(
    evacuate_all: bool,
) -> None:
    amphora = replace(server("amp", name="amphora-1"), project_id="octavia")
    tenant = replace(server("vm"), project_id="tenant-a")
    unknown = server("partial")  # a server from an unreachable cell: no project, never excluded
    selection = select(
        [amphora, tenant, unknown], evacuate_all=evacuate_all, exclude_projects=frozenset({"octavia"})
    )
    assert selection.to_move == (tenant, unknown)
    [skipped] = selection.skipped
    assert (skipped.server, skipped.reason) == (amphora, Reason.EXCLUDED_PROJECT)
    assert skipped.message == (
        "amphora-1 (amp) belongs to project octavia, whose service recovers its own instances"
    )


@pytest.mark.parametrize(
    ("priorities", "order", "invalid"),
    [
        ([None, None, None], ["a", "b", "c"], []),  # no priority: Nova's listing order
        (["1", "5", "3"], ["b", "c", "a"], []),
        (["2", None, "2"], ["a", "c", "b"], []),  # ties keep the listing order
        (["-1", None, "0"], ["b", "c", "a"], []),  # negative sorts after the default 0
        (["high", "1", None], ["b", "a", "c"], ["high"]),  # not an integer: 0, with a warning
        ([" 7 ", "+3", "1.5"], ["a", "b", "c"], ["1.5"]),
        (["99999999999", "1", None], ["b", "a", "c"], ["99999999999"]),  # absurdly long: refused
    ],
)
def test_order_by_priority_higher_first_stable(
    priorities: list[str | None], order: list[str], invalid: list[str]
) -> None:
    servers = [server(sid, priority=p) for sid, p in zip("abc", priorities, strict=True)]
    selection = select(servers)
    assert [s.id for s in selection.to_move] == order
    assert selection.warnings == tuple(
        f"vm-{sid} ({sid}): metadata lazarus:priority={p!r} is not an integer; using 0"
        for sid, p in zip("abc", priorities, strict=True)
        if p in invalid
    )


def test_evacuate_all_puts_ha_enabled_first_within_a_priority() -> None:
    servers = [
        server("plain-1", ha=False),
        server("ha-1"),
        server("plain-2", ha=False, priority="1"),
        server("ha-2"),
    ]
    selection = select(servers, evacuate_all=True)
    assert [s.id for s in selection.to_move] == ["plain-2", "ha-1", "ha-2", "plain-1"]


def test_a_custom_priority_key() -> None:
    ranked = Server(
        "b", "vm-b", "dead-1", "ACTIVE", metadata={"HA_Enabled": "True", "rank": "4"}, flavor=flavor()
    )
    servers = [server("a"), ranked]
    selection = select(servers, priority_key="rank")
    assert [s.id for s in selection.to_move] == ["b", "a"]


@dataclass(frozen=True)
class Case:
    fl: dict[str, Any]
    disks: DiskFacts | None  # None: the workflow had no disk facts for the server
    reason: Reason | None = None  # None: it moves
    words: str = ""
    shared: bool = False
    targets: tuple[Target, ...] | None = (host("t1"),)  # None: Nova gave no hypervisor figures


DEDICATED_4 = flavor(4, hw__cpu_policy="dedicated")
NUMA_2 = flavor(hw__numa_nodes="2")
NON_EVACUABLE = {
    "boot from volume": Case(flavor(), BFV),
    "image only": Case(
        flavor(), IMAGE_ONLY, Reason.LOCAL_DISK, "image-backed root disk on dead-1's local storage"
    ),
    "image only, shared storage": Case(flavor(), IMAGE_ONLY, shared=True),
    "image with a volume": Case(flavor(), IMAGE_WITH_VOLUME),
    "unknown disks": Case(flavor(), None, Reason.LOCAL_DISK, "cannot tell whether its root disk is a volume"),
    "unknown disks, shared storage": Case(flavor(), None, shared=True),
    "pci passthrough": Case(
        flavor(pci_passthrough__alias="a1:2"),
        BFV,
        Reason.PCI_PASSTHROUGH,
        "PCI passthrough (pci_passthrough:alias=a1:2) stays with the host",
    ),
    "pci, shared storage": Case(
        flavor(pci_passthrough__alias="a1:1"), BFV, Reason.PCI_PASSTHROUGH, shared=True
    ),
    "pinned, room": Case(DEDICATED_4, BFV, targets=(host("t1", pcpus=8),)),
    "pinned, too few": Case(
        DEDICATED_4,
        BFV,
        Reason.NUMA_UNSATISFIABLE,
        "needs 4 dedicated CPUs: no target offers that",
        targets=(host("t1", pcpus=2),),
    ),
    "pinned, no dedicated set": Case(DEDICATED_4, BFV, Reason.NUMA_UNSATISFIABLE),
    "mixed counts as pinned": Case(flavor(4, hw__cpu_policy="mixed"), BFV, Reason.NUMA_UNSATISFIABLE),
    "shared policy": Case(flavor(4, hw__cpu_policy="shared"), BFV),
    "pinned, host down": Case(
        DEDICATED_4, BFV, Reason.NUMA_UNSATISFIABLE, targets=(host("t1", pcpus=8, up=False),)
    ),
    "pinned, a spare offers it": Case(DEDICATED_4, BFV, targets=(host("t1"), spare("s1", pcpus=4))),
    "numa 2, one node": Case(
        NUMA_2,
        BFV,
        Reason.NUMA_UNSATISFIABLE,
        "needs 2 NUMA nodes: no target offers that",
        targets=(host("t1", numa=1),),
    ),
    "numa 2, two nodes": Case(NUMA_2, BFV, targets=(host("t1", numa=2),)),
    # Without hypervisor figures no layout is ruled out (Nova decides); what needs none still is.
    "pinned, targets unknown": Case(DEDICATED_4, BFV, targets=None),
    "numa 2, targets unknown": Case(NUMA_2, BFV, targets=None),
    "pci, targets unknown": Case(
        flavor(pci_passthrough__alias="a1:1"), BFV, Reason.PCI_PASSTHROUGH, targets=None
    ),
    "image only, targets unknown": Case(flavor(), IMAGE_ONLY, Reason.LOCAL_DISK, targets=None),
    "numa 2, layout unknown": Case(NUMA_2, BFV),  # not ruled out: the scheduler decides
    "pinned on 2 nodes, split offers": Case(
        flavor(4, hw__cpu_policy="dedicated", hw__numa_nodes="2"),
        BFV,
        Reason.NUMA_UNSATISFIABLE,
        "needs 4 dedicated CPUs on 2 NUMA nodes",
        targets=(host("t1", pcpus=8, numa=1), host("t2", pcpus=2, numa=2)),
    ),
}


@pytest.mark.parametrize("case", NON_EVACUABLE.values(), ids=NON_EVACUABLE.keys())
def test_non_evacuable_recorded_up_front(case: Case) -> None:
    instance = server("a", fl=case.fl)
    selection = select_instances(
        [instance],
        SelectionPolicy(shared_storage=case.shared),
        failed_host="dead-1",
        disks={} if case.disks is None else {"a": case.disks},
        targets=case.targets,
    )
    if case.reason is None:
        assert selection.to_move == (instance,)
        assert selection.skipped == ()
        return
    assert selection.to_move == ()
    (skipped,) = selection.non_evacuable
    assert (skipped.server, skipped.reason) == (instance, case.reason)
    assert skipped.message.startswith("vm-a (a): ")
    assert case.words in skipped.message


def test_every_problem_is_named_the_most_fundamental_is_the_reason() -> None:
    fl = flavor(4, pci_passthrough__alias="gpu:1", hw__cpu_policy="dedicated")
    selection = select_instances(
        [server("a", fl=fl)],
        SelectionPolicy(),
        failed_host="dead-1",
        disks={"a": IMAGE_ONLY},
        targets=[host("t1")],
    )
    (skipped,) = selection.skipped
    assert skipped.reason is Reason.PCI_PASSTHROUGH
    assert skipped.message == (
        "vm-a (a): PCI passthrough (pci_passthrough:alias=gpu:1) stays with the host; "
        "image-backed root disk on dead-1's local storage, no volume, no shared storage: "
        "evacuating would lose its data; needs 4 dedicated CPUs: no target offers that"
    )


def test_skipped_keep_the_listing_order_and_warnings_are_recorded() -> None:
    servers = [
        server("a", ha=False),
        server("b", fl=flavor(pci_passthrough__alias="x:1")),
        server("c", priority="x"),
        server("d", fl={"id": "f1"}),  # an old microversion's flavor reference: no details
    ]
    selection = select_instances(
        servers,
        SelectionPolicy(),
        failed_host="dead-1",
        disks={"b": BFV, "c": IMAGE_WITH_VOLUME, "d": BFV},
        targets=[host("t1")],
    )
    assert [(s.server.id, s.reason) for s in selection.skipped] == [
        ("a", Reason.NOT_HA_ENABLED),
        ("b", Reason.PCI_PASSTHROUGH),
    ]
    assert [s.server.id for s in selection.non_evacuable] == ["b"]
    assert [s.id for s in selection.to_move] == ["c", "d"]
    assert selection.warnings == (
        "vm-c (c): its image-backed root disk is rebuilt from the image; volumes keep data",
        "vm-c (c): metadata lazarus:priority='x' is not an integer; using 0",
        "vm-d (d): no flavor details in the server record: its room cannot be checked",
    )


@pytest.mark.parametrize(
    ("fl", "disks", "demand"),
    [
        (flavor(2, 4096, disk=20), BFV, Demand(vcpus=2, ram_mb=4096)),  # a volume root takes no local disk
        (flavor(2, 4096, disk=20), IMAGE_WITH_VOLUME, Demand(vcpus=2, ram_mb=4096, disk_gb=20)),
        (
            flavor(2, 4096, disk=20),
            DiskFacts(None),
            Demand(vcpus=2, ram_mb=4096, disk_gb=20),
        ),  # unknown: counted
        (
            flavor(2, 4096, disk=20, ephemeral=10, swap=512),
            IMAGE_ONLY,
            Demand(vcpus=2, ram_mb=4096, disk_gb=31),
        ),
        (flavor(2, 4096, disk=0, ephemeral=5, swap=2048), BFV, Demand(vcpus=2, ram_mb=4096, disk_gb=7)),
        (flavor(8, 16384, hw__cpu_policy="dedicated"), BFV, Demand(pcpus=8, ram_mb=16384)),
        (flavor(8, 16384, hw__cpu_policy="DEDICATED"), BFV, Demand(pcpus=8, ram_mb=16384)),
        ({**flavor(2, 4096), "swap": ""}, BFV, Demand(vcpus=2, ram_mb=4096)),  # older Novas: swap ""
        ({"id": "f1", "links": []}, BFV, None),
        ({"vcpus": 2}, BFV, None),
    ],
)
def test_demand_from_the_embedded_flavor(fl: dict[str, Any], disks: DiskFacts, demand: Demand | None) -> None:
    assert needs_of(server("a", fl=fl), disks).demand == demand


@pytest.mark.parametrize(
    ("image", "volumes", "facts"),
    [
        ("", [{"id": "v1"}], DiskFacts(True, 1)),  # booted from volume: Nova says image ""
        ({"id": "img-1", "links": []}, [], DiskFacts(False, 0)),
        ({"id": "img-1"}, [{"id": "v1"}, {"id": "v2"}], DiskFacts(False, 2)),
        (None, None, DiskFacts(None, 0)),  # a partial record (a down cell): proves nothing
        ({}, [], DiskFacts(None, 0)),
    ],
)
def test_disk_facts_from_nova(image: object, volumes: object, facts: DiskFacts) -> None:
    assert DiskFacts.from_nova(image, volumes) == facts


def test_the_failed_host_does_not_count_as_offering_a_layout() -> None:
    pinned = server("a", fl=flavor(4, hw__cpu_policy="dedicated"))
    selection = select([pinned], [host("dead-1", pcpus=16), host("t1")])
    assert [s.reason for s in selection.skipped] == [Reason.NUMA_UNSATISFIABLE]
