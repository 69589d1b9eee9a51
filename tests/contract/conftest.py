"""Targets for the `Compute` contract suite: the real Nova test bed and the lab's simulated Nova.

Each target gives the suite a `NovaCompute` pointed at it, plus a setup helper (`NovaAdmin`)
that talks plain HTTP to the same API, so setup and checks never go through the adapter
under test. The real Nova is shared with other people: every fixture restores what it
changed (servers deleted; a powered-off host restarted, un-forced and enabled again).

Real Nova (marker `nova`):
  LAZARUS_TEST_NOVA_ENDPOINT  e.g. http://127.0.0.1:18774/v2.1 (unset: skipped)
  LAZARUS_TEST_NOVA_TOKEN     default admin:admin
  LAZARUS_TEST_NOVA_LAB       path to ../shared/nova-lab (its nodectl.sh simulates power loss;
                              unset: the power-loss cases are skipped)
  LAZARUS_TEST_NOVA_VICTIM    the host the suite powers off, default node-02
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import openstack
import pytest
import requests

from receiver.adapters.nova import NovaCompute

T = TypeVar("T")

MICROVERSION = "2.94"
IMAGE_ID = "11111111-1111-4111-8111-111111111111"  # the nova-lab's stub Glance image
FLAVOR_NAME = "fake.small"
POLL_S = 0.2


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 180.0) -> T:
    """Poll `probe` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL_S)


class NovaAdmin:
    """Plain HTTP to the compute API for setup, cleanup and cross-checks."""

    def __init__(self, endpoint: str, token: str) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.http = requests.Session()
        self.http.headers.update({"X-Auth-Token": token, "OpenStack-API-Version": f"compute {MICROVERSION}"})

    def call(self, method: str, path: str, json: Any = None, ok: tuple[int, ...] = (200,)) -> Any:
        response = self.http.request(method, self.endpoint + path, json=json, timeout=30)
        if response.status_code not in ok:
            raise AssertionError(f"{method} {path}: HTTP {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    def service(self, host: str) -> dict[str, Any]:
        services = self.call("GET", f"/os-services?binary=nova-compute&host={host}")["services"]
        return next(s for s in services if s["host"] == host)

    def compute_hosts(self) -> list[str]:
        return sorted(s["host"] for s in self.call("GET", "/os-services?binary=nova-compute")["services"])

    def update_service(self, host: str, **change: Any) -> Any:
        service_id = self.service(host)["id"]
        return self.call("PUT", f"/os-services/{service_id}", json=change, ok=(200, 400))

    def service_update_status(self, host: str, **change: Any) -> tuple[int, Any]:
        service_id = self.service(host)["id"]
        response = self.http.put(f"{self.endpoint}/os-services/{service_id}", json=change, timeout=30)
        return response.status_code, response.json() if response.content else None

    def server(self, server_id: str) -> dict[str, Any] | None:
        body = self.call("GET", f"/servers/{server_id}", ok=(200, 404))
        return body.get("server") if body and "server" in body else None

    def all_servers(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/servers/detail?all_tenants=1")["servers"])

    def flavor_id(self, name: str) -> str:
        flavors = self.call("GET", "/flavors")["flavors"]
        return str(next(f["id"] for f in flavors if f["name"] == name))

    def boot(self, host: str, name: str, metadata: dict[str, str]) -> str:
        """POST /servers pinned to `host` (as admin, `nova:HOST` bypasses the scheduler)."""
        server = {
            "name": name,
            "imageRef": IMAGE_ID,
            "flavorRef": self.flavor_id(FLAVOR_NAME),
            "networks": "none",
            "availability_zone": f"nova:{host}",
            "metadata": metadata,
        }
        return str(self.call("POST", "/servers", json={"server": server}, ok=(202,))["server"]["id"])

    def create_aggregate(self, name: str, zone: str | None = None) -> str:
        body = {"aggregate": {"name": name, "availability_zone": zone}}
        return str(self.call("POST", "/os-aggregates", json=body)["aggregate"]["id"])

    def delete_aggregate(self, aggregate_id: str) -> None:
        """Remove its hosts, then the aggregate; an aggregate already gone is fine."""
        found = self.call("GET", f"/os-aggregates/{aggregate_id}", ok=(200, 404))
        if not found or "aggregate" not in found:
            return
        for host in found["aggregate"]["hosts"]:
            action = {"remove_host": {"host": host}}
            self.call("POST", f"/os-aggregates/{aggregate_id}/action", json=action, ok=(200, 404))
        self.call("DELETE", f"/os-aggregates/{aggregate_id}", ok=(200, 404))

    def hypervisors_287(self) -> dict[str, dict[str, Any]]:
        """os-hypervisors/detail at 2.87 (the last with resource figures), by service host."""
        headers = {"OpenStack-API-Version": "compute 2.87"}
        response = self.http.get(f"{self.endpoint}/os-hypervisors/detail", headers=headers, timeout=30)
        assert response.status_code == 200, response.text[:300]
        return {h["service"]["host"]: h for h in response.json()["hypervisors"]}

    def stop(self, server_id: str) -> None:
        self.call("POST", f"/servers/{server_id}/action", json={"os-stop": None}, ok=(202,))

    def stop_status(self, server_id: str) -> tuple[int, str]:
        response = self.http.post(
            f"{self.endpoint}/servers/{server_id}/action", json={"os-stop": None}, timeout=30
        )
        return response.status_code, response.text[:300]

    def delete(self, server_id: str) -> None:
        self.call("DELETE", f"/servers/{server_id}", ok=(204, 404))

    def wait_status(self, server_id: str, status: str, timeout: float = 180.0) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            server = self.server(server_id)
            if server and server["status"] == "ERROR":
                pytest.fail(f"server {server_id} went to ERROR: {server.get('fault')}")
            done = server and server["status"] == status and not server.get("OS-EXT-STS:task_state")
            return server if done else None

        return wait_for(f"server {server_id} {status}", probe, timeout)


@dataclass
class Target:
    """One compute API the contract holds against."""

    name: str
    endpoint: str
    token: str
    admin: NovaAdmin
    victim: str  # the host the suite boots on, forces down and powers off
    power_off: Callable[[str], None] | None  # None: power loss cannot be simulated here
    power_on: Callable[[str], None] | None
    create_server: Callable[[str, str, dict[str, str]], str]  # (host, name, metadata) -> id
    flavor: tuple[str, int]  # (name, vcpus) of the servers `boot` makes
    deletes_servers: bool = True  # the lab has no DELETE /servers; it is discarded whole
    project: str = "admin"  # the project of the suite's token (Nova's lock rules depend on owning)
    # (host, name, volumes) -> id of an ACTIVE server booted from a volume with `volumes` more
    # attached; None where there is no Cinder (the real test bed)
    create_volume_server: Callable[[str, str, int], str] | None = None
    booted: list[str] = field(default_factory=list)

    def compute(self, microversion: str = MICROVERSION, **options: Any) -> NovaCompute:
        connection = openstack.connect(
            auth_type="admin_token",
            auth={"endpoint": self.endpoint, "token": self.token},
            compute_api_version=microversion,
            api_timeout=30,
        )
        return NovaCompute(connection, microversion=microversion, **options)

    def compute_warm(self, **options: Any) -> NovaCompute:
        """A `compute()` whose one-time version discovery GET has already happened."""
        compute = self.compute(**options)
        compute.service(self.victim)
        return compute

    def boot(self, host: str, *, stopped: bool = False, owner: list[str] | None = None) -> str:
        """A server on `host`, ACTIVE (or SHUTOFF). Its id goes to `owner` (default: the list
        the `target` fixture deletes after each test)."""
        tag = f"lazarus-contract-{uuid.uuid4().hex[:8]}"
        # HA-enabled, as an operator marks the instances a host recovery must move (Masakari's rule).
        server_id = self.create_server(host, tag, {"lazarus-contract": tag, "HA_Enabled": "True"})
        (self.booted if owner is None else owner).append(server_id)
        self.admin.wait_status(server_id, "ACTIVE")
        if stopped:
            self.admin.stop(server_id)
            self.admin.wait_status(server_id, "SHUTOFF")
        return server_id

    def other_hosts(self, host: str) -> list[str]:
        return [h for h in self.admin.compute_hosts() if h != host]

    def cleanup_servers(self, owner: list[str] | None = None) -> None:
        booted = self.booted if owner is None else owner
        if not self.deletes_servers:
            booted.clear()
            return
        for server_id in booted:
            self.admin.delete(server_id)
        for server_id in booted:

            def gone(sid: str = server_id) -> bool:
                return self.admin.server(sid) is None

            wait_for(f"server {server_id} deleted", gone)
        booted.clear()

    def restore_host(self, host: str) -> None:
        """Power `host` back on and undo forced_down/disabled (nova-lab README, pitfall 4)."""
        restarted = datetime.now(UTC).replace(microsecond=0)
        if self.power_on is not None:
            self.power_on(host)

        def heartbeat_after_restart() -> bool:
            updated = self.admin.service(host).get("updated_at")
            return bool(updated) and datetime.fromisoformat(str(updated)).replace(tzinfo=UTC) > restarted

        wait_for(f"{host}'s compute service heartbeating again", heartbeat_after_restart)

        def forced_up() -> bool:
            # 400 until the restarted compute has moved its `done` evacuations to `completed`
            body = self.admin.update_service(host, forced_down=False)
            return bool(body and "service" in body)

        wait_for(f"{host} un-forced", forced_up)
        self.admin.update_service(host, status="enabled")
        wait_for(f"{host} up", lambda: self.admin.service(host)["state"] == "up")

    def restore_service(self, host: str) -> None:
        """Undo forced_down / disabled on a host whose compute kept running."""
        self.admin.update_service(host, forced_down=False)
        self.admin.update_service(host, status="enabled")

    def require_healthy(self, host: str) -> None:
        service = self.admin.service(host)
        if service["state"] != "up" or service["status"] != "enabled" or service["forced_down"]:
            pytest.skip(
                f"{self.name}: host {host} is not healthy (state={service['state']} status="
                f"{service['status']} forced_down={service['forced_down']}); someone else is using it"
            )


# ------------------------------------------------------------------------------------ real Nova


def _real_nova() -> Iterator[Target]:
    endpoint = os.environ.get("LAZARUS_TEST_NOVA_ENDPOINT")
    if not endpoint:
        pytest.skip("real Nova: LAZARUS_TEST_NOVA_ENDPOINT is not set (start ../shared/nova-lab)")
    token = os.environ.get("LAZARUS_TEST_NOVA_TOKEN", "admin:admin")
    lab = os.environ.get("LAZARUS_TEST_NOVA_LAB")
    nodectl = Path(lab) / "nodectl.sh" if lab else None

    def run_nodectl(action: str, host: str) -> None:
        assert nodectl is not None
        subprocess.run([str(nodectl), action, host], check=True, capture_output=True, timeout=60)

    power = nodectl is not None and nodectl.exists()
    admin = NovaAdmin(endpoint, token)
    try:
        admin.compute_hosts()
    except (requests.RequestException, AssertionError) as exc:
        pytest.fail(f"real Nova at {endpoint} (LAZARUS_TEST_NOVA_ENDPOINT) does not answer: {exc}")
    yield Target(
        name="nova",
        endpoint=endpoint,
        token=token,
        admin=admin,
        victim=os.environ.get("LAZARUS_TEST_NOVA_VICTIM", "node-02"),
        power_off=(lambda host: run_nodectl("kill", host)) if power else None,
        power_on=(lambda host: run_nodectl("start", host)) if power else None,
        create_server=admin.boot,
        flavor=(FLAVOR_NAME, 1),
        project=token.partition(":")[2] or token,  # the test bed's token is USER[:PROJECT]
    )


# ------------------------------------------------------------------------------------ the lab

LAB_HOSTS = ("node-01", "node-02", "spare-01")  # the real test bed's names
LAB_FLAVOR = ("1", "m1.tiny", 1)  # id, name, vcpus


def _lab(workdir: Path) -> Iterator[Target]:
    try:
        from receiver.lab.testing import LabControl, running_lab
    except ImportError as exc:
        pytest.skip(f"lab: receiver.lab.testing is not importable ({exc})")
    options = {"hosts": LAB_HOSTS, "servers_per_host": 0, "bmc": False, "evacuate_delay": 0.5}
    with running_lab(workdir, **options) as manifest:
        control = LabControl(manifest)

        def create_server(host: str, name: str, metadata: dict[str, str]) -> str:
            return control.add_server(name, host, flavor=LAB_FLAVOR[0], metadata=metadata)

        def create_volume_server(host: str, name: str, volumes: int) -> str:
            return control.add_server(
                name, host, flavor=LAB_FLAVOR[0], boot_from_volume=True, volumes=volumes
            )

        yield Target(
            name="lab",
            endpoint=manifest.nova_endpoint,
            token=manifest.token,
            admin=NovaAdmin(manifest.nova_endpoint, manifest.token),
            victim="node-02",
            power_off=lambda host: control.power(host, on=False),
            power_on=lambda host: control.power(host, on=True),
            create_server=create_server,
            flavor=LAB_FLAVOR[1:],
            deletes_servers=False,
            project="admin",  # the lab's token is Nova's admin in project "admin"; its servers are "demo"'s
            create_volume_server=create_volume_server,
        )


# ------------------------------------------------------------------------------------ fixtures

TARGETS = [
    pytest.param("nova", marks=pytest.mark.nova, id="nova"),
    pytest.param("lab", marks=pytest.mark.integration, id="lab"),
]


@pytest.fixture(scope="session", params=TARGETS)
def target_session(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    if request.param == "nova":
        yield from _real_nova()
    else:
        yield from _lab(tmp_path_factory.mktemp("contract-lab"))


@pytest.fixture
def target(target_session: Target) -> Iterator[Target]:
    """The target, with every server a test booted deleted afterwards."""
    try:
        yield target_session
    finally:
        target_session.cleanup_servers()


@pytest.fixture
def http_requests() -> Iterator[list[str]]:
    """The HTTP requests keystoneauth sends while the test runs ("GET http://...")."""
    seen: list[str] = []

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if message.startswith("REQ: curl"):
                parts = message.split()
                seen.append(f"{parts[parts.index('-X') + 1]} {parts[parts.index('-X') + 2]}")

    logger = logging.getLogger("keystoneauth.session")
    handler, level = Recorder(level=logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
