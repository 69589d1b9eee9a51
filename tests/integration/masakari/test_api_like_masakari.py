"""Our Masakari API answers as the real Masakari 22 did, request for request.

The scenario of ../shared/fixtures/masakari-api/ replayed against Lazarus (Flask's test
client, a real redis-server): same status codes, envelopes, field names and types, error
bodies and microversion headers.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.integration.masakari.kit import (
    TOKEN,
    assert_masakari_headers,
    assert_same_shape,
    open_recovery,
    recorded,
    send,
)

pytestmark = pytest.mark.integration


def replay(
    api: FlaskClient, name: str, path: str | None = None, body: Any = ...
) -> tuple[Any, dict[str, Any]]:
    """Send the recorded request (on our path when ids differ); returns our answer and theirs."""
    theirs = recorded(name)
    request = theirs["request"]
    url = request["url"].split(":15868", 1)[1]
    headers = {k: v for k, v in request["headers"].items() if k in ("X-Auth-Token", "OpenStack-API-Version")}
    if "X-Auth-Token" in headers:
        headers.update(TOKEN)
    sent = request["body"] if body is ... else body
    response = api.open(path or url, method=request["method"], json=sent, headers=headers)
    assert response.status_code == theirs["status"], response.get_data(as_text=True)
    return response, theirs


def version_of(theirs: dict[str, Any]) -> str | None:
    value = theirs["headers"].get("Openstack-Api-Version")
    return value.split()[1] if value else None


def test_version_documents_are_masakaris_and_public(api: FlaskClient) -> None:
    for name in ("GET_root_versions", "GET_v1", "GET_v1_slash"):
        theirs = recorded(name)
        path = theirs["request"]["url"].split(":15868", 1)[1]
        response = api.get(path)  # no token: clients discover versions before authenticating
        assert response.status_code == 200
        expected = _rebase(theirs["body"], "http://localhost/")
        assert response.get_json() == expected
        if name == "GET_root_versions":
            assert "OpenStack-API-Version" not in response.headers
        else:
            assert_masakari_headers(response, "1.0")


def test_errors_before_any_segment(api: FlaskClient) -> None:
    response, theirs = replay(api, "GET_segments_empty")
    assert response.get_json() == theirs["body"] == {"segments": []}
    assert_masakari_headers(response, "1.0")

    response = api.get("/v1/segments")  # no token
    assert response.status_code == recorded("GET_segments_no_token_401")["status"] == 401
    assert response.get_json()["error"]["code"] == 401

    response, theirs = replay(api, "GET_segment_not_found_404")
    assert response.get_json() == theirs["body"]
    assert_masakari_headers(response, version_of(theirs))

    response, theirs = replay(api, "GET_segments_unsupported_microversion_406")
    assert response.get_json() == theirs["body"]
    assert response.headers["Vary"] == "OpenStack-API-Version"
    assert "OpenStack-API-Version" not in response.headers

    response, theirs = replay(api, "POST_segment_invalid_400")
    assert response.get_json() == theirs["body"]
    assert response.content_type == theirs["headers"]["Content-Type"]


def test_the_recorded_scenario(api: FlaskClient) -> None:
    created, theirs = replay(api, "POST_segment")
    segment = created.get_json()["segment"]
    assert_same_shape(created.get_json(), theirs["body"])
    for key in ("name", "service_type", "enabled", "description", "recovery_method", "updated_at", "deleted"):
        assert segment[key] == theirs["body"]["segment"][key], key
    assert_masakari_headers(created, "1.2")
    their_segment = theirs["body"]["segment"]["uuid"]
    hosts_path = f"/v1/segments/{segment['uuid']}/hosts"

    hosts = {}
    for name in ("node-01", "node-02", "spare-01"):
        response, theirs = replay(api, f"POST_host_{name}", hosts_path)
        body = response.get_json()
        assert_same_shape(body, theirs["body"])
        assert body["host"]["failover_segment_id"] == segment["uuid"]
        assert body["host"]["failover_segment"] == segment
        assert body["host"]["fencing"] is None  # ours: no fence method given
        hosts[name] = body["host"]
    assert hosts["node-01"]["id"] < hosts["node-02"]["id"] < hosts["spare-01"]["id"]

    response, theirs = replay(api, "POST_host_duplicate_name_409", hosts_path)
    assert response.get_json() == theirs["body"]

    for name in ("GET_segments", "GET_segments_1.2"):
        response, theirs = replay(api, name)
        assert_same_shape(response.get_json(), theirs["body"])
        assert_masakari_headers(response, version_of(theirs))
    response, theirs = replay(api, "GET_segment", f"/v1/segments/{segment['uuid']}")
    assert response.get_json()["segment"] == segment

    response, theirs = replay(api, "GET_segment_hosts", hosts_path)
    listed = response.get_json()["hosts"]
    assert_same_shape(response.get_json(), theirs["body"])
    # Masakari's default order: newest first (created_at desc, then id desc)
    assert [h["name"] for h in listed] == [h["name"] for h in theirs["body"]["hosts"]]

    node_01 = f"{hosts_path}/{hosts['node-01']['uuid']}"
    response, theirs = replay(api, "GET_host_node-01", node_01)
    assert response.get_json()["host"] == hosts["node-01"]

    # A recovery of node-02 puts the whole segment "in use", as in Masakari
    record = open_recovery(api, "node-02")
    response, theirs = replay(api, "PUT_segment_under_recovery_409", f"/v1/segments/{segment['uuid']}")
    message = response.get_json()["conflictingRequest"]["message"]
    assert message.startswith(
        theirs["body"]["conflictingRequest"]["message"].replace(their_segment, segment["uuid"])[:-1]
    )
    assert record in message and "node-02" in message
    node_02 = f"{hosts_path}/{hosts['node-02']['uuid']}"
    response, theirs = replay(api, "PUT_host_under_recovery_409", node_02)
    their_host = theirs["request"]["url"].rsplit("/", 1)[1]
    expected = theirs["body"]["conflictingRequest"]["message"].replace(their_host, hosts["node-02"]["uuid"])
    assert response.get_json()["conflictingRequest"]["message"].startswith(expected[:-1])
    assert send(api, "DELETE", node_02).status_code == 409
    assert send(api, "DELETE", f"/v1/segments/{segment['uuid']}").status_code == 409
    _close(api, record)

    response, theirs = replay(api, "PUT_segment_description", f"/v1/segments/{segment['uuid']}")
    assert_same_shape(response.get_json(), theirs["body"])
    updated = response.get_json()["segment"]
    assert updated["description"] == "updated after recovery"
    assert updated["updated_at"] is not None and updated["created_at"] == segment["created_at"]

    send(api, "PUT", node_01, {"host": {"on_maintenance": True}})
    response, theirs = replay(api, "PUT_host_node-01_on_maintenance_false", node_01)
    assert_same_shape(response.get_json(), theirs["body"])
    assert response.get_json()["host"]["on_maintenance"] is False

    for name, host in (("node-01", "node-01"), ("node-02", "node-02"), ("spare-01", "spare-01")):
        response, theirs = replay(api, f"DELETE_host_{name}", f"{hosts_path}/{hosts[host]['uuid']}")
        assert response.get_data() == b""
        assert_masakari_headers(response, version_of(theirs))
    response, theirs = replay(api, "DELETE_segment", f"/v1/segments/{segment['uuid']}")
    assert response.get_data() == b""
    assert send(api, "GET", "/v1/segments").get_json() == {"segments": []}


def _close(api: FlaskClient, record: str) -> None:
    """Finish the recovery the way a worker does (the record store releases the host claim)."""
    from dataclasses import replace

    from receiver.domain.record import Status

    services = api.application.extensions["lazarus"]
    services.store.update(record, lambda r: replace(r, status=Status.FINISHED))


def _rebase(document: Any, base: str) -> Any:
    if isinstance(document, dict):
        return {k: _rebase(v, base) for k, v in document.items()}
    if isinstance(document, list):
        return [_rebase(v, base) for v in document]
    if isinstance(document, str) and document.startswith("http://127.0.0.1:15868/"):
        return base + document.removeprefix("http://127.0.0.1:15868/")
    return document
