"""The lab cloud's rules, driven by a fake clock (no threads, no HTTP)."""

from __future__ import annotations

import pytest

from receiver.lab.cloud import Cloud, CloudSettings
from receiver.lab.model import NovaError
from receiver.lab.topology import LabOptions, build_cloud
from tests.unit.lab.helpers import FakeClock, elapse, fence

pytestmark = pytest.mark.unit


def test_powered_off_host_goes_down_after_service_down_time(cloud: Cloud, clock: FakeClock) -> None:
    host = cloud.hosts["node-01"]
    clock.advance(5.5)
    cloud.set_power("node-01", on=False)
    assert cloud.last_heartbeat(host, clock.now) == clock.now - 0.5
    clock.advance(9)
    assert cloud.is_up(host, clock.now)
    clock.advance(2)
    assert not cloud.is_up(host, clock.now)
    assert cloud.is_up(cloud.hosts["node-02"], clock.now)  # powered-on hosts keep heartbeating
    cloud.set_power("node-01", on=True)
    assert cloud.is_up(host, clock.now) and cloud.is_on("node-01")


def test_forced_down_is_down_at_once(cloud: Cloud, clock: FakeClock) -> None:
    fence(cloud, "node-01")
    host = cloud.hosts["node-01"]
    assert not cloud.is_up(host, clock.now)
    assert (host.disabled, host.disabled_reason) == (True, "x")


def test_service_update_validation(cloud: Cloud) -> None:
    service_id = cloud.hosts["node-01"].service_id
    with pytest.raises(NovaError, match="No updates were requested"):
        cloud.update_service(service_id)
    with pytest.raises(NovaError, match="disabled_reason' with status 'enabled'"):
        cloud.update_service(service_id, status="enabled", disabled_reason="no")
    cloud.update_service(service_id, status="enabled", disabled_reason="")  # Nova: only a non-empty one
    with pytest.raises(NovaError) as caught:
        cloud.update_service("nope", status="enabled")
    assert caught.value.status == 404
    cloud.update_service(service_id, status="disabled", disabled_reason="maintenance")
    cloud.update_service(service_id, status="enabled")
    assert cloud.hosts["node-01"].disabled_reason is None


def test_evacuate_refused_while_up_then_completes_on_tick(cloud: Cloud, clock: FakeClock) -> None:
    server = cloud.add_server("vm", "node-01", "m1.small")
    with pytest.raises(NovaError, match="Compute service of node-01 is still in use"):
        cloud.evacuate(server.id, None, (2, 94))
    fence(cloud, "node-01")
    migration = cloud.evacuate(server.id, None, (2, 94))
    assert (server.status, migration.status, migration.dest_compute) == ("REBUILD", "accepted", None)
    assert cloud.tick() == 1  # the conductor picks a destination at once...
    assert migration.status == "accepted" and server.host == "node-01"
    clock.advance(1.9)
    assert cloud.tick() == 0  # ...the destination's rebuild takes evacuate_delay
    clock.advance(0.1)
    assert cloud.tick() == 1
    assert server.status == "ACTIVE" and server.host in ("node-02", "spare-01")
    assert (migration.status, migration.dest_compute) == ("done", server.host)
    assert cloud.hosts["node-01"].vcpus_used == 0 and cloud.hosts[server.host].vcpus_used == 1
    assert cloud.list_servers(host="node-01") == []


def test_stopped_server_and_microversion_2_95_stay_stopped(cloud: Cloud, clock: FakeClock) -> None:
    stopped = cloud.add_server("off", "node-01", "m1.small", stopped=True)
    running = cloud.add_server("on", "node-01", "m1.small")
    fence(cloud, "node-01")
    cloud.evacuate(stopped.id, None, (2, 94))
    cloud.evacuate(running.id, None, (2, 95))
    elapse(cloud, clock, 2)
    assert (stopped.status, running.status) == ("SHUTOFF", "SHUTOFF")


def test_no_valid_host_is_a_conductor_error(cloud: Cloud, clock: FakeClock) -> None:
    """Nova's conductor: migration `error`, server ERROR where it was, no destination claimed."""
    server = cloud.add_server("vm", "node-01", "m1.small")
    fence(cloud, "node-01")
    for name in ("node-02", "spare-01"):
        cloud.update_service(cloud.hosts[name].service_id, status="disabled")
    migration = cloud.evacuate(server.id, None, (2, 94))
    cloud.tick()
    assert (server.status, server.host, server.task_state) == ("ERROR", "node-01", None)
    assert (migration.status, migration.dest_compute) == ("error", None)
    assert server.fault is not None and "No valid host" in server.fault["message"]


def test_a_task_in_progress_refuses_power_actions(cloud: Cloud) -> None:
    server = cloud.add_server("vm", "node-02", "m1.small")
    cloud.stop_server(server.id)
    with pytest.raises(NovaError) as caught:
        cloud.start_server(server.id)
    assert caught.value.status == 409 and "vm_state active" in caught.value.message  # vm_state first
    with pytest.raises(NovaError) as caught:
        cloud.stop_server(server.id)
    assert caught.value.status == 409 and "task_state powering-off" in caught.value.message


def test_injected_failure_is_a_compute_failure_then_retry_from_error(cloud: Cloud, clock: FakeClock) -> None:
    """Nova's destination compute: migration `failed` with its dest_compute, server ERROR still
    on the source host, the destination's claim released."""
    server = cloud.add_server("vm", "node-01", "m1.small")
    fence(cloud, "node-01")
    cloud.fail_evacuation(server.id)
    first = cloud.evacuate(server.id, "spare-01", (2, 94))
    elapse(cloud, clock, 2)
    assert (server.status, server.host, server.task_state) == ("ERROR", "node-01", None)
    assert (first.status, first.dest_compute) == ("failed", "spare-01")
    assert server.fault is not None and "Injected lab fault" in server.fault["message"]
    assert cloud.hosts["spare-01"].vcpus_used == 0 and cloud.hosts["node-01"].vcpus_used == 1
    cloud.fail_evacuation(server.id, fail=False)
    second = cloud.evacuate(server.id, None, (2, 95))  # from ERROR, even 2.95 ends ACTIVE
    elapse(cloud, clock, 2)
    assert (server.status, second.status, cloud.server(server.id).fault) == ("ACTIVE", "done", None)


def test_force_up_needs_a_restart_after_evacuations(cloud: Cloud, clock: FakeClock) -> None:
    server = cloud.add_server("vm", "node-01", "m1.small")
    cloud.set_power("node-01", on=False)
    fence(cloud, "node-01")
    migration = cloud.evacuate(server.id, None, (2, 94))
    elapse(cloud, clock, 2)
    service_id = cloud.hosts["node-01"].service_id
    with pytest.raises(NovaError, match="`done` evacuation migration records"):
        cloud.update_service(service_id, forced_down=False)
    cloud.set_power("node-01", on=True)
    assert migration.status == "completed"
    cloud.update_service(service_id, forced_down=False)


def test_force_up_refused_even_when_not_forced_down(cloud: Cloud, clock: FakeClock) -> None:
    """Nova checks for `done` evacuations on every forced_down=false."""
    server = cloud.add_server("vm", "node-01", "m1.small")
    cloud.set_power("node-01", on=False)
    clock.advance(11)
    cloud.evacuate(server.id, None, (2, 94))  # down by heartbeat, never forced down
    elapse(cloud, clock, 2)
    with pytest.raises(NovaError, match="`done` evacuation migration records"):
        cloud.update_service(cloud.hosts["node-01"].service_id, forced_down=False)


def test_stop_and_start_are_asynchronous(cloud: Cloud, clock: FakeClock) -> None:
    server = cloud.add_server("vm", "node-02", "m1.small")
    cloud.stop_server(server.id)
    assert (server.status, server.task_state) == ("ACTIVE", "powering-off")
    clock.advance(1)
    cloud.tick()
    assert (server.status, server.power_state) == ("SHUTOFF", 4)
    with pytest.raises(NovaError, match="vm_state stopped"):
        cloud.stop_server(server.id)
    cloud.start_server(server.id)
    clock.advance(1)
    cloud.tick()
    assert server.status == "ACTIVE"
    cloud.reboot_server(server.id, hard=True)
    assert (server.status, server.task_state) == ("HARD_REBOOT", "rebooting_hard")
    cloud.reboot_server(server.id, hard=True)  # a hard reboot may interrupt a hard reboot, as in Nova
    with pytest.raises(NovaError, match="task_state rebooting_hard"):
        cloud.reboot_server(server.id, hard=False)
    clock.advance(1)
    cloud.tick()
    assert (server.status, server.task_state) == ("ACTIVE", None)


def test_server_order_and_host_index(cloud: Cloud, clock: FakeClock) -> None:
    first = cloud.add_server("a", "node-01", "m1.small")
    clock.advance(1)
    second = cloud.add_server("b", "node-01", "m1.small")
    cloud.add_server("c", "node-02", "m1.small")
    assert [s.id for s in cloud.list_servers(host="node-01")] == [second.id, first.id]  # newest first
    assert len(cloud.list_servers()) == 3
    assert cloud.list_servers(project_id="other") == []


def test_demo_topology() -> None:
    cloud = build_cloud(LabOptions())
    assert list(cloud.hosts) == ["node-01", "node-02", "node-03"]
    on_first = cloud.list_servers(host="node-01")
    assert sorted(s.status for s in on_first) == ["ACTIVE", "ACTIVE", "ACTIVE", "SHUTOFF"]
    assert sum(1 for s in on_first if s.metadata.get("HA_Enabled") == "True") == 3
    assert len(cloud.servers) == 8
    assert build_cloud(LabOptions(host_count=12, servers_per_host=3)).hosts.keys() >= {"node-01", "node-12"}


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="service_down_time"):
        CloudSettings(service_down_time=1, report_interval=1)
    with pytest.raises(ValueError, match="either hosts or host_count"):
        LabOptions(hosts=("a",), host_count=2).host_names()
    with pytest.raises(ValueError, match="unknown hosts"):
        LabOptions(bmc_hosts=("nope",)).bmc_host_names()
