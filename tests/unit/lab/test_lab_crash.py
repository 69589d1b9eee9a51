"""Guests that stop on their own, and Nova's power-state sync (nova/compute/manager.py
_sync_instance_power_state): Nova's record keeps saying active and RUNNING until the sync runs,
which then records the power state and calls the stop API. Driven by a fake clock."""

from __future__ import annotations

import pytest

from receiver.lab import model, views
from receiver.lab.cloud import Cloud
from receiver.lab.model import Instance, NovaError
from tests.unit.lab.helpers import FakeClock, elapse, fence

pytestmark = pytest.mark.unit


def nova_view(server: Instance) -> tuple[str, str, str | None, int]:
    """What Nova's API shows: status, vm_state, task_state, OS-EXT-STS:power_state."""
    return server.status, server.vm_state, server.task_state, server.power_state


def test_nova_keeps_saying_running_until_its_sync_runs(cloud: Cloud, clock: FakeClock) -> None:
    server = cloud.add_server("vm", "node-01", "m1.small")
    updated = server.updated
    cloud.crash(server.id)
    assert server.hypervisor_power_state == model.SHUTDOWN
    elapse(cloud, clock, 3600)  # no sync: nothing in Nova ever notices
    assert nova_view(server) == ("ACTIVE", "active", None, model.RUNNING)
    assert server.updated == updated
    assert cloud.hosts["node-01"].running_vms == 1  # Nova's count follows its record


def test_the_sync_records_the_state_and_stops_the_instance(cloud: Cloud, clock: FakeClock) -> None:
    server = cloud.add_server("vm", "node-01", "m1.small")
    cloud.crash(server.id, model.SHUTDOWN, sync_after=15)
    elapse(cloud, clock, 14.9)
    assert nova_view(server) == ("ACTIVE", "active", None, model.RUNNING)
    elapse(cloud, clock, 0.1)
    assert nova_view(server) == ("ACTIVE", "active", "powering-off", model.SHUTDOWN)
    # A stop that comes now gets Nova's 409, with Nova's own message.
    with pytest.raises(NovaError, match="while it is in task_state powering-off") as caught:
        cloud.stop_server(server.id)
    assert caught.value.status == 409
    with pytest.raises(NovaError, match="while it is in vm_state active"):
        cloud.start_server(server.id)
    elapse(cloud, clock, 1)
    assert nova_view(server) == ("SHUTOFF", "stopped", None, model.SHUTDOWN)
    assert cloud.hosts["node-01"].running_vms == 0
    with pytest.raises(NovaError, match="while it is in vm_state stopped"):
        cloud.stop_server(server.id)
    cloud.start_server(server.id)
    elapse(cloud, clock, 1)
    assert nova_view(server) == ("ACTIVE", "active", None, model.RUNNING)
    assert server.hypervisor_power_state == model.RUNNING


def test_a_crashed_guest_is_recorded_crashed_then_stopped(cloud: Cloud, clock: FakeClock) -> None:
    server = cloud.add_server("vm", "node-01", "m1.small")
    cloud.crash(server.id, model.CRASHED, sync_after=0)
    elapse(cloud, clock, 0)
    assert nova_view(server) == ("ACTIVE", "active", "powering-off", model.CRASHED)
    elapse(cloud, clock, 1)
    # Nova's stop_instance destroys the preserved domain: the driver then says SHUTDOWN.
    assert nova_view(server) == ("SHUTOFF", "stopped", None, model.SHUTDOWN)


def test_stop_and_start_before_the_sync_recover_it_and_the_sync_finds_nothing(
    cloud: Cloud, clock: FakeClock
) -> None:
    server = cloud.add_server("vm", "node-01", "m1.small")
    cloud.crash(server.id, sync_after=5)
    cloud.stop_server(server.id)  # Nova's API accepts a stop of an "active" instance
    elapse(cloud, clock, 1)
    assert nova_view(server) == ("SHUTOFF", "stopped", None, model.SHUTDOWN)
    cloud.start_server(server.id)
    elapse(cloud, clock, 5)
    assert nova_view(server) == ("ACTIVE", "active", None, model.RUNNING)
    assert server.hypervisor_power_state == model.RUNNING


def test_a_sync_that_finds_a_task_in_progress_skips(cloud: Cloud, clock: FakeClock) -> None:
    server = cloud.add_server("vm", "node-01", "m1.small")
    cloud.crash(server.id, model.CRASHED, sync_after=0.5)
    cloud.reboot_server(server.id, hard=True)  # lands after the sync (action_delay 1 s)
    elapse(cloud, clock, 0.5)
    assert nova_view(server) == ("HARD_REBOOT", "active", "rebooting_hard", model.RUNNING)
    elapse(cloud, clock, 0.5)
    assert nova_view(server) == ("ACTIVE", "active", None, model.RUNNING)
    assert server.hypervisor_power_state == model.RUNNING
    elapse(cloud, clock, 60)
    assert nova_view(server) == ("ACTIVE", "active", None, model.RUNNING)


def test_the_sync_waits_for_a_working_nova_compute(cloud: Cloud, clock: FakeClock) -> None:
    server = cloud.add_server("vm", "node-02", "m1.small")
    cloud.set_compute_running("node-02", running=False)
    cloud.crash(server.id, sync_after=1)
    elapse(cloud, clock, 30)
    assert nova_view(server) == ("ACTIVE", "active", None, model.RUNNING)
    cloud.set_compute_running("node-02", running=True)
    elapse(cloud, clock, 0)
    assert nova_view(server) == ("ACTIVE", "active", "powering-off", model.SHUTDOWN)


def test_a_server_evacuated_or_deleted_before_the_sync_is_left_alone(cloud: Cloud, clock: FakeClock) -> None:
    moved = cloud.add_server("moved", "node-01", "m1.small")
    gone = cloud.add_server("gone", "node-01", "m1.small")
    cloud.crash(moved.id, sync_after=5)
    cloud.crash(gone.id, sync_after=5)
    cloud.set_power("node-01", on=False)
    fence(cloud, "node-01")
    cloud.evacuate(moved.id, "node-02", (2, 94))
    cloud.delete_server(gone.id)
    elapse(cloud, clock, 2)
    cloud.set_power("node-01", on=True)
    elapse(cloud, clock, 10)
    assert (moved.host, nova_view(moved)) == ("node-02", ("ACTIVE", "active", None, model.RUNNING))
    assert moved.hypervisor_power_state == model.RUNNING  # rebuilt and running on node-02
    assert gone.id not in cloud.servers


def test_what_cannot_crash(cloud: Cloud, clock: FakeClock) -> None:
    running = cloud.add_server("vm", "node-01", "m1.small")
    stopped = cloud.add_server("off", "node-01", "m1.small", stopped=True)
    with pytest.raises(NovaError, match="not running on its hypervisor") as caught:
        cloud.crash(stopped.id)
    assert caught.value.status == 409
    with pytest.raises(NovaError) as caught:
        cloud.crash("no-such-server")
    assert caught.value.status == 404
    with pytest.raises(ValueError, match="SHUTDOWN"):
        cloud.crash(running.id, power_state=model.RUNNING)
    with pytest.raises(ValueError, match="sync_after"):
        cloud.crash(running.id, sync_after=-1)
    cloud.crash(running.id)
    with pytest.raises(NovaError, match="not running on its hypervisor"):
        cloud.crash(running.id)  # it already crashed
    cloud.set_power("node-02", on=False)
    elsewhere = cloud.add_server("vm2", "node-02", "m1.small")
    with pytest.raises(NovaError, match="no powered-on host"):
        cloud.crash(elsewhere.id)


def test_the_api_shows_novas_record_not_the_hypervisor(cloud: Cloud, clock: FakeClock) -> None:
    server = cloud.add_server("vm", "node-01", "m1.small")
    cloud.crash(server.id, model.CRASHED)
    body = views.server_detail(cloud, server, "http://lab", clock.now, (2, 94))
    assert (body["status"], body["OS-EXT-STS:vm_state"], body["OS-EXT-STS:power_state"]) == (
        "ACTIVE",
        "active",
        model.RUNNING,
    )
