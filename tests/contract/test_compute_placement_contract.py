"""The `Compute` port's calls for placing a dead host's instances, held by `NovaCompute` against
every target in conftest.py: locks with a reason, hypervisor figures, host aggregates, the
disks of a server, and what Nova does with an evacuation to a host that cannot take it.

What Nova 34 does here, as seen on the real test bed (and mirrored by the lab):
- `lock` twice is accepted both times. By the server's own project the second changes
  nothing (the first reason stays); by another project's admin it takes the lock over and
  a new reason replaces the old. `unlock` of an unlocked server is accepted too.
- os-hypervisors (<= 2.87) counts a claim at once (a boot, an evacuation's destination); a
  dead host keeps counting the servers that left it until its nova-compute runs again.
- `add_host` answers 409 for a host already in the aggregate, and also for refusals (the host
  is in an aggregate of another availability zone, or its instances would change zone): the
  adapter tells them apart.
- An evacuation to a named host that is disabled, down or full is accepted (200); Nova's
  scheduler then finds no valid host: the server goes to ERROR on its (dead) source host,
  task_state None, power_state untouched, migration `error` naming the requested host, fault
  "No valid host was found. ..." (no reason when the host is disabled or full, "There are
  not enough hosts available." when it is merely down). Evacuating it again is allowed
  (ERROR is an evacuable state) and it then comes up ACTIVE, even if it was SHUTOFF before.

Markers come from the target parameter, as in test_compute_contract.py.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from receiver.domain.capacity import DiskFacts
from receiver.domain.model import Aggregate
from receiver.errors import ComputeRejected, NotFound
from tests.contract.fenced import evacuate_and_wait, fenced, settle, up_hosts, wait_server

if TYPE_CHECKING:
    from tests.contract.conftest import Target
    from tests.contract.fenced import Fenced

pytestmark = [
    pytest.mark.filterwarnings("ignore:Support for InfluxDB requires:PendingDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'service_type' parameter is unnecesary:PendingDeprecationWarning"),
]
__all__ = ["fenced"]  # the module-scoped power-loss fixture, used here

UNKNOWN_HOST = "lazarus-contract-no-such-host"
UNKNOWN_SERVER = "00000000-0000-4000-8000-00000000dead"
UNKNOWN_AGGREGATE = "987654321"
NO_VALID_HOST = "No valid host was found."

# The servers the `fenced` fixture boots on the victim before it loses power: role -> SHUTOFF.
FENCED_SERVERS = {
    "refused": False,
    "refused-stopped": True,
    "refused-down": False,
    "locked": False,
    "counted": False,
}


# ----------------------------------------------------------------------------- locks


def test_lock_with_a_reason_twice_then_unlock_twice(target: Target) -> None:
    server_id = target.boot(target.victim)
    compute = target.compute()
    compute.lock(server_id, "lazarus recovery r-1")
    locked = compute.server(server_id)
    assert (locked.locked, locked.locked_reason) == (True, "lazarus recovery r-1")

    compute.lock(server_id, "lazarus recovery r-2")  # accepted: locking is idempotent
    again = compute.server(server_id)
    owner = target.admin.server(server_id)["tenant_id"] == target.project  # type: ignore[index]
    # Nova: the owner's second lock changes nothing; another project's admin takes the lock over.
    assert again.locked and again.locked_reason == (
        "lazarus recovery r-1" if owner else "lazarus recovery r-2"
    )

    compute.unlock(server_id)
    compute.unlock(server_id)  # accepted: unlocking an unlocked server is not an error
    unlocked = compute.server(server_id)
    assert (unlocked.locked, unlocked.locked_reason) == (False, None)


def test_lock_cuts_a_long_reason_to_what_nova_takes(target: Target) -> None:
    server_id = target.boot(target.victim)
    compute = target.compute()
    compute.lock(server_id, "r" * 300)  # Nova refuses more than 255 characters (400)
    assert compute.server(server_id).locked_reason == "r" * 255
    compute.unlock(server_id)


def test_lock_and_unlock_of_an_unknown_server_are_not_found(target: Target) -> None:
    compute = target.compute()
    calls: list[Callable[[], None]] = [
        lambda: compute.lock(UNKNOWN_SERVER, "x"),
        lambda: compute.unlock(UNKNOWN_SERVER),
    ]
    for call in calls:
        with pytest.raises(NotFound) as info:
            call()
        assert UNKNOWN_SERVER in str(info.value) and target.token not in str(info.value)


# ----------------------------------------------------------------------------- hypervisors


FIGURES = ("vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "local_gb", "local_gb_used")


def _hypervisors_between_two_equal_raw_reads(target: Target) -> tuple[dict[str, Any], dict[str, Any]]:
    """Our reports, read between two raw reads that agree. On real Nova a host's periodic
    resource update (servers an earlier test deleted) may land between two reads; then the
    reads are taken again, so the comparison stays exact."""
    for _ in range(5):
        before = target.admin.hypervisors_287()
        reports = {r.host: r for r in target.compute().hypervisors()}
        after = target.admin.hypervisors_287()
        if all({f: before[h][f] for f in FIGURES} == {f: after[h][f] for f in FIGURES} for h in after):
            return reports, after
        time.sleep(1)
    pytest.fail("Nova's hypervisor figures kept changing between reads")


def test_hypervisors_report_every_compute_host(target: Target) -> None:
    reports, raw = _hypervisors_between_two_equal_raw_reads(target)
    assert set(target.admin.compute_hosts()) <= reports.keys()
    for host, report in reports.items():
        assert report.vcpus > 0 and report.memory_mb > 0 and report.local_gb > 0, report
        assert min(report.vcpus_used, report.memory_mb_used, report.local_gb_used) >= 0, report
        assert report.memory_mb_used >= 512, report  # Nova's reserved_host_memory_mb counts as used
        assert {f: getattr(report, f) for f in FIGURES} == {f: raw[host][f] for f in FIGURES}
        assert report.enabled == (raw[host]["status"] == "enabled")
        assert report.up == (raw[host]["state"] == "up")


def test_hypervisors_count_a_booted_server_at_once(target: Target) -> None:
    """A boot's claim shows at once. Some releases show only at the host's next periodic update
    on real Nova (a deleted server that had arrived by evacuation: ~40 s seen), so figures may
    exceed what the host runs; they never fall short of it."""
    host = target.victim
    server_id = target.boot(host)
    report = next(r for r in target.compute().hypervisors() if r.host == host)
    on_host = [s for s in target.admin.all_servers() if s.get("OS-EXT-SRV-ATTR:host") == host]
    assert server_id in {s["id"] for s in on_host}
    vcpus = sum(s["flavor"]["vcpus"] for s in on_host)
    ram = sum(s["flavor"]["ram"] for s in on_host)
    assert report.vcpus_used >= vcpus and report.memory_mb_used >= 512 + ram, (report, vcpus, ram)
    if target.name == "lab":  # the lab releases a deleted server's resources at once
        assert (report.vcpus_used, report.memory_mb_used) == (vcpus, 512 + ram)


def test_hypervisors_page_with_one_request_per_page(target: Target, http_requests: list[str]) -> None:
    compute = target.compute_warm(page_size=1)
    http_requests.clear()
    reports = compute.hypervisors()
    # One node per host on both targets; Nova adds a `next` link to every full page.
    assert len(http_requests) == len(reports) + 1, http_requests
    assert all(r.startswith("GET ") and "/os-hypervisors/detail" in r for r in http_requests)
    assert len({r.host for r in reports}) == len(reports)


def test_each_new_operation_is_one_request(target: Target, http_requests: list[str]) -> None:
    server_id = target.boot(target.victim)
    aggregate_id = target.admin.create_aggregate(f"lazarus-contract-{uuid.uuid4().hex[:8]}")
    compute = target.compute_warm()
    calls: dict[str, Callable[[], object]] = {
        "lock": lambda: compute.lock(server_id, "lazarus contract: counting"),
        "unlock": lambda: compute.unlock(server_id),
        "hypervisors": compute.hypervisors,
        "aggregates": compute.aggregates,
        "add_to_aggregate": lambda: compute.add_to_aggregate(aggregate_id, target.victim),
    }
    counts: dict[str, list[str]] = {}
    try:
        for name, call in calls.items():
            http_requests.clear()
            call()
            counts[name] = list(http_requests)
        http_requests.clear()
        compute.add_to_aggregate(aggregate_id, target.victim)  # the 409, then the read that explains it
        counts["add_to_aggregate again"] = list(http_requests)
    finally:
        target.admin.delete_aggregate(aggregate_id)
    expected = dict.fromkeys(calls, 1) | {"add_to_aggregate again": 2}
    assert {name: len(sent) for name, sent in counts.items()} == expected, counts


# ----------------------------------------------------------------------------- aggregates


def test_aggregates_list_add_a_host_and_add_it_again(target: Target) -> None:
    name = f"lazarus-contract-{uuid.uuid4().hex[:8]}"
    aggregate_id = target.admin.create_aggregate(name)
    try:
        compute = target.compute()
        listed = {a.id: a for a in compute.aggregates()}
        assert listed[aggregate_id] == Aggregate(aggregate_id, name, (), None)
        compute.add_to_aggregate(aggregate_id, target.victim)
        compute.add_to_aggregate(aggregate_id, target.victim)  # already a member: success
        [aggregate] = [a for a in compute.aggregates() if a.id == aggregate_id]
        assert aggregate.hosts == (target.victim,)
        with pytest.raises(NotFound, match=UNKNOWN_HOST):
            compute.add_to_aggregate(aggregate_id, UNKNOWN_HOST)
        with pytest.raises(NotFound, match=UNKNOWN_AGGREGATE):
            compute.add_to_aggregate(UNKNOWN_AGGREGATE, target.victim)
    finally:
        target.admin.delete_aggregate(aggregate_id)


def test_add_to_aggregate_that_would_move_instances_to_another_zone_is_refused(target: Target) -> None:
    """Nova's 409 for a host whose instances would change availability zone is a refusal, not
    success (the same status as for a host already in the aggregate)."""
    target.boot(target.victim)
    zone = f"lazarus-contract-{uuid.uuid4().hex[:8]}"
    aggregate_id = target.admin.create_aggregate(zone, zone=zone)
    try:
        compute = target.compute()
        with pytest.raises(ComputeRejected) as info:
            compute.add_to_aggregate(aggregate_id, target.victim)
        error = info.value
        assert error.status == 409 and error.request_id and error.request_id in str(error)
        assert "availability zone of the host would change" in str(error) and target.token not in str(error)
        [aggregate] = [a for a in compute.aggregates() if a.id == aggregate_id]
        assert (aggregate.availability_zone, aggregate.hosts) == (zone, ())
    finally:
        target.admin.delete_aggregate(aggregate_id)


# ----------------------------------------------------------------------------- disks


def test_an_image_backed_server_has_no_volumes(target: Target) -> None:
    server_id = target.boot(target.victim)
    assert target.compute().server(server_id).disks == DiskFacts(root_on_volume=False, volumes=0)


def test_a_volume_backed_server_shows_its_volumes(target: Target) -> None:
    if target.create_volume_server is None:
        pytest.skip(f"{target.name}: no Cinder here (the real test bed stubs none), lab only")
    name = f"lazarus-contract-{uuid.uuid4().hex[:8]}"
    server_id = target.create_volume_server(target.victim, name, 2)
    target.booted.append(server_id)
    raw = target.admin.server(server_id)
    assert raw is not None and raw["image"] == ""  # Nova's mark of a server booted from a volume
    attached = raw["os-extended-volumes:volumes_attached"]
    assert len(attached) == 3 and all(v["delete_on_termination"] is False for v in attached)
    # The root volume is attached too, so it counts among the volumes.
    assert target.compute().server(server_id).disks == DiskFacts(root_on_volume=True, volumes=3)
    on_host = {s.id: s for s in target.compute().servers_on(target.victim)}
    assert on_host[server_id].disks == DiskFacts(root_on_volume=True, volumes=3)


# ----------------------------------------------------------------------------- after power loss


def test_evacuate_to_a_disabled_host_fails_and_can_be_retried(fenced: Fenced, target_session: Target) -> None:
    """Nova accepts the request, then its scheduler refuses the disabled host: ERROR on the dead
    source, migration `error`. Retried once the host is enabled, the server lands ACTIVE, also
    the one that was SHUTOFF (Nova restores a stopped state only for a server evacuated from
    `stopped`; this one is evacuated from `error`)."""
    admin, compute = fenced.admin, fenced.compute
    destination = up_hosts(target_session, fenced.host)[0]
    admin.update_service(destination, status="disabled", disabled_reason="lazarus contract: spare")
    try:
        for role, power_state in (("refused", 1), ("refused-stopped", 4)):
            server_id = fenced.servers[role]
            compute.evacuate(server_id, destination)  # accepted: Nova checks the host later
            failed = settle(compute, server_id, lambda s: s.task_state is None and s.status != "REBUILD")
            assert (failed.status, failed.vm_state, failed.host) == ("ERROR", "error", fenced.host)
            assert failed.power_state == power_state  # Nova's record of the guest is untouched
            fault = (admin.server(server_id) or {}).get("fault") or {}
            assert fault.get("message") == "No valid host was found. ", fault
            [record] = compute.evacuations(fenced.host, server_id)
            assert (record.status, record.dest_host) == ("error", destination)
    finally:
        admin.update_service(destination, status="enabled")
    for role in ("refused", "refused-stopped"):
        landed = evacuate_and_wait(fenced, role, "ACTIVE", target_host=destination)
        assert (landed.host, landed.vm_state) == (destination, "active")
        records = compute.evacuations(fenced.host, landed.id)
        assert sorted(r.status for r in records) in (["done", "error"], ["completed", "error"]), records


def test_evacuate_to_a_host_that_is_down_fails(fenced: Fenced, target_session: Target) -> None:
    """A forced-down (not disabled) host passes Placement but not Nova's ComputeFilter."""
    admin, compute = fenced.admin, fenced.compute
    destination = up_hosts(target_session, fenced.host)[-1]
    server_id = fenced.servers["refused-down"]
    admin.update_service(destination, forced_down=True)
    try:
        compute.evacuate(server_id, destination)
        failed = settle(compute, server_id, lambda s: s.task_state is None and s.status != "REBUILD")
    finally:
        admin.update_service(destination, forced_down=False)
    assert (failed.status, failed.host) == ("ERROR", fenced.host)
    fault = (admin.server(server_id) or {}).get("fault") or {}
    assert fault.get("message") == f"{NO_VALID_HOST} There are not enough hosts available.", fault


def test_a_locked_server_is_evacuated_and_keeps_its_lock(fenced: Fenced) -> None:
    """Evacuate is an admin's action, which a lock does not stop; the lock travels with the server."""
    server_id = fenced.servers["locked"]
    fenced.compute.lock(server_id, "lazarus recovery r-locked")
    server = evacuate_and_wait(fenced, "locked", "ACTIVE")
    assert (server.locked, server.locked_reason) == (True, "lazarus recovery r-locked")
    fenced.compute.unlock(server_id)
    assert wait_server(fenced.compute, server_id, lambda s: not s.locked).locked_reason is None


def test_a_dead_host_keeps_counting_the_servers_that_left_it(fenced: Fenced) -> None:
    """Only a host's own nova-compute writes its figures: while it is dead they stay as they were."""
    server = evacuate_and_wait(fenced, "counted", "ACTIVE")
    reports = {r.host: r for r in fenced.compute.hypervisors()}
    source, destination = reports[fenced.host], reports[str(server.host)]
    assert source.vcpus_used >= len(FENCED_SERVERS), source  # 1 vCPU each, all counted still
    assert (source.up, source.enabled) == (False, False)
    assert destination.vcpus_used >= 1 and destination.up, destination  # the claim counts at once
