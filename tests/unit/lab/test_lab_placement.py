"""What the lab cloud does for placing a dead host's instances, as the real test bed (Nova 34)
showed: host figures (Nova's 512 MB reserve, claims, a dead host that keeps counting), volume-
backed servers, the scheduler's choice, targeted evacuations Nova refuses, rebuild faults per
target host. Driven by a fake clock."""

from __future__ import annotations

import pytest

from receiver.lab import model, views
from receiver.lab.cloud import Cloud
from receiver.lab.model import Flavor
from tests.unit.lab.helpers import FakeClock, elapse, fence

pytestmark = pytest.mark.unit

NO_ROOM = "No valid host was found. "  # Placement offered no host: Nova gives no reason
FILTERED = "No valid host was found. There are not enough hosts available."  # the filters refused


def figures(cloud: Cloud, host: str) -> tuple[int, int, int]:
    record = cloud.hosts[host]
    return (record.vcpus_used, record.memory_mb_used, record.local_gb_used)


def disable(cloud: Cloud, host: str) -> None:
    cloud.update_service(cloud.hosts[host].service_id, status="disabled", disabled_reason="reserved spare")


def test_an_empty_host_reports_nova_s_reserved_memory_as_used(cloud: Cloud) -> None:
    assert figures(cloud, "node-01") == (0, 512, 0)
    cloud.add_server("vm", "node-01", "m1.small")
    assert figures(cloud, "node-01") == (1, 512 + 2048, 20)


def test_a_volume_backed_server_takes_no_local_root_disk(cloud: Cloud) -> None:
    cloud.add_flavor(
        Flavor(id="9", name="with.ephemeral", vcpus=2, ram=1024, disk=40, ephemeral=5, swap=2048)
    )
    server = cloud.add_server("vm", "node-01", "with.ephemeral", boot_from_volume=True, volumes=2)
    assert figures(cloud, "node-01") == (2, 512 + 1024, 5 + 2)  # ephemeral and swap stay local
    assert server.root_volume is not None and len(server.volumes) == 2
    body = views.server_detail(cloud, server, "http://lab", 0.0, (2, 94))
    assert body["image"] == ""
    attached = body["os-extended-volumes:volumes_attached"]
    assert [v["id"] for v in attached] == [server.root_volume, *server.volumes]
    assert all(v["delete_on_termination"] is False for v in attached)
    assert views.server_detail(cloud, server, "http://lab", 0.0, (2, 1))[
        "os-extended-volumes:volumes_attached"
    ] == [{"id": v} for v in [server.root_volume, *server.volumes]]
    image_backed = cloud.add_server("vm2", "node-01", "m1.small")
    assert views.server_detail(cloud, image_backed, "http://lab", 0.0, (2, 94))["image"]["id"]
    cloud.delete_server(server.id)
    assert figures(cloud, "node-01") == (1, 512 + 2048, 20)


def test_a_dead_host_keeps_counting_an_evacuated_server_until_its_compute_runs(
    cloud: Cloud, clock: FakeClock
) -> None:
    server = cloud.add_server("vm", "node-01", "m1.small")
    cloud.set_power("node-01", on=False)
    fence(cloud, "node-01")
    cloud.evacuate(server.id, "spare-01", (2, 94))
    cloud.tick()
    assert figures(cloud, "spare-01") == (1, 512 + 2048, 20)  # Placement's claim counts at once
    elapse(cloud, clock, 2)
    assert server.host == "spare-01" and figures(cloud, "spare-01") == (1, 512 + 2048, 20)
    assert figures(cloud, "node-01") == (1, 512 + 2048, 20)  # nobody updates a dead host's figures
    cloud.set_power("node-01", on=True)  # its nova-compute starts and counts what is there
    assert figures(cloud, "node-01") == (0, 512, 0)


def test_the_scheduler_takes_only_enabled_up_hosts_with_room(cloud: Cloud, clock: FakeClock) -> None:
    cloud.add_flavor(Flavor(id="9", name="big", vcpus=2, ram=12000, disk=20))
    servers = [cloud.add_server(f"vm{i}", "node-01", "big") for i in range(3)]
    cloud.set_power("node-01", on=False)
    fence(cloud, "node-01")
    disable(cloud, "spare-01")  # a reserved spare: the scheduler never picks it
    for server in servers:
        cloud.evacuate(server.id, None, (2, 94))
        elapse(cloud, clock, 2)
    landed = [s for s in servers if s.status == "ACTIVE"]
    assert [s.host for s in landed] == ["node-02"]  # 16384 MB: one 12000 MB server and no more
    failed = [s for s in servers if s.status == "ERROR"]
    assert len(failed) == 2 and all(s.host == "node-01" and s.fault for s in failed)
    assert all(s.fault is not None and s.fault["message"] == NO_ROOM for s in failed)


@pytest.mark.parametrize(
    ("make_unfit", "message"),
    [
        (disable, NO_ROOM),  # disabled: Placement leaves it out (COMPUTE_STATUS_DISABLED)
        (lambda cloud, host: cloud.set_compute_running(host, False), FILTERED),  # down: ComputeFilter
        (
            lambda cloud, host: cloud.update_service(cloud.hosts[host].service_id, forced_down=True),
            FILTERED,
        ),
        (lambda cloud, host: cloud.add_server("filler", host, "huge"), NO_ROOM),  # full: Placement
    ],
    ids=["disabled", "compute-dead", "forced-down", "full"],
)
def test_a_targeted_evacuation_nova_refuses_ends_in_error_on_the_source(
    cloud: Cloud, clock: FakeClock, make_unfit: object, message: str
) -> None:
    """Accepted by the API; the conductor's scheduling fails: ERROR on the source with its power
    state untouched, migration `error` naming the requested host, nothing claimed there."""
    assert callable(make_unfit)
    cloud.add_flavor(Flavor(id="9", name="huge", vcpus=8, ram=15000, disk=100))
    server = cloud.add_server("vm", "node-01", "m1.small", stopped=True)
    fence(cloud, "node-01")
    make_unfit(cloud, "spare-01")
    clock.advance(30)  # a dead compute's service is down after service_down_time
    before = figures(cloud, "spare-01")
    migration = cloud.evacuate(server.id, "spare-01", (2, 94))
    cloud.tick()
    assert (server.status, server.vm_state, server.task_state, server.host) == (
        "ERROR",
        "error",
        None,
        "node-01",
    )
    assert server.power_state == model.SHUTDOWN
    assert server.fault is not None and server.fault["message"] == message
    assert (migration.status, migration.source_compute, migration.dest_compute) == (
        "error",
        "node-01",
        "spare-01",
    )
    assert figures(cloud, "spare-01") == before
    [event] = [e for a in cloud.actions.of(server.id) if a.action == "evacuate" for e in a.events]
    assert (event.event, event.host, event.result) == ("rebuild_server", "controller", "Error")


def test_a_retried_evacuation_from_error_comes_up_active_even_if_it_was_shutoff(
    cloud: Cloud, clock: FakeClock
) -> None:
    server = cloud.add_server("vm", "node-01", "m1.small", stopped=True)
    fence(cloud, "node-01")
    disable(cloud, "spare-01")
    cloud.evacuate(server.id, "spare-01", (2, 94))
    cloud.tick()
    assert server.status == "ERROR"
    cloud.update_service(cloud.hosts["spare-01"].service_id, status="enabled")
    cloud.evacuate(server.id, "spare-01", (2, 94))
    elapse(cloud, clock, 2)
    assert (server.status, server.host, server.power_state) == ("ACTIVE", "spare-01", model.RUNNING)


def test_a_pci_server_finds_no_host(cloud: Cloud, clock: FakeClock) -> None:
    cloud.add_flavor(
        Flavor(id="9", name="gpu", vcpus=1, ram=512, disk=1, extra_specs={"pci_passthrough:alias": "gpu:1"})
    )
    server = cloud.add_server("vm", "node-01", "gpu")
    fence(cloud, "node-01")
    cloud.evacuate(server.id, None, (2, 94))
    cloud.tick()
    assert (server.status, server.host) == ("ERROR", "node-01")
    assert server.fault is not None and server.fault["message"] == FILTERED  # PciPassthroughFilter


def test_a_fault_on_a_target_host_fails_every_rebuild_there(cloud: Cloud, clock: FakeClock) -> None:
    """As a rebuild that fails on the destination in Nova: ERROR where the server was, migration
    `failed`, the destination's allocation dropped; another host then takes it."""
    first = cloud.add_server("a", "node-01", "m1.small")
    second = cloud.add_server("b", "node-01", "m1.small")
    fence(cloud, "node-01")
    cloud.fail_evacuation(target="spare-01")
    records = [cloud.evacuate(s.id, "spare-01", (2, 94)) for s in (first, second)]
    elapse(cloud, clock, 2)
    for server, record in zip((first, second), records, strict=True):
        assert (server.status, server.host, server.task_state) == ("ERROR", "node-01", None)
        assert (record.status, record.dest_compute) == ("failed", "spare-01")
    assert figures(cloud, "spare-01") == (0, 512, 0)
    cloud.evacuate(first.id, "node-02", (2, 94))
    elapse(cloud, clock, 2)
    assert (first.status, first.host) == ("ACTIVE", "node-02")
    cloud.fail_evacuation(target="spare-01", fail=False)
    cloud.evacuate(second.id, "spare-01", (2, 94))
    elapse(cloud, clock, 2)
    assert (second.status, second.host) == ("ACTIVE", "spare-01")


def test_a_fault_for_one_server_on_one_target(cloud: Cloud, clock: FakeClock) -> None:
    doomed = cloud.add_server("a", "node-01", "m1.small")
    lucky = cloud.add_server("b", "node-01", "m1.small")
    fence(cloud, "node-01")
    cloud.fail_evacuation(doomed.id, target="spare-01")
    for server in (doomed, lucky):
        cloud.evacuate(server.id, "spare-01", (2, 94))
    elapse(cloud, clock, 2)
    assert (doomed.status, lucky.status) == ("ERROR", "ACTIVE")
    with pytest.raises(ValueError, match="name a server"):
        cloud.fail_evacuation()
