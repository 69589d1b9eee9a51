"""Evacuation in the lab cloud as Nova 34 does it (see receiver/lab/evacuation.py for what the
real test bed showed): duplicates, failures on the destination, waiting destinations, and the
migration indexes. Driven by a fake clock."""

from __future__ import annotations

import pytest

from receiver.lab.cloud import Cloud
from receiver.lab.model import NovaError
from tests.unit.lab.helpers import FakeClock, elapse, fence

pytestmark = pytest.mark.unit


def test_a_second_evacuate_in_flight_is_accepted_and_the_loser_errors(cloud: Cloud, clock: FakeClock) -> None:
    server = cloud.add_server("vm", "node-01", "m1.small")
    fence(cloud, "node-01")
    first = cloud.evacuate(server.id, None, (2, 94))
    cloud.tick()  # the first request's conductor
    clock.advance(0.1)
    second = cloud.evacuate(server.id, None, (2, 94))  # still rebuilding: Nova accepts it
    assert (second.status, second.id) == ("accepted", first.id + 1)
    elapse(cloud, clock, 1.9)  # the first rebuild lands (its conductor ran 0.1 s earlier)
    assert (server.status, first.status) == ("ACTIVE", "done")
    destination = server.host
    elapse(cloud, clock, 0.1)  # the second rebuild finds task_state None and fails
    assert (server.status, server.vm_state, server.task_state, server.host) == (
        "ERROR",
        "error",
        None,
        destination,
    )
    assert server.fault is not None
    assert server.fault["message"] == (
        f"Conflict updating instance {server.id}. Expected: {{'task_state': ['rebuilding']}}. "
        "Actual: {'task_state': None}"
    )
    # Both rebuilds used the first record: `done`, then overwritten `failed`; the second waits.
    assert (first.status, first.dest_compute) == ("failed", destination)
    assert (second.status, second.dest_compute) == ("accepted", None)
    assert destination is not None and cloud.hosts[destination].vcpus_used == 1
    assert cloud.hosts["node-01"].vcpus_used == 0
    cloud.set_power("node-01", on=False)
    cloud.set_power("node-01", on=True)
    assert (first.status, second.status) == ("failed", "completed")


def test_once_landed_a_second_evacuate_is_refused(cloud: Cloud, clock: FakeClock) -> None:
    server = cloud.add_server("vm", "node-01", "m1.small")
    fence(cloud, "node-01")
    cloud.evacuate(server.id, None, (2, 94))
    elapse(cloud, clock, 2)
    with pytest.raises(NovaError) as caught:
        cloud.evacuate(server.id, None, (2, 94))
    assert caught.value.status == 400 and f"Compute service of {server.host}" in caught.value.message


def test_a_server_stuck_in_a_task_is_evacuated(cloud: Cloud, clock: FakeClock) -> None:
    server = cloud.add_server("vm", "node-01", "m1.small")
    cloud.set_power("node-01", on=False)
    fence(cloud, "node-01")
    cloud.stop_server(server.id)  # accepted; node-01's compute will never carry it out
    assert (server.status, server.task_state) == ("ACTIVE", "powering-off")
    migration = cloud.evacuate(server.id, None, (2, 94))
    elapse(cloud, clock, 2)
    assert (server.status, server.task_state, migration.status) == ("ACTIVE", None, "done")


def test_a_destination_that_hangs_keeps_the_server_rebuilding(cloud: Cloud, clock: FakeClock) -> None:
    server = cloud.add_server("vm", "node-01", "m1.small")
    fence(cloud, "node-01")
    cloud.hang("spare-01")  # its service still looks up: the scheduler may choose it
    migration = cloud.evacuate(server.id, "spare-01", (2, 94))
    elapse(cloud, clock, 60)
    assert (server.status, server.host, migration.status) == ("REBUILD", "node-01", "accepted")
    assert cloud.hosts["spare-01"].vcpus_used == 1  # placement allocated it already
    cloud.hang("spare-01", hung=False)
    elapse(cloud, clock, 0)
    assert (server.status, server.host, migration.status) == ("ACTIVE", "spare-01", "done")


def test_evacuation_checks_in_novas_order(cloud: Cloud, clock: FakeClock) -> None:
    with pytest.raises(NovaError) as caught:
        cloud.evacuate("no-such-server", "no-such-host", (2, 94))
    assert (caught.value.status, caught.value.message) == (404, "Instance no-such-server could not be found.")
    server = cloud.add_server("vm", "node-01", "m1.small")
    with pytest.raises(NovaError) as caught:
        cloud.evacuate(server.id, "no-such-host", (2, 94))
    assert (caught.value.status, caught.value.message) == (404, "Compute host no-such-host not found.")
    with pytest.raises(NovaError) as caught:
        cloud.evacuate(server.id, "node-01", (2, 94))
    assert caught.value.status == 400 and "can't be the same" in caught.value.message


def test_a_server_that_never_launched_cannot_be_evacuated(cloud: Cloud, clock: FakeClock) -> None:
    cloud.hang("spare-01")
    server = cloud.boot_server(
        "new", "m1.small", host="spare-01", metadata={}, project_id="admin", user_id="admin"
    )
    server.vm_state, server.task_state = "error", None  # as after a failed build
    clock.advance(11)
    with pytest.raises(NovaError) as caught:
        cloud.evacuate(server.id, None, (2, 94))
    assert caught.value.status == 409 and "launched_at None" in caught.value.message


def test_a_requested_destination_is_recorded_at_once(cloud: Cloud) -> None:
    server = cloud.add_server("vm", "node-01", "m1.small")
    fence(cloud, "node-01")
    migration = cloud.evacuate(server.id, "spare-01", (2, 94))
    assert (migration.status, migration.dest_compute) == ("accepted", "spare-01")
    assert cloud.list_migrations(host="spare-01") == [migration]


def test_migration_queries_use_the_indexes(cloud: Cloud, clock: FakeClock) -> None:
    servers = [cloud.add_server(f"vm-{i}", "node-01", "m1.small") for i in range(3)]
    other = cloud.add_server("other", "node-02", "m1.small")
    fence(cloud, "node-01")
    fence(cloud, "node-02")
    records = [cloud.evacuate(s.id, "spare-01", (2, 94)) for s in [*servers, other]]
    elapse(cloud, clock, 2)
    assert cloud.list_migrations(source_compute="node-01") == records[:3]
    assert cloud.list_migrations(instance_uuid=other.id) == [records[3]]
    assert cloud.list_migrations(instance_uuid=other.id, source_compute="node-01") == []
    assert cloud.list_migrations(host="spare-01") == records
    assert cloud.list_migrations(host="node-02") == [records[3]]
    assert cloud.list_migrations() == records
