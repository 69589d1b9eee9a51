"""Host conditions of the lab cloud: hung, nova-compute dead, powered off; and the work that
waits for a host's nova-compute while it is not running. Driven by a fake clock."""

from __future__ import annotations

import pytest

from receiver.lab import views
from receiver.lab.cloud import Cloud
from receiver.lab.model import Condition, NovaError
from tests.unit.lab.helpers import FakeClock, condition, elapse, fence

pytestmark = pytest.mark.unit


def test_a_hung_host_stays_on_but_stops_heartbeating(cloud: Cloud, clock: FakeClock) -> None:
    host = cloud.hosts["node-01"]
    clock.advance(5.5)
    cloud.hang("node-01")
    assert condition(cloud, "node-01") is Condition.HUNG
    assert cloud.is_on("node-01")  # what its BMC reports
    assert cloud.last_heartbeat(host, clock.now) == clock.now - 0.5
    clock.advance(9)
    assert cloud.is_up(host, clock.now)  # Nova notices only after service_down_time
    clock.advance(2)
    assert not cloud.is_up(host, clock.now)
    assert views.host_status(cloud, "node-01", clock.now) == "UNKNOWN"  # Nova's word for "no heartbeat"
    cloud.hang("node-01")  # hanging again changes nothing
    assert condition(cloud, "node-01") is Condition.HUNG


def test_powering_a_hung_host_off_ends_the_hang_and_power_on_makes_it_healthy(
    cloud: Cloud, clock: FakeClock
) -> None:
    host = cloud.hosts["node-01"]
    cloud.hang("node-01")
    hung_at = clock.now
    clock.advance(30)
    cloud.set_power("node-01", on=True)  # IPMI power on while on: nothing happens
    assert condition(cloud, "node-01") is Condition.HUNG
    cloud.set_power("node-01", on=False)
    assert (condition(cloud, "node-01"), cloud.is_on("node-01")) == (Condition.OFF, False)
    assert cloud.last_heartbeat(host, clock.now) == hung_at  # the power-off sent no heartbeat
    cloud.hang("node-01", hung=False)  # not hung any more: nothing to recover from
    with pytest.raises(NovaError) as caught:
        cloud.hang("node-01")
    assert caught.value.status == 409
    cloud.set_power("node-01", on=True)
    assert condition(cloud, "node-01") is Condition.RUNNING and cloud.is_up(host, clock.now)


def test_a_recovered_hung_host_carries_on_without_a_restart(cloud: Cloud, clock: FakeClock) -> None:
    """The same nova-compute resumes: init_host does not run, so `done` evacuations stay and
    Nova keeps refusing to force the service up."""
    server = cloud.add_server("vm", "node-01", "m1.small")
    cloud.hang("node-01")
    fence(cloud, "node-01")
    migration = cloud.evacuate(server.id, None, (2, 94))
    elapse(cloud, clock, 2)
    cloud.hang("node-01", hung=False)
    assert condition(cloud, "node-01") is Condition.RUNNING
    assert migration.status == "done"
    with pytest.raises(NovaError, match="`done` evacuation migration records"):
        cloud.update_service(cloud.hosts["node-01"].service_id, forced_down=False)
    cloud.set_power("node-01", on=False)
    cloud.set_power("node-01", on=True)  # a reboot restarts nova-compute
    assert migration.status == "completed"


def test_nova_compute_dead_on_a_live_host(cloud: Cloud, clock: FakeClock) -> None:
    host = cloud.hosts["node-02"]
    server = cloud.add_server("vm", "node-02", "m1.small")
    cloud.set_compute_running("node-02", running=False)
    assert condition(cloud, "node-02") is Condition.COMPUTE_DEAD and cloud.is_on("node-02")
    clock.advance(11)
    assert not cloud.is_up(host, clock.now)
    assert (server.status, server.power_state) == ("ACTIVE", 1)  # the guest still runs
    cloud.set_compute_running("node-02", running=True)
    assert condition(cloud, "node-02") is Condition.RUNNING and cloud.is_up(host, clock.now)
    cloud.set_compute_running("node-02", running=True)  # starting a running compute changes nothing
    cloud.hang("node-02")
    with pytest.raises(NovaError, match="hung"):
        cloud.set_compute_running("node-02", running=True)
    cloud.set_power("node-02", on=False)
    with pytest.raises(NovaError, match="off"):
        cloud.set_compute_running("node-02", running=False)


def test_a_host_hung_while_its_compute_was_dead_recovers_to_dead(cloud: Cloud) -> None:
    cloud.set_compute_running("node-02", running=False)
    cloud.hang("node-02")
    cloud.hang("node-02", hung=False)
    assert condition(cloud, "node-02") is Condition.COMPUTE_DEAD


def test_a_restarted_compute_completes_its_evacuations(cloud: Cloud, clock: FakeClock) -> None:
    server = cloud.add_server("vm", "node-02", "m1.small")
    cloud.set_compute_running("node-02", running=False)
    fence(cloud, "node-02")
    migration = cloud.evacuate(server.id, None, (2, 94))
    elapse(cloud, clock, 2)
    assert migration.status == "done"
    cloud.set_compute_running("node-02", running=True)
    assert migration.status == "completed"
    cloud.update_service(cloud.hosts["node-02"].service_id, forced_down=False, status="enabled")


def test_actions_on_a_stuck_host_wait_for_its_compute(cloud: Cloud, clock: FakeClock) -> None:
    """Nova accepts stop/start/reboot whatever the service state; the cast waits in the queue."""
    server = cloud.add_server("vm", "node-01", "m1.small")
    cloud.hang("node-01")
    clock.advance(30)
    cloud.stop_server(server.id)
    elapse(cloud, clock, 5)
    assert (server.status, server.task_state) == ("ACTIVE", "powering-off")
    assert cloud.waiting_operations() == {"node-01": 1}
    cloud.hang("node-01", hung=False)
    elapse(cloud, clock, 0)
    assert (server.status, server.task_state) == ("SHUTOFF", None)
    assert cloud.waiting_operations() == {}


def test_a_waiting_action_is_dropped_once_the_server_was_evacuated(cloud: Cloud, clock: FakeClock) -> None:
    server = cloud.add_server("vm", "node-01", "m1.small")
    cloud.set_power("node-01", on=False)
    fence(cloud, "node-01")
    cloud.stop_server(server.id)
    cloud.evacuate(server.id, None, (2, 94))  # accepted in any task_state
    elapse(cloud, clock, 2)
    assert (server.status, server.host) == ("ACTIVE", "node-02")
    cloud.set_power("node-01", on=True)
    elapse(cloud, clock, 1)
    assert (server.status, server.task_state, server.host) == ("ACTIVE", None, "node-02")


def test_a_boot_on_a_hung_host_stays_in_build(cloud: Cloud, clock: FakeClock) -> None:
    cloud.hang("spare-01")
    server = cloud.boot_server(
        "new", "m1.small", host="spare-01", metadata={}, project_id="admin", user_id="admin"
    )
    elapse(cloud, clock, 5)
    assert (server.status, server.launched_at) == ("BUILD", None)
    cloud.hang("spare-01", hung=False)
    elapse(cloud, clock, 1)
    assert server.status == "ACTIVE" and server.launched_at is not None


def test_host_status_follows_nova(cloud: Cloud, clock: FakeClock) -> None:
    """forced down DOWN, disabled MAINTENANCE, otherwise UP or (no heartbeat) UNKNOWN."""
    cloud.set_power("node-01", on=False)
    clock.advance(11)
    assert views.host_status(cloud, "node-01", clock.now) == "UNKNOWN"
    cloud.update_service(cloud.hosts["node-01"].service_id, status="disabled")
    assert views.host_status(cloud, "node-01", clock.now) == "MAINTENANCE"
    fence(cloud, "node-01")
    assert views.host_status(cloud, "node-01", clock.now) == "DOWN"
    assert views.host_status(cloud, "node-02", clock.now) == "UP"
    assert views.host_status(cloud, None, clock.now) == ""
