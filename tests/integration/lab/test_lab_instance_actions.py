"""`os-instance-actions` over the lab's HTTP API, in the shapes the real Nova 34 test bed gave
(list newest first, paging from 2.58, events for admins, deleted servers from 2.21), and read
through Lazarus's own Nova adapter."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import openstack
import pytest

from receiver.adapters.nova import NovaCompute
from receiver.lab.manifest import LabManifest
from receiver.lab.testing import LabControl, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),  # openstacksdk's own
]

ACTION_KEYS = ["action", "instance_uuid", "request_id", "user_id", "project_id", "start_time", "message"]


def get(manifest: LabManifest, path: str, version: str = "2.94") -> tuple[int, Any]:
    request = urllib.request.Request(manifest.nova_endpoint + path)
    request.add_header("X-Auth-Token", manifest.token)
    request.add_header("OpenStack-API-Version", f"compute {version}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def post(manifest: LabManifest, path: str, body: Any) -> int:
    request = urllib.request.Request(
        manifest.nova_endpoint + path, data=json.dumps(body).encode(), method="POST"
    )
    request.add_header("X-Auth-Token", manifest.token)
    request.add_header("Content-Type", "application/json")
    request.add_header("OpenStack-API-Version", "compute 2.94")
    with urllib.request.urlopen(request, timeout=10) as response:
        status: int = response.status
        return status


def test_instance_actions_as_nova_shows_them(lab: LabManifest, control: LabControl, conn: Any) -> None:
    server = next(
        s for s in conn.compute.servers(details=True, all_projects=True, compute_host="node-01")
        if s.status == "ACTIVE"
    )  # fmt: skip
    path = f"/servers/{server.id}/os-instance-actions"
    assert post(lab, f"/servers/{server.id}/action", {"os-stop": None}) == 202
    wait_until(lambda: conn.compute.get_server(server.id).status == "SHUTOFF", timeout=30, what="SHUTOFF")

    status, body = get(lab, path)
    assert status == 200
    stop, create = body["instanceActions"]
    assert list(stop) == [*ACTION_KEYS, "updated_at"] and "links" not in body
    assert (stop["action"], stop["user_id"], stop["project_id"], stop["message"]) == (
        "stop",
        "admin",
        "admin",
        None,
    )
    assert (create["action"], create["user_id"]) == ("create", server.user_id)
    assert stop["start_time"].endswith(".000000")  # whole seconds, as in Nova's database

    # Paging from 2.58: limit, a next link with the marker; older microversions ignore it.
    status, page = get(lab, f"{path}?limit=1")
    assert [a["request_id"] for a in page["instanceActions"]] == [stop["request_id"]]
    [link] = page["links"]
    assert link["rel"] == "next" and link["href"].endswith(f"?limit=1&marker={stop['request_id']}")
    assert [
        a["action"] for a in get(lab, f"{path}?limit=1&marker={stop['request_id']}")[1]["instanceActions"]
    ] == ["create"]
    old = get(lab, f"{path}?limit=1", version="2.1")[1]
    assert len(old["instanceActions"]) == 2 and list(old["instanceActions"][0]) == ACTION_KEYS
    assert get(lab, f"{path}?limit=x")[0] == 400
    assert get(lab, f"{path}?marker=req-nope") == (
        400,
        {"badRequest": {"code": 400, "message": "Marker None could not be found."}},
    )
    assert get(lab, f"{path}?bogus=1")[0] == 400

    # One action with its events, as an admin sees them.
    status, shown = get(lab, f"{path}/{stop['request_id']}")
    [event] = shown["instanceAction"]["events"]
    assert (event["event"], event["result"], event["host"], event["traceback"], event["details"]) == (
        "compute_stop_instance",
        "Success",
        "node-01",
        None,
        None,
    )
    assert len(event["hostId"]) == 56
    assert set(get(lab, f"{path}/{stop['request_id']}", version="2.1")[1]["instanceAction"]["events"][0]) == {
        "event",
        "start_time",
        "finish_time",
        "result",
        "traceback",
    }
    assert get(lab, f"{path}/req-nope")[1] == {
        "itemNotFound": {"code": 404, "message": "Action req-nope not found"}
    }

    # Nova's power sync stops a crashed guest with no user: what the adapter reads.
    assert post(lab, f"/servers/{server.id}/action", {"os-start": None}) == 202
    wait_until(lambda: conn.compute.get_server(server.id).status == "ACTIVE", timeout=30, what="ACTIVE")
    control.crash(server.id, sync_after=0)
    wait_until(lambda: conn.compute.get_server(server.id).status == "SHUTOFF", timeout=30, what="Nova's stop")
    adapter = NovaCompute(openstack.connect(**lab.openstack_auth()), microversion="2.94")
    last = adapter.last_power_action(server.id)
    assert last is not None and (last.action, last.user_id) == ("stop", None)

    # A deleted server's actions stay listable from 2.21.
    conn.compute.delete_server(server.id)
    assert get(lab, path)[1]["instanceActions"][0]["action"] == "delete"
    assert get(lab, path, version="2.20")[0] == 404
    assert get(lab, "/servers/00000000-0000-4000-8000-000000000000/os-instance-actions")[0] == 404


def test_paging_corners_as_the_test_bed_gives_them(lab: LabManifest, conn: Any) -> None:
    """Each answer here was read off the real Nova 34 test bed for the same request."""
    server = next(
        s for s in conn.compute.servers(details=True, all_projects=True, compute_host="node-01")
        if s.status == "ACTIVE"
    )  # fmt: skip
    path = f"/servers/{server.id}/os-instance-actions"
    [create] = get(lab, path)[1]["instanceActions"]
    marker = create["request_id"]
    # The next link carries the request's parameters sorted by name, then the marker.
    [link] = get(lab, f"{path}?limit=1&changes-since=2000-01-01T00:00:00Z")[1]["links"]
    assert link["href"].endswith(f"{path}?changes-since=2000-01-01T00%3A00%3A00Z&limit=1&marker={marker}")
    # A marker that changes-since filters out is still found: an empty page, not a 400.
    assert get(lab, f"{path}?marker={marker}&changes-since=2999-01-01T00:00:00Z") == (
        200,
        {"instanceActions": []},
    )
    # A bad limit is reported before an unknown marker; a bad time says why.
    assert get(lab, f"{path}?limit=x&marker=req-nope")[1]["badRequest"]["message"] == (
        "Invalid input for query parameters limit. Value: x. 'x' does not match '^[0-9]*$'"
    )
    assert get(lab, f"{path}?changes-since=garbage")[1]["badRequest"]["message"] == (
        "Invalid input for query parameters changes-since. Value: garbage. 'garbage' is not a 'date-time'"
    )
