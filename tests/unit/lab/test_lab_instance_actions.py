"""Nova's instance actions in the lab cloud: who asked what (a user, or Nova itself), and the
events the conductor and computes add. Driven by a fake clock."""

from __future__ import annotations

import pytest

from receiver.lab.action_log import InstanceAction, Requester
from receiver.lab.cloud import Cloud
from tests.unit.lab.helpers import FakeClock, elapse, fence

pytestmark = pytest.mark.unit


def summary(actions: list[InstanceAction]) -> list[tuple[str, str | None, list[tuple[str, str | None]]]]:
    return [(a.action, a.user_id, [(e.event, e.result) for e in a.events]) for a in actions]


def test_a_user_stop_and_novas_own_stop_differ_by_user(cloud: Cloud, clock: FakeClock) -> None:
    server = cloud.add_server("vm", "node-01", "m1.small", user_id="alice", project_id="p1")
    stop, start = Requester.user("alice", "p1"), Requester.user("alice", "p1")
    cloud.stop_server(server.id, stop)
    elapse(cloud, clock, 1)
    cloud.start_server(server.id, start)
    elapse(cloud, clock, 1)
    cloud.crash(server.id, sync_after=0)
    elapse(cloud, clock, 1)
    newest, *rest = cloud.actions.of(server.id)
    assert (newest.action, newest.user_id, newest.project_id) == ("stop", None, None)  # Nova's sync
    assert [(e.event, e.result, e.host) for e in newest.events] == [
        ("compute_stop_instance", "Success", "node-01")
    ]
    assert summary(rest) == [
        ("start", "alice", [("compute_start_instance", "Success")]),
        ("stop", "alice", [("compute_stop_instance", "Success")]),
        ("create", "alice", [("compute__do_build_and_run_instance", "Success")]),
    ]
    assert len({a.request_id for a in cloud.actions.of(server.id)}) == 4
    assert cloud.actions.find(server.id, stop.request_id) is rest[1]


def test_an_action_waits_for_its_event_while_nova_compute_is_dead(cloud: Cloud, clock: FakeClock) -> None:
    server = cloud.add_server("vm", "node-02", "m1.small")
    cloud.set_compute_running("node-02", running=False)
    cloud.reboot_server(server.id, hard=True)
    elapse(cloud, clock, 5)
    [reboot, _] = cloud.actions.of(server.id)
    assert (reboot.action, reboot.user_id, reboot.events) == ("reboot", "admin", [])
    cloud.set_compute_running("node-02", running=True)
    elapse(cloud, clock, 0)
    assert [e.event for e in reboot.events] == ["compute_reboot_instance"]
    assert reboot.updated_at == clock.now


def test_evacuation_events_and_a_failed_rebuild(cloud: Cloud, clock: FakeClock) -> None:
    moved = cloud.add_server("moved", "node-01", "m1.small")
    broken = cloud.add_server("broken", "node-01", "m1.small")
    cloud.set_power("node-01", on=False)
    fence(cloud, "node-01")
    cloud.fail_evacuation(broken.id)
    for server in (moved, broken):
        cloud.evacuate(server.id, "node-02", (2, 94))
    elapse(cloud, clock, 2)
    [evacuated, _] = cloud.actions.of(moved.id)
    assert (evacuated.action, evacuated.message) == ("evacuate", None)
    assert [(e.event, e.result, e.host) for e in evacuated.events] == [
        ("rebuild_server", "Success", "controller"),
        ("compute_rebuild_instance", "Success", "node-02"),
    ]
    [failed, _] = cloud.actions.of(broken.id)
    assert failed.message == "Error"
    assert [(e.event, e.result) for e in failed.events][-1] == ("compute_rebuild_instance", "Error")
    assert failed.events[-1].traceback is not None and "Injected lab fault" in failed.events[-1].traceback


def test_no_valid_host_fails_in_the_conductor(cloud: Cloud, clock: FakeClock) -> None:
    server = cloud.add_server("vm", "node-01", "m1.small")
    for host in cloud.hosts:
        cloud.set_power(host, on=False)
        fence(cloud, host)
    cloud.evacuate(server.id, None, (2, 94))
    elapse(cloud, clock, 0)
    [evacuated, _] = cloud.actions.of(server.id)
    assert [(e.event, e.result) for e in evacuated.events] == [("rebuild_server", "Error")]
    assert evacuated.message == "Error"


def test_lock_delete_and_boot_are_recorded_and_outlive_the_server(cloud: Cloud, clock: FakeClock) -> None:
    server = cloud.boot_server("vm", "m1.small", host="spare-01", metadata={}, project_id="p", user_id="u")
    elapse(cloud, clock, 1)
    cloud.lock_server(server.id, True, "maintenance")
    cloud.lock_server(server.id, False)
    cloud.delete_server(server.id)
    assert server.id not in cloud.servers and cloud.actions.known(server.id)
    assert [a.action for a in cloud.actions.of(server.id)] == ["delete", "unlock", "lock", "create"]
    [create] = [a for a in cloud.actions.of(server.id) if a.action == "create"]
    assert [e.event for e in create.events] == ["compute__do_build_and_run_instance"]


def test_lock_and_unlock_are_reported_by_the_api(cloud: Cloud, clock: FakeClock) -> None:
    """As on the real test bed: lock and unlock each have one event, `api_lock` / `api_unlock`,
    on the API's host; the owner locking a locked server records nothing (compute/api.py lock)."""
    server = cloud.add_server("vm", "node-01", "m1.small", user_id="alice", project_id="p1")
    owner = Requester.user("alice", "p1")
    cloud.lock_server(server.id, True, "maintenance", owner)
    cloud.lock_server(server.id, True, None, owner)  # already locked by its owner: nothing
    assert (server.locked, server.locked_reason) == (True, "maintenance")
    cloud.lock_server(server.id, True)  # an admin of another project locks again: recorded
    assert (server.locked, server.locked_reason) == (True, "maintenance")  # no reason: kept
    cloud.lock_server(server.id, False)
    assert (server.locked, server.locked_reason) == (False, None)
    assert summary(cloud.actions.of(server.id)) == [
        ("unlock", "admin", [("api_unlock", "Success")]),
        ("lock", "admin", [("api_lock", "Success")]),
        ("lock", "alice", [("api_lock", "Success")]),
        ("create", "alice", [("compute__do_build_and_run_instance", "Success")]),
    ]
    assert {e.host for a in cloud.actions.of(server.id)[:3] for e in a.events} == {"controller"}
