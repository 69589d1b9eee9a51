"""The real clients against a real HTTP server: python-masakariclient's `openstack segment ...`
(a subprocess, `--os-auth-type admin_token`) and openstacksdk's `instance_ha` proxy.

Lazarus runs in a werkzeug server on a free port of 127.0.0.1, on a private redis-server. A
WSGI wrapper records what the clients send, which must be what they sent to the real
Masakari (../shared/fixtures/masakari-clients/).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from receiver.bootstrap import Services
from receiver.web.app import create_app
from tests.conftest import TEST_TOKEN
from tests.integration.masakari.kit import client_requests

pytestmark = pytest.mark.integration
OPENSTACK = Path(sys.executable).parent / "openstack"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Recorder:
    """WSGI middleware: one entry per request (method, path, query, the headers that matter)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.seen.append(
            {
                "method": environ["REQUEST_METHOD"],
                "path": environ["PATH_INFO"],
                "query": environ.get("QUERY_STRING", ""),
                "version": environ.get("HTTP_OPENSTACK_API_VERSION"),
                "token": "HTTP_X_AUTH_TOKEN" in environ,
            }
        )
        return self.app(environ, start_response)

    def take(self) -> list[dict[str, Any]]:
        seen, self.seen = self.seen, []
        return seen


@pytest.fixture
def server(app_services: Services) -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder(create_app(app_services))
    http = make_server("127.0.0.1", 0, recorder, threaded=True)
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}/v1", recorder
    finally:
        http.shutdown()
        thread.join(timeout=30)
        http.server_close()


@pytest.fixture
def openstack(server: tuple[str, Recorder], tmp_path: Path) -> Callable[..., Any]:
    """`openstack --os-auth-type admin_token --os-token T --os-endpoint URL/v1 ...`, JSON out."""
    assert OPENSTACK.exists(), "python-openstackclient is in the dev extra: pip install -e '.[dev]'"
    endpoint, _ = server
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["HOME"] = str(tmp_path)  # its caches and config stay in the test's directory

    def run(*args: str, token: str = TEST_TOKEN, ok: bool = True) -> Any:
        command = [
            str(OPENSTACK),
            "--os-auth-type",
            "admin_token",
            "--os-token",
            token,
            "--os-endpoint",
            endpoint,
        ]
        done = subprocess.run(
            [*command, *args], capture_output=True, text=True, env=env, timeout=120, check=False
        )
        assert (done.returncode == 0) is ok, f"{args}: {done.stdout}{done.stderr}"
        if not ok:
            return done.stdout + done.stderr
        return json.loads(done.stdout) if "-f" in args else done.stdout

    return run


def _shape(requests: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(r["method"], UUID.sub("<uuid>", r["path"]), r.get("version")) for r in requests]


def _recorded_shape(name: str, start: int, count: int) -> list[tuple[str, str, str | None]]:
    sent = client_requests(name)[start : start + count]
    return _shape([{**r, "version": r["headers"].get("OpenStack-API-Version")} for r in sent])


def test_openstack_segment_commands(
    openstack: Callable[..., Any], server: tuple[str, Recorder], app_services: Services
) -> None:
    _, recorder = server
    created = openstack("segment", "create", "seg-osc", "auto", "COMPUTE", "-f", "json")
    assert (created["name"], created["recovery_method"], created["is_enabled"]) == ("seg-osc", "auto", True)
    # the same requests as it sent the real Masakari: discovery, create, show; at microversion 1.3
    assert _shape(recorder.take()) == _recorded_shape("requests_osc", 4, 3)
    assert created["id"] == app_services.inventory.segment("seg-osc").meta.id

    listed = openstack("segment", "list", "-f", "json")
    assert [(s["uuid"], s["name"], s["is_enabled"]) for s in listed] == [(created["uuid"], "seg-osc", True)]
    assert recorder.take()[-1]["token"] is True

    updated = openstack(
        "segment", "update", "seg-osc", "--description", "row 1", "--recovery_method", "reserved_host",
        "--is_enabled", "False", "-f", "json",
    )  # fmt: skip
    assert (updated["description"], updated["recovery_method"], updated["is_enabled"]) == (
        "row 1",
        "reserved_host",
        False,
    )
    assert updated["updated_at"] is not None
    shown = openstack("segment", "show", created["uuid"], "-f", "json")
    assert shown["uuid"] == created["uuid"] and shown["description"] == "row 1"

    duplicate = openstack("segment", "create", "seg-osc", "auto", "COMPUTE", ok=False)
    assert "409" in duplicate and "Failover segment with name seg-osc already exists." in duplicate
    refused = openstack("segment", "list", token="not-the-token", ok=False)
    assert "401" in refused
    assert "Segment is not found: nope" in openstack("segment", "show", "nope", ok=False)

    assert "Segment deleted: seg-osc" in openstack("segment", "delete", "seg-osc")
    assert openstack("segment", "list", "-f", "json") == []
    assert app_services.inventory.segments() == []


def test_openstack_segment_host_commands(
    openstack: Callable[..., Any], server: tuple[str, Recorder], app_services: Services
) -> None:
    _, recorder = server
    openstack("segment", "create", "seg-h", "reserved_host", "COMPUTE", "-f", "json")
    recorder.take()
    host = openstack("segment", "host", "create", "compute-01", "COMPUTE", "SSH", "seg-h", "-f", "json")
    assert (host["name"], host["type"], host["control_attributes"], host["reserved"]) == (
        "compute-01",
        "COMPUTE",
        "SSH",
        False,
    )
    sent = recorder.take()
    assert _shape(sent)[-2:] == _recorded_shape("requests_osc_host", 4, 2)
    spare = openstack(
        "segment", "host", "create", "spare-01", "COMPUTE", "SSH", "seg-h", "--reserved", "True", "-f", "json"
    )
    assert spare["reserved"] is True

    listed = openstack("segment", "host", "list", "seg-h", "-f", "json")
    assert sorted(h["name"] for h in listed) == ["compute-01", "spare-01"]
    only_spares = openstack("segment", "host", "list", "seg-h", "--filters", "reserved=True", "-f", "json")
    assert [h["name"] for h in only_spares] == ["spare-01"]
    shown = openstack("segment", "host", "show", "seg-h", "compute-01", "-f", "json")
    assert shown["uuid"] == host["uuid"] and shown["failover_segment_id"] == host["failover_segment_id"]

    updated = openstack(
        "segment", "host", "update", "seg-h", "compute-01",
        "--on_maintenance", "True", "--type", "COMPUTEHOST", "-f", "json",
    )  # fmt: skip
    assert (updated["on_maintenance"], updated["type"]) == (True, "COMPUTEHOST")
    view = app_services.inventory.host("compute-01")
    assert view is not None and view.on_maintenance and view.state.reason == "api"

    duplicate = openstack("segment", "host", "create", "spare-01", "COMPUTE", "SSH", "seg-h", ok=False)
    assert "Host with name spare-01 already exists." in duplicate

    assert "Host deleted: compute-01" in openstack("segment", "host", "delete", "seg-h", "compute-01")
    assert [h["name"] for h in openstack("segment", "host", "list", "seg-h", "-f", "json")] == ["spare-01"]
    openstack("segment", "delete", "seg-h")
    assert app_services.inventory.hosts() == []


def test_openstacksdk_instance_ha_proxy(server: tuple[str, Recorder], app_services: Services) -> None:
    import openstack.connection
    from openstack import exceptions

    endpoint, recorder = server
    conn = openstack.connection.Connection(
        auth_type="admin_token", auth={"token": TEST_TOKEN, "endpoint": endpoint}
    )
    ha = conn.instance_ha
    segment = ha.create_segment(
        name="seg-az1",
        recovery_method="reserved_host",
        service_type="COMPUTE",
        description="harness",
        is_enabled=False,
    )
    assert (segment.name, segment.is_enabled, segment.recovery_method) == ("seg-az1", False, "reserved_host")
    create = next(r for r in recorder.take() if r["method"] == "POST")
    assert create["version"] == "instance-ha 1.2" and create["token"]  # as it sent Masakari
    host = ha.create_host(
        segment.uuid,
        name="compute-01",
        type="COMPUTE",
        control_attributes="SSH",
        reserved=False,
        on_maintenance=False,
    )
    spare = ha.create_host(
        segment.uuid, name="spare-01", type="COMPUTE", control_attributes="SSH", reserved=True
    )
    assert host.failover_segment_id == segment.uuid and spare.reserved is True

    assert [s.name for s in ha.segments()] == ["seg-az1"]
    assert [h.name for h in ha.hosts(segment.uuid, reserved=True)] == ["spare-01"]
    assert ha.get_host(host.uuid, segment.uuid).name == "compute-01"
    assert ha.update_host(host.uuid, segment.uuid, reserved=True).reserved is True
    assert ha.update_segment(segment.uuid, description="changed").description == "changed"
    # passing the resource object puts its integer id in the path: Lazarus finds it too
    assert ha.get_segment(segment).uuid == segment.uuid

    for i in range(3):
        ha.create_segment(name=f"page-{i}", recovery_method="auto", service_type="COMPUTE")
    paged = [s.name for s in ha.segments(limit=1)]  # the SDK pages with the last item's id as marker
    assert paged == ["page-2", "page-1", "page-0", "seg-az1"]
    markers = [r["query"] for r in recorder.take() if r["query"].startswith("marker=")]
    assert len(markers) == 4

    with pytest.raises(exceptions.ConflictException, match="Host with name spare-01 already exists"):
        ha.create_host(segment.uuid, name="spare-01", type="COMPUTE", control_attributes="SSH")
    with pytest.raises(exceptions.NotFoundException, match="No failover segment with id"):
        ha.get_segment("0b4f5bd2-5d1c-4f38-9d55-0a5b7a1c9e01")

    ha.delete_host(host.uuid, segment.uuid, ignore_missing=False)
    ha.delete_host(spare.uuid, segment.uuid, ignore_missing=False)
    ha.delete_segment(segment, ignore_missing=False)
    assert sorted(s.name for s in ha.segments()) == ["page-0", "page-1", "page-2"]
    assert app_services.inventory.hosts() == []
