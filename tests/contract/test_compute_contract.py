"""The `Compute` port's contract, held by `NovaCompute` against every target in conftest.py.

Markers come from the target parameter (`nova` for the real Nova test bed, `integration` for
the lab's simulated Nova) rather than from a module-level `pytestmark`, so `-m nova` and
`-m integration` each select exactly their target.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Target
from receiver.domain.model import ComputeService
from receiver.errors import ComputeError, ComputeRejected, NotFound
from tests.contract.fenced import evacuate_and_wait, fenced, wait_server

# openstacksdk 4.22 warns on its own internal calls (PendingDeprecationWarning): about InfluxDB on
# every connect (its loader always returns a truthy config dict), and about `service_type` on
# every request; pytest turns warnings into errors.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Support for InfluxDB requires:PendingDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'service_type' parameter is unnecesary:PendingDeprecationWarning"),
]

__all__ = ["fenced"]  # the module-scoped power-loss fixture, used here

UNKNOWN_HOST = "lazarus-contract-no-such-host"
UNKNOWN_SERVER = "00000000-0000-4000-8000-00000000dead"


def error_text(exc: BaseException) -> str:
    """Everything an exception could leak into a log: its chain, messages and reprs."""
    return "".join(traceback.format_exception(exc)) + repr(exc) + repr(exc.__cause__)


def raises_clean(target: object, error: type[ComputeError] | type[NotFound], call: object) -> BaseException:
    """Run `call`, expect `error`, and check the token appears nowhere in it."""
    assert callable(call)
    with pytest.raises(error) as info:
        call()
    token = target.token  # type: ignore[attr-defined]
    assert token not in error_text(info.value)
    return info.value


# ----------------------------------------------------------------------------- services


def test_service_of_a_host(target) -> None:
    service = target.compute().service(target.victim)
    assert isinstance(service, ComputeService)
    assert service.host == target.victim
    assert service.id and service.state in ("up", "down") and service.status in ("enabled", "disabled")
    assert service.id == target.admin.service(target.victim)["id"]
    assert service.updated_at is not None and service.updated_at.tzinfo is not None


def test_service_of_an_unknown_host_is_not_found(target) -> None:
    error = raises_clean(target, NotFound, lambda: target.compute().service(UNKNOWN_HOST))
    assert UNKNOWN_HOST in str(error)


def test_compute_services_are_every_nova_compute(target) -> None:
    """One listing answers 'is this a host Nova runs nova-compute on, and is it up?' for a
    whole inventory (host names, spare readiness)."""
    services = {s.host: s for s in target.compute().compute_services()}
    assert sorted(services) == target.admin.compute_hosts()
    assert UNKNOWN_HOST not in services
    assert services[target.victim].id == target.compute().service(target.victim).id


def test_force_down_then_disable(target) -> None:
    host = target.victim
    target.require_healthy(host)
    compute = target.compute()
    try:
        forced = compute.force_down(compute.service(host))
        assert (forced.host, forced.forced_down, forced.state) == (host, True, "down")
        assert forced.status == "enabled"
        disabled = compute.disable(forced, "lazarus contract: host fenced")
        assert (disabled.forced_down, disabled.state, disabled.status) == (True, "down", "disabled")
        assert disabled.disabled_reason == "lazarus contract: host fenced"
        # updated_at moves with heartbeats (and PUT answers carry microseconds, GETs do not)
        assert replace(compute.service(host), updated_at=None) == replace(disabled, updated_at=None)
    finally:
        target.restore_service(host)
    assert target.admin.service(host)["state"] == "up"


def test_force_down_of_an_unknown_service_is_not_found(target) -> None:
    ghost = ComputeService(
        id=UNKNOWN_SERVER, host=UNKNOWN_HOST, state="up", status="enabled", forced_down=False
    )
    error = raises_clean(target, NotFound, lambda: target.compute().force_down(ghost))
    assert UNKNOWN_HOST in str(error) and "force down" in str(error)


# ----------------------------------------------------------------------------- servers


def test_servers_on_a_host(target) -> None:
    host = target.victim
    running, stopped = target.boot(host), target.boot(host, stopped=True)
    servers = {s.id: s for s in target.compute().servers_on(host)}
    assert {running, stopped} <= servers.keys()
    assert all(s.host == host for s in servers.values())
    active, shutoff = servers[running], servers[stopped]
    assert (active.status, active.vm_state, active.task_state) == ("ACTIVE", "active", None)
    assert (shutoff.status, shutoff.vm_state, shutoff.task_state) == ("SHUTOFF", "stopped", None)
    assert active.name.startswith("lazarus-contract-") and active.locked is False
    assert active.metadata == {"lazarus-contract": active.name, "HA_Enabled": "True"}
    assert (active.flavor.get("original_name"), active.flavor.get("vcpus")) == target.flavor
    assert target.compute().server(running) == active


def test_servers_on_an_empty_host(target) -> None:
    compute = target.compute()
    assert compute.servers_on(UNKNOWN_HOST) == []
    busy = {s.get("OS-EXT-SRV-ATTR:host") for s in target.admin.all_servers()}
    empty = [h for h in target.admin.compute_hosts() if h not in busy]
    if not empty:
        pytest.skip(f"{target.name}: every compute host has servers right now")
    assert compute.servers_on(empty[0]) == []


def test_servers_on_pages_with_one_request_per_page(target, http_requests) -> None:
    host = target.victim
    mine = {target.boot(host), target.boot(host)}
    compute = target.compute_warm(page_size=1)
    http_requests.clear()
    servers = compute.servers_on(host)
    ids = [s.id for s in servers]
    assert mine <= set(ids) and len(ids) == len(set(ids))
    # Nova adds a `next` link to every full page, so n servers at one per page take n + 1 GETs.
    assert len(http_requests) == len(ids) + 1
    assert all(r.startswith("GET ") and "/servers/detail?" in r for r in http_requests)

    default_pages = target.compute_warm()
    http_requests.clear()
    assert mine <= {s.id for s in default_pages.servers_on(host)}
    assert len(http_requests) == 1  # default page size: Nova's max_limit (1000)


def test_each_operation_is_one_request(target, http_requests) -> None:
    host = target.victim
    target.require_healthy(host)
    server_id = target.boot(host, stopped=True)
    compute = target.compute_warm()
    service = compute.service(host)
    calls = {
        "service": lambda: compute.service(host),
        "server": lambda: compute.server(server_id),
        "evacuations": lambda: compute.evacuations(host, server_id),
        "last_power_action": lambda: compute.last_power_action(server_id),
        "start": lambda: compute.start(server_id),
        "force_down": lambda: compute.force_down(service),
        "disable": lambda: compute.disable(service, "lazarus contract: counting requests"),
    }
    counts: dict[str, list[str]] = {}
    try:
        for name, call in calls.items():
            http_requests.clear()
            call()
            counts[name] = list(http_requests)
    finally:
        target.restore_service(host)
    assert {name: len(sent) for name, sent in counts.items()} == dict.fromkeys(calls, 1), counts


def test_server_unknown_is_not_found(target) -> None:
    error = raises_clean(target, NotFound, lambda: target.compute().server(UNKNOWN_SERVER))
    assert UNKNOWN_SERVER in str(error)


def test_start_a_stopped_server(target) -> None:
    server_id = target.boot(target.victim, stopped=True)
    compute = target.compute()
    compute.start(server_id)
    wait_server(compute, server_id, lambda s: s.status == "ACTIVE" and s.task_state is None)
    error = raises_clean(target, ComputeRejected, lambda: compute.start(server_id))
    assert isinstance(error, ComputeRejected) and error.status == 409 and error.request_id
    assert server_id in str(error)


def test_last_power_action_is_the_newest_stop_start_or_reboot(target: Target) -> None:
    """Who last changed a server's power, as the instance workflow reads it to tell a user's stop
    from Nova's own power sync (whose stop has no user; neither target can make one on demand).
    Other actions (create, lock) never hide it."""
    server_id = target.boot(target.victim)
    compute = target.compute()
    assert compute.last_power_action(server_id) is None  # only `create` so far

    response = target.admin.http.post(
        f"{target.admin.endpoint}/servers/{server_id}/action", json={"os-stop": None}, timeout=30
    )
    assert response.status_code == 202, response.text[:300]
    target.admin.wait_status(server_id, "SHUTOFF")
    locked = target.admin.http.post(
        f"{target.admin.endpoint}/servers/{server_id}/action", json={"lock": None}, timeout=30
    )
    assert locked.status_code == 202, locked.text[:300]
    stopped = compute.last_power_action(server_id)
    assert stopped is not None
    listed = target.admin.call("GET", f"/servers/{server_id}/os-instance-actions")
    [stop] = [a for a in listed["instanceActions"] if a["action"] == "stop"]
    assert listed["instanceActions"][0]["action"] == "lock"  # the newest action is not the power one
    assert (stopped.action, stopped.request_id) == ("stop", response.headers["x-openstack-request-id"])
    assert stop["user_id"] and stop["project_id"]  # a user's stop names its user
    assert stopped.user_id == stop["user_id"] and stopped.request_id == stop["request_id"]
    assert stopped.start_time == datetime.fromisoformat(stop["start_time"]).replace(tzinfo=UTC)
    assert stopped.start_time.microsecond == 0  # Nova's database keeps whole seconds
    unlocked = target.admin.http.post(
        f"{target.admin.endpoint}/servers/{server_id}/action", json={"unlock": None}, timeout=30
    )
    assert unlocked.status_code == 202, unlocked.text[:300]
    raises_clean(target, NotFound, lambda: compute.last_power_action(UNKNOWN_SERVER))


def test_evacuate_is_refused_while_the_source_compute_is_up(target) -> None:
    host = target.victim
    target.require_healthy(host)
    server_id = target.boot(host)
    compute = target.compute()
    error = raises_clean(target, ComputeRejected, lambda: compute.evacuate(server_id))
    assert isinstance(error, ComputeRejected)
    assert error.status == 400 and error.request_id and error.request_id.startswith("req-")
    assert f"Compute service of {host} is still in use" in str(error)
    assert server_id in str(error) and error.request_id in str(error) and not error.retryable
    assert compute.server(server_id).host == host


def test_disable_with_an_overlong_reason_is_rejected(target) -> None:
    host = target.victim
    target.require_healthy(host)
    compute = target.compute()
    try:
        error = raises_clean(
            target, ComputeRejected, lambda: compute.disable(compute.service(host), "x" * 256)
        )
    finally:
        target.restore_service(host)
    assert isinstance(error, ComputeRejected) and error.status == 400 and error.request_id


def test_evacuate_an_unknown_server_is_not_found(target) -> None:
    raises_clean(target, NotFound, lambda: target.compute().evacuate(UNKNOWN_SERVER))


def test_evacuations_of_a_host_without_any(target) -> None:
    assert target.compute().evacuations(UNKNOWN_HOST) == []


# ----------------------------------------------------------------------------- after power loss

# The servers the `fenced` fixture boots on the victim before it loses power: role -> SHUTOFF.
FENCED_SERVERS = {
    "scheduled": False,
    "targeted": False,
    "stopped": True,
    "recorded": False,
    "twice": False,
    "in-flight": False,
    "stuck": False,
    "modern": False,
}


def test_fencing_marks_the_service_down_then_disabled(fenced) -> None:
    assert (fenced.forced.forced_down, fenced.forced.state, fenced.forced.status) == (True, "down", "enabled")
    assert (fenced.disabled.forced_down, fenced.disabled.status) == (True, "disabled")
    assert fenced.disabled.disabled_reason == "lazarus contract: power lost"
    on_host = {s.id for s in fenced.compute.servers_on(fenced.host)}
    assert set(fenced.servers.values()) <= on_host


def test_evacuate_lets_the_scheduler_choose(fenced) -> None:
    server = evacuate_and_wait(fenced, "scheduled", "ACTIVE")
    assert server.vm_state == "active" and server.host != fenced.host


def test_evacuate_to_a_chosen_host(fenced, target_session) -> None:
    destination = next(
        h for h in target_session.other_hosts(fenced.host) if target_session.admin.service(h)["state"] == "up"
    )
    server = evacuate_and_wait(fenced, "targeted", "ACTIVE", target_host=destination)
    assert server.host == destination


def test_evacuate_keeps_the_power_state_whatever_the_configured_microversion(fenced, target_session) -> None:
    """From 2.95 Nova leaves evacuated servers SHUTOFF; the adapter sends evacuate at <= 2.94."""
    compute = target_session.compute(microversion="2.100")
    server_id = fenced.servers["modern"]
    compute.evacuate(server_id)
    server = wait_server(
        compute, server_id, lambda s: s.host != fenced.host and s.task_state is None and s.status != "REBUILD"
    )
    assert (server.status, server.vm_state) == ("ACTIVE", "active")


def test_a_shutoff_server_stays_shutoff_and_starts(fenced) -> None:
    server = evacuate_and_wait(fenced, "stopped", "SHUTOFF")
    assert server.vm_state == "stopped"
    fenced.compute.start(server.id)
    started = wait_server(fenced.compute, server.id, lambda s: s.status == "ACTIVE" and s.task_state is None)
    assert started.host == server.host


def test_evacuate_to_an_unknown_host_is_not_found(fenced) -> None:
    server_id = fenced.servers["recorded"]
    error = raises_clean(fenced, NotFound, lambda: fenced.compute.evacuate(server_id, UNKNOWN_HOST))
    assert UNKNOWN_HOST in str(error)
    assert fenced.compute.server(server_id).host == fenced.host


def test_evacuate_to_the_source_host_is_rejected(fenced) -> None:
    server_id = fenced.servers["recorded"]
    error = raises_clean(fenced, ComputeRejected, lambda: fenced.compute.evacuate(server_id, fenced.host))
    assert isinstance(error, ComputeRejected) and error.status == 400 and error.request_id
    assert fenced.compute.server(server_id).host == fenced.host


def test_evacuate_after_it_landed_is_refused(fenced) -> None:
    """Once the server runs on an up host, Nova refuses to evacuate it again (400)."""
    server = evacuate_and_wait(fenced, "twice", "ACTIVE")
    error = raises_clean(fenced, ComputeRejected, lambda: fenced.compute.evacuate(server.id))
    assert isinstance(error, ComputeRejected) and error.status == 400 and error.request_id
    assert f"Compute service of {server.host} is still in use" in str(error)
    assert len(fenced.compute.evacuations(fenced.host, server.id)) == 1


def test_a_second_evacuate_in_flight_is_not_refused(fenced) -> None:
    """Nova 34's evacuate accepts any task_state (check_instance_state(task_state=None) and
    save(expected_task_state=None)), so a second evacuate while the first is rebuilding is
    accepted too. The two rebuilds race; on the real test bed the outcome varied: ACTIVE on the
    new host (most runs), ERROR (UnexpectedTaskStateError), and once ACTIVE with the *dead
    source* as its host. Nova does not protect against a duplicate: the recovery must never
    send one. Nova refuses (400) only once the server runs on an up host."""
    server_id = fenced.servers["in-flight"]
    fenced.compute.evacuate(server_id)
    try:
        fenced.compute.evacuate(server_id)
    except ComputeRejected as error:
        assert error.status == 400, f"Nova accepts a second evacuate while the first runs; got {error}"
    deadline = time.monotonic() + 180
    while (server := fenced.compute.server(server_id)).task_state is not None:
        assert time.monotonic() < deadline, f"duplicate evacuation never settled: {server}"
        time.sleep(0.2)
    print(f"duplicate evacuate of {server_id}: ended {server.status} on {server.host}")
    assert server.status in ("ACTIVE", "ERROR"), server


def test_a_server_stuck_in_a_task_on_the_dead_host_can_be_evacuated(fenced) -> None:
    """An action sent to a dead host's server never finishes (its compute is gone), leaving a
    task_state behind; Nova still evacuates such a server, so the recovery must not skip it."""
    server_id = fenced.servers["stuck"]
    status, body = fenced.admin.stop_status(server_id)
    assert status == 202, (
        f"Nova 34 accepts os-stop for a server on a dead, forced-down host; got {status} {body}"
    )
    stuck = fenced.compute.server(server_id)
    assert (stuck.status, stuck.task_state) == ("ACTIVE", "powering-off")
    fenced.compute.evacuate(server_id)
    server = wait_server(
        fenced.compute,
        server_id,
        lambda s: s.host != fenced.host and s.status == "ACTIVE" and not s.task_state,
    )
    assert server.vm_state == "active"


def test_evacuations_lists_the_migration_records(fenced) -> None:
    server = evacuate_and_wait(fenced, "recorded", "ACTIVE")
    deadline = time.monotonic() + 120
    while True:
        records = fenced.compute.evacuations(fenced.host, server.id)
        if (records and records[0].status == "done") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(records) == 1, records
    record = records[0]
    assert (record.instance_id, record.source_host, record.dest_host) == (server.id, fenced.host, server.host)
    assert (record.migration_type, record.status) == ("evacuation", "done")
    assert record.id and record.created_at is not None and record.created_at.tzinfo is not None
    assert record.id in {m.id for m in fenced.compute.evacuations(fenced.host)}
    # Nova refuses to un-force a host while `done` evacuations remain (until its compute restarts).
    status, body = fenced.admin.service_update_status(fenced.host, forced_down=False)
    assert status == 400 and "`done` evacuation migration records" in str(body), (status, body)
