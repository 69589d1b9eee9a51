"""The lab's compute API over real HTTP, spoken to by openstacksdk as to a real Nova."""

from __future__ import annotations

from typing import Any

import openstack
import pytest
from openstack import exceptions as sdk_exceptions

from receiver.lab.manifest import LabManifest
from receiver.lab.testing import LabControl, wait_until

pytestmark = [
    pytest.mark.integration,
    # openstacksdk 4.22 raises its own PendingDeprecationWarnings from inside the SDK on every
    # connect and request (InfluxDB, service_type), whatever the caller does.
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]


def connect(manifest: LabManifest, **overrides: Any) -> Any:
    return openstack.connect(**(manifest.openstack_auth() | overrides))


def service_of(conn: Any, host: str) -> Any:
    services = list(conn.compute.services(binary="nova-compute", host=host))
    assert len(services) == 1, services
    return services[0]


def servers_on(conn: Any, host: str) -> list[Any]:
    return list(conn.compute.servers(details=True, all_projects=True, compute_host=host))


def fence(conn: Any, host: str) -> None:
    service = service_of(conn, host)
    conn.compute.update_service_forced_down(service, host, "nova-compute", forced=True)
    conn.compute.disable_service(service, host, "nova-compute", disabled_reason="lazarus test")


def settled(conn: Any, server_id: str) -> Any:
    """The server once no task runs on it any more (evacuation finished one way or the other)."""

    def done() -> Any:
        server = conn.compute.get_server(server_id)
        return server if server.task_state is None and server.status != "REBUILD" else None

    return wait_until(done, timeout=60, what=f"server {server_id} settled")


def test_services_list_force_down_and_disable(conn: Any) -> None:
    services = {s.host: s for s in conn.compute.services(binary="nova-compute")}
    assert set(services) == {"node-01", "node-02", "spare-01"}
    assert all(s.state == "up" and s.status == "enabled" and not s.is_forced_down for s in services.values())
    assert all(len(s.id) == 36 for s in services.values())  # a UUID at microversion >= 2.53

    fence(conn, "node-01")

    after = service_of(conn, "node-01")
    assert (after.state, after.status, after.is_forced_down) == ("down", "disabled", True)
    assert after.disabled_reason == "lazarus test"
    assert service_of(conn, "node-02").state == "up"


def test_servers_of_a_host_with_compute_host_filter(conn: Any) -> None:
    on_node_01 = servers_on(conn, "node-01")
    assert len(on_node_01) == 4
    assert {s.compute_host for s in on_node_01} == {"node-01"}
    assert sorted(s.status for s in on_node_01) == ["ACTIVE", "ACTIVE", "ACTIVE", "SHUTOFF"]
    assert sum(1 for s in on_node_01 if s.metadata.get("HA_Enabled") == "True") == 3
    assert all(s.flavor.name == "m1.small" and s.flavor.vcpus == 1 for s in on_node_01)
    assert len(servers_on(conn, "node-02")) == 2
    assert servers_on(conn, "no-such-host") == []
    # Without all_tenants an admin sees only its own project's servers, as in Nova.
    assert list(conn.compute.servers(details=True, compute_host="node-01")) == []


def test_evacuate_refused_while_source_is_up_then_moves_every_server(conn: Any) -> None:
    servers = servers_on(conn, "node-01")
    still_in_use = "Compute service of node-01 is still in use"
    with pytest.raises(sdk_exceptions.BadRequestException, match=still_in_use):
        conn.compute.evacuate_server(servers[0])

    fence(conn, "node-01")
    for server in servers:
        conn.compute.evacuate_server(server)
    assert conn.compute.get_server(servers[0].id).status == "REBUILD"

    for server in servers:
        moved = settled(conn, server.id)
        assert moved.compute_host in ("node-02", "spare-01")
        assert moved.hypervisor_hostname == moved.compute_host
        assert moved.status == server.status  # ACTIVE stays ACTIVE, SHUTOFF stays SHUTOFF
        assert moved.vm_state == ("stopped" if server.status == "SHUTOFF" else "active")
    assert servers_on(conn, "node-01") == []

    response = conn.compute.get(
        "/os-migrations?migration_type=evacuation&source_compute=node-01", microversion="2.59"
    )
    migrations = response.json()["migrations"]
    assert sorted(m["instance_uuid"] for m in migrations) == sorted(s.id for s in servers)
    assert {m["status"] for m in migrations} == {"done"}
    assert all(m["dest_compute"] in ("node-02", "spare-01") and m["uuid"] for m in migrations)


def test_evacuate_to_a_named_host_and_refusals(conn: Any) -> None:
    server = servers_on(conn, "node-01")[0]
    fence(conn, "node-01")
    with pytest.raises(sdk_exceptions.BadRequestException, match="target host can't be the same"):
        conn.compute.evacuate_server(server, host="node-01")
    with pytest.raises(sdk_exceptions.NotFoundException, match="Compute host nowhere not found"):
        conn.compute.evacuate_server(server, host="nowhere")

    conn.compute.evacuate_server(server, host="spare-01")
    assert settled(conn, server.id).compute_host == "spare-01"
    with pytest.raises(sdk_exceptions.BadRequestException, match="Compute service of spare-01 is still in"):
        conn.compute.evacuate_server(server)  # landed on an up host: refused, as in Nova


def test_a_duplicate_evacuation_is_accepted_and_ends_as_on_real_nova(conn: Any, control: LabControl) -> None:
    """Nova 34 accepts a second evacuate while the first runs; the second rebuild then fails on
    the destination: server ERROR there, the first record `failed`, the second `accepted`."""
    control.settings(evacuate_delay=5.0)  # the second request must arrive while the first runs
    server = servers_on(conn, "node-01")[0]
    fence(conn, "node-01")
    first = conn.compute.post(f"/servers/{server.id}/action", json={"evacuate": {}}, microversion="2.94")
    second = conn.compute.post(f"/servers/{server.id}/action", json={"evacuate": {}}, microversion="2.94")
    assert (first.status_code, second.status_code) == (200, 200)

    def errored() -> Any:
        found = conn.compute.get_server(server.id)
        return found if found.status == "ERROR" else None

    failed = wait_until(errored, timeout=60, what="the duplicate's rebuild failed")
    assert failed.compute_host != "node-01" and failed.task_state is None
    assert failed.fault["message"].startswith(f"Conflict updating instance {server.id}.")
    response = conn.compute.get(f"/os-migrations?instance_uuid={server.id}", microversion="2.59")
    records = sorted(response.json()["migrations"], key=lambda m: m["id"])
    assert [(m["status"], m["dest_compute"]) for m in records] == [
        ("failed", failed.compute_host),
        ("accepted", None),
    ]


def test_microversion_2_95_leaves_evacuated_servers_shutoff(lab: LabManifest, conn: Any) -> None:
    active = next(s for s in servers_on(conn, "node-01") if s.status == "ACTIVE")
    fence(conn, "node-01")
    response = conn.compute.post(f"/servers/{active.id}/action", json={"evacuate": {}}, microversion="2.95")
    assert response.status_code == 200
    assert response.headers["OpenStack-API-Version"] == "compute 2.95"
    moved = settled(conn, active.id)
    assert (moved.status, moved.vm_state, moved.power_state) == ("SHUTOFF", "stopped", 4)
    conn.compute.start_server(moved)
    wait_until(lambda: conn.compute.get_server(active.id).status == "ACTIVE", what="started")


def test_no_valid_host_gives_error(conn: Any) -> None:
    server = servers_on(conn, "node-01")[0]
    fence(conn, "node-01")
    for host in ("node-02", "spare-01"):
        service = service_of(conn, host)
        conn.compute.disable_service(service, host, "nova-compute", disabled_reason="full")
    conn.compute.evacuate_server(server)
    failed = settled(conn, server.id)
    assert (failed.status, failed.vm_state, failed.compute_host) == ("ERROR", "error", "node-01")
    assert "No valid host" in failed.fault["message"]
    migrations = conn.compute.get(f"/os-migrations?instance_uuid={server.id}", microversion="2.59").json()
    assert [m["status"] for m in migrations["migrations"]] == ["error"]


def test_injected_evacuation_failure(conn: Any, control: LabControl) -> None:
    doomed, fine = servers_on(conn, "node-01")[:2]
    control.fail_evacuation(doomed.id)
    fence(conn, "node-01")
    conn.compute.evacuate_server(doomed)
    conn.compute.evacuate_server(fine)
    assert settled(conn, doomed.id).status == "ERROR"
    assert settled(conn, fine.id).status == "ACTIVE"
    statuses = {
        m["instance_uuid"]: m["status"]
        for m in conn.compute.get("/os-migrations", microversion="2.59").json()["migrations"]
    }
    # A failure on the destination compute: `failed` (a scheduling failure would be `error`), and
    # the server stays, in ERROR, on the host it was on.
    assert statuses == {doomed.id: "failed", fine.id: "done"}
    assert conn.compute.get_server(doomed.id).compute_host == "node-01"
    # An ERROR server may be evacuated again, as in Nova; once the fault is cleared it moves.
    control.fail_evacuation(doomed.id, fail=False)
    conn.compute.evacuate_server(doomed)
    assert settled(conn, doomed.id).status == "ACTIVE"


def test_power_off_stops_heartbeats_until_down_and_back(conn: Any, control: LabControl) -> None:
    control.kill("node-01")
    assert control.status()["hosts"]["node-01"]["power"] == "off"
    wait_until(lambda: service_of(conn, "node-01").state == "down", timeout=60, what="node-01 down")
    assert service_of(conn, "node-01").is_forced_down is False
    # A service that is down (not forced down) is enough for Nova to accept an evacuation.
    server = servers_on(conn, "node-01")[0]
    conn.compute.evacuate_server(server)
    assert settled(conn, server.id).compute_host != "node-01"

    control.power("node-01", on=True)
    wait_until(lambda: service_of(conn, "node-01").state == "up", timeout=60, what="node-01 up")


def test_force_up_refused_until_the_host_restarted(conn: Any, control: LabControl) -> None:
    control.kill("node-01")
    fence(conn, "node-01")
    server = servers_on(conn, "node-01")[0]
    conn.compute.evacuate_server(server)
    settled(conn, server.id)
    service = service_of(conn, "node-01")
    with pytest.raises(sdk_exceptions.BadRequestException, match="`done` evacuation migration records"):
        conn.compute.update_service_forced_down(service, "node-01", "nova-compute", forced=False)
    control.power("node-01", on=True)
    conn.compute.update_service_forced_down(service, "node-01", "nova-compute", forced=False)
    conn.compute.enable_service(service, "node-01", "nova-compute")
    wait_until(lambda: service_of(conn, "node-01").state == "up", what="node-01 up")


def test_stop_start_lock_and_reboot(conn: Any) -> None:
    server = next(s for s in servers_on(conn, "node-02") if s.status == "ACTIVE")
    conn.compute.stop_server(server)
    wait_until(lambda: conn.compute.get_server(server.id).status == "SHUTOFF", what="stopped")
    with pytest.raises(sdk_exceptions.ConflictException, match="vm_state stopped"):
        conn.compute.stop_server(server)
    conn.compute.start_server(server)
    wait_until(lambda: conn.compute.get_server(server.id).status == "ACTIVE", what="started")
    conn.compute.reboot_server(server, "HARD")
    wait_until(lambda: conn.compute.get_server(server.id).status == "ACTIVE", what="rebooted")
    conn.compute.lock_server(server, locked_reason="drill")
    locked = conn.compute.get_server(server.id)
    assert (locked.is_locked, locked.locked_reason) == (True, "drill")
    conn.compute.unlock_server(server)
    assert conn.compute.get_server(server.id).is_locked is False


def test_hypervisors_and_flavors(conn: Any) -> None:
    hypervisors = {h.name: h for h in conn.compute.hypervisors(details=True)}
    assert set(hypervisors) == {"node-01", "node-02", "spare-01"}
    assert hypervisors["node-01"].state == "up"
    legacy = conn.compute.get("/os-hypervisors/detail", microversion="2.87").json()["hypervisors"]
    node_01 = next(h for h in legacy if h["hypervisor_hostname"] == "node-01")
    # Nova counts its reserved_host_memory_mb (512) as used, as the real test bed shows.
    assert (
        node_01["vcpus"] == 32 and node_01["vcpus_used"] == 4 and node_01["memory_mb_used"] == 512 + 4 * 2048
    )
    flavor = conn.compute.find_flavor("m1.small")
    assert (flavor.vcpus, flavor.ram, flavor.disk) == (1, 2048, 20)
    assert conn.compute.get(f"/flavors/{flavor.id}/os-extra_specs").json() == {"extra_specs": {}}


def test_nova_shaped_errors_and_headers(lab: LabManifest, conn: Any) -> None:
    response = conn.compute.get("/servers/does-not-exist", microversion="2.94")
    assert response.status_code == 404
    assert response.json() == {
        "itemNotFound": {"code": 404, "message": "Instance does-not-exist could not be found."}
    }
    assert response.headers["x-openstack-request-id"].startswith("req-")
    assert response.headers["x-compute-request-id"] == response.headers["x-openstack-request-id"]
    response = conn.compute.get("/os-services?foo=bar", microversion="2.94")
    assert response.status_code == 400 and "foo" in response.json()["badRequest"]["message"]
    assert conn.compute.get("/servers", microversion="3.0").status_code == 406


def test_wrong_token_is_401(lab: LabManifest) -> None:
    intruder = connect(lab, auth={"endpoint": lab.nova_endpoint, "token": "wrong"})
    with pytest.raises(sdk_exceptions.HttpException) as caught:
        list(intruder.compute.services())
    assert caught.value.status_code == 401


def test_clouds_yaml_connects(lab: LabManifest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(lab.clouds_yaml))
    conn = openstack.connect(cloud=lab.cloud_name)
    assert len(list(conn.compute.services(binary="nova-compute"))) == 3


def test_slow_api_fault(conn: Any, control: LabControl) -> None:
    import time

    control.api_delay(300)
    started = time.monotonic()
    list(conn.compute.services())
    assert time.monotonic() - started >= 0.3  # a lower bound only: never flaky on a slow machine
    control.clear_faults()
    assert control.status()["faults"]["api_delay_ms"] == 0


def test_policy_fault_refuses_a_path_as_nova_does(conn: Any, control: LabControl) -> None:
    control.forbid("/os-hypervisors")
    with pytest.raises(sdk_exceptions.ForbiddenException) as caught:
        list(conn.compute.hypervisors(details=True))
    assert "Policy doesn't allow os_compute_api:os-hypervisors" in str(caught.value)
    assert len(list(conn.compute.services())) > 0  # other paths answer as before
    assert control.status()["faults"]["forbidden"] == ["/os-hypervisors"]
    control.clear_faults()
    assert len(list(conn.compute.hypervisors(details=True))) > 0


def test_boot_on_a_named_host_and_delete(conn: Any) -> None:
    flavor = conn.compute.find_flavor("m1.tiny")
    server = conn.compute.create_server(
        name="booted",
        image_id="11111111-1111-4111-8111-111111111111",
        flavor_id=flavor.id,
        networks="none",
        availability_zone="nova:spare-01",
        metadata={"HA_Enabled": "True"},
    )
    booted = conn.compute.wait_for_server(server, status="ACTIVE", interval=0.1, wait=60)
    assert (booted.compute_host, booted.metadata) == ("spare-01", {"HA_Enabled": "True"})
    conn.compute.delete_server(booted)
    conn.compute.wait_for_delete(booted, interval=0.1, wait=60)
    assert all(s.id != booted.id for s in servers_on(conn, "spare-01"))
