"""The Masakari API's rules beyond the recorded scenario: microversions, filters, sorting and
pagination, authentication of writes, our fencing block, and the maintenance rule."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import TEST_TOKEN
from tests.integration.masakari.kit import inventory, open_recovery, send

pytestmark = pytest.mark.integration

FENCING = {"address": "10.0.0.11", "port": 6230, "username": "admin", "password_ref": "env:BMC_NODE01"}


def segment(api: FlaskClient, name: str, method: str = "auto", **extra: Any) -> dict[str, Any]:
    body = {"segment": {"name": name, "recovery_method": method, "service_type": "COMPUTE", **extra}}
    response = send(api, "POST", "/v1/segments", body, version="1.2")
    assert response.status_code == 201, response.get_json()
    created: dict[str, Any] = response.get_json()["segment"]
    return created


def host(api: FlaskClient, segment_uuid: str, name: str, **extra: Any) -> dict[str, Any]:
    body = {"host": {"name": name, "type": "COMPUTE", "control_attributes": "SSH", **extra}}
    response = send(api, "POST", f"/v1/segments/{segment_uuid}/hosts", body)
    assert response.status_code == 201, response.get_json()
    created: dict[str, Any] = response.get_json()["host"]
    return created


def message(response: Any) -> str:
    [(_, fault)] = response.get_json().items()
    text: str = fault["message"]
    return text


def test_microversions(api: FlaskClient) -> None:
    body = {"segment": {"name": "a", "recovery_method": "auto", "service_type": "COMPUTE", "enabled": False}}
    refused = send(api, "POST", "/v1/segments", body)  # no header: 1.0, where `enabled` does not exist
    assert refused.status_code == 400
    assert "Additional properties are not allowed ('enabled' was unexpected)" in message(refused)
    assert send(api, "POST", "/v1/segments", body, version="1.1").status_code == 400
    created = send(api, "POST", "/v1/segments", body, version="1.2")
    assert created.status_code == 201 and created.get_json()["segment"]["enabled"] is False
    latest = send(api, "GET", "/v1/segments", version="latest")
    assert latest.headers["OpenStack-API-Version"] == "instance-ha 1.3"
    assert (
        send(api, "GET", "/v1/segments", version="1.3").headers["OpenStack-API-Version"] == "instance-ha 1.3"
    )
    too_old = send(api, "GET", "/v1/segments", version="0.9")
    assert too_old.status_code == 406
    assert message(too_old) == "Version 0.9 is not supported by the API. Minimum is 1.0 and maximum is 1.3."
    assert send(api, "GET", "/v1/segments", version="one").status_code == 400
    other_service = api.get(
        "/v1/segments", headers={"X-Auth-Token": TEST_TOKEN, "OpenStack-API-Version": "compute 2.95"}
    )
    assert other_service.headers["OpenStack-API-Version"] == "instance-ha 1.0"
    enabled = send(
        api,
        "PUT",
        f"/v1/segments/{created.get_json()['segment']['uuid']}",
        {"segment": {"enabled": "on"}},
        "1.2",
    )
    assert enabled.get_json()["segment"]["enabled"] is True


def test_writes_need_authentication_bearer_or_x_auth_token(api: FlaskClient) -> None:
    body = {"segment": {"name": "a", "recovery_method": "auto", "service_type": "COMPUTE"}}
    assert api.post("/v1/segments", json=body).status_code == 401
    assert api.post("/v1/segments", json=body, headers={"X-Auth-Token": "wrong"}).status_code == 401
    bearer = api.post("/v1/segments", json=body, headers={"Authorization": f"Bearer {TEST_TOKEN}"})
    assert bearer.status_code == 201
    uuid = bearer.get_json()["segment"]["uuid"]
    assert api.delete(f"/v1/segments/{uuid}").status_code == 401
    assert api.put(f"/v1/segments/{uuid}", json={"segment": {"description": "x"}}).status_code == 401
    assert send(api, "GET", f"/v1/segments/{uuid}").get_json()["segment"]["description"] is None


def test_duplicates_and_not_found(api: FlaskClient) -> None:
    first = segment(api, "rack-a")
    second = segment(api, "rack-b")
    again = send(
        api,
        "POST",
        "/v1/segments",
        {"segment": {"name": "rack-a", "recovery_method": "auto", "service_type": "C"}},
    )
    assert again.status_code == 409 and message(again) == "Failover segment with name rack-a already exists."
    rename = send(api, "PUT", f"/v1/segments/{second['uuid']}", {"segment": {"name": "rack-a"}})
    assert rename.status_code == 409
    host(api, first["uuid"], "node-01")
    elsewhere = send(
        api,
        "POST",
        f"/v1/segments/{second['uuid']}/hosts",
        {"host": {"name": "node-01", "type": "C", "control_attributes": ""}},
    )
    assert elsewhere.status_code == 409 and message(elsewhere) == "Host with name node-01 already exists."
    missing = "6a0c0a36-0000-4000-8000-000000000000"
    assert send(api, "GET", f"/v1/segments/{missing}/hosts").status_code == 404
    assert (
        send(
            api,
            "POST",
            f"/v1/segments/{missing}/hosts",
            {"host": {"name": "x", "type": "C", "control_attributes": ""}},
        ).status_code
        == 404
    )
    assert send(api, "PUT", f"/v1/segments/{missing}", {"segment": {"description": "x"}}).status_code == 404
    assert send(api, "DELETE", f"/v1/segments/{missing}").status_code == 404
    # a host is found only under its own segment (Masakari LP#1854323)
    node = send(api, "GET", f"/v1/segments/{first['uuid']}/hosts").get_json()["hosts"][0]
    wrong = send(api, "GET", f"/v1/segments/{second['uuid']}/hosts/{node['uuid']}")
    assert wrong.status_code == 404 and "itemNotFound" in wrong.get_json()
    assert send(api, "PUT", f"/v1/segments/{first['uuid']}", {"segment": {}}).status_code == 400


def test_filters_sorting_and_pagination(api: FlaskClient) -> None:
    a = segment(api, "a-auto", "auto")
    segment(api, "b-reserved", "reserved_host", enabled=False)
    c = segment(api, "c-auto", "auto", service_type="OTHER")

    def names(response: Any) -> list[str]:
        return [s["name"] for s in response.get_json()["segments"]]

    assert names(send(api, "GET", "/v1/segments")) == ["c-auto", "b-reserved", "a-auto"]  # newest first
    assert names(send(api, "GET", "/v1/segments?recovery_method=auto")) == ["c-auto", "a-auto"]
    assert names(send(api, "GET", "/v1/segments?service_type=OTHER")) == ["c-auto"]
    assert names(send(api, "GET", "/v1/segments?enabled=false")) == ["b-reserved"]
    assert send(api, "GET", "/v1/segments?enabled=perhaps").status_code == 400
    assert names(send(api, "GET", "/v1/segments?sort_key=name&sort_dir=asc")) == [
        "a-auto",
        "b-reserved",
        "c-auto",
    ]
    assert names(
        send(api, "GET", "/v1/segments?sort_key=recovery_method&sort_dir=desc&sort_key=name&sort_dir=asc")
    ) == [
        "b-reserved",
        "a-auto",
        "c-auto",
    ]
    assert send(api, "GET", "/v1/segments?sort_key=password").status_code == 400
    assert send(api, "GET", "/v1/segments?sort_dir=sideways").status_code == 400
    # pages by uuid marker (Masakari) and by integer id (what openstacksdk sends back)
    assert names(send(api, "GET", "/v1/segments?limit=1")) == ["c-auto"]
    assert names(send(api, "GET", f"/v1/segments?limit=1&marker={c['uuid']}")) == ["b-reserved"]
    assert names(send(api, "GET", f"/v1/segments?limit=5&marker={c['id']}")) == ["b-reserved", "a-auto"]
    assert names(send(api, "GET", f"/v1/segments?marker={a['uuid']}")) == []
    assert names(send(api, "GET", f"/v1/segments?recovery_method=auto&marker={c['uuid']}")) == ["a-auto"]
    assert send(api, "GET", "/v1/segments?marker=nope").status_code == 400
    assert send(api, "GET", "/v1/segments?limit=-1").status_code == 400
    assert send(api, "GET", "/v1/segments?limit=many").status_code == 400

    for name, extra in (("n1", {}), ("spare-1", {"reserved": True}), ("n2", {"on_maintenance": "True"})):
        host(api, a["uuid"], name, **extra)

    def hosts(query: str) -> list[str]:
        listed = send(api, "GET", f"/v1/segments/{a['uuid']}/hosts{query}").get_json()["hosts"]
        return [h["name"] for h in listed]

    assert hosts("") == ["n2", "spare-1", "n1"]
    assert hosts("?reserved=true") == ["spare-1"]
    assert hosts("?on_maintenance=1") == ["n2"]
    assert hosts("?name=n1") == ["n1"]
    assert hosts("?type=COMPUTE&control_attributes=SSH&sort_key=name&sort_dir=asc") == ["n1", "n2", "spare-1"]
    assert send(api, "GET", f"/v1/segments/{a['uuid']}/hosts?reserved=sometimes").status_code == 400


def test_fencing_block_holds_a_reference_never_a_secret(api: FlaskClient) -> None:
    seg = segment(api, "rack-a")
    created = host(api, seg["uuid"], "node-01", fencing=FENCING)
    assert created["fencing"] == {
        "driver": "ipmi",
        "address": "10.0.0.11",
        "port": 6230,
        "username": "admin",
        "password_ref": "env:BMC_NODE01",
    }
    path = f"/v1/segments/{seg['uuid']}/hosts/{created['uuid']}"
    secret = "hunter2-the-bmc-password"
    refused = send(api, "PUT", path, {"host": {"fencing": {"password": secret}}})
    assert refused.status_code == 400
    assert secret not in refused.get_data(as_text=True)
    assert "fencing.password" in message(refused)
    refused = send(api, "PUT", path, {"host": {"fencing": {"password_ref": secret}}})
    assert refused.status_code == 400 and secret not in refused.get_data(as_text=True)
    refused = send(api, "PUT", path, {"host": {"fencing": {"address": "", "username": secret}}})
    assert refused.status_code == 400 and secret not in refused.get_data(as_text=True)
    # a partial block changes only what it names
    moved = send(api, "PUT", path, {"host": {"fencing": {"address": "10.0.0.99"}}}).get_json()["host"]
    assert moved["fencing"] == {**created["fencing"], "address": "10.0.0.99"}
    by_file = send(api, "PUT", path, {"host": {"fencing": {"password": {"file": "/etc/lazarus/bmc/n1"}}}})
    assert by_file.get_json()["host"]["fencing"]["password_ref"] == "file:/etc/lazarus/bmc/n1"
    services = api.application.extensions["lazarus"]
    stored = services.redis.get(f"{services.settings.key_prefix}:inventory").decode()
    assert secret not in stored and "/etc/lazarus/bmc/n1" in stored
    removed = send(api, "PUT", path, {"host": {"fencing": None}})
    assert removed.get_json()["host"]["fencing"] is None
    no_password = send(
        api,
        "POST",
        f"/v1/segments/{seg['uuid']}/hosts",
        {
            "host": {
                "name": "node-02",
                "type": "COMPUTE",
                "control_attributes": "",
                "fencing": {"address": "10.0.0.12", "username": "admin"},
            }
        },
    )
    assert no_password.status_code == 400 and "fencing.password" in message(no_password)


def test_a_fenced_host_stays_on_maintenance_until_reinstated(api: FlaskClient) -> None:
    seg = segment(api, "rack-a")
    node = host(api, seg["uuid"], "node-01")
    path = f"/v1/segments/{seg['uuid']}/hosts/{node['uuid']}"
    services = api.application.extensions["lazarus"]
    record = "0b4f5bd2-5d1c-4f38-9d55-0a5b7a1c9e01"
    # what the host recovery does once the BMC confirmed the power is off
    services.inventory.set_maintenance("node-01", f"fenced by recovery {record}", record, datetime.now(UTC))
    shown = send(api, "GET", path).get_json()["host"]
    assert shown["on_maintenance"] is True and shown["fenced_by"] == record
    refused = send(api, "PUT", path, {"host": {"on_maintenance": False}})
    assert refused.status_code == 409
    assert record in message(refused) and "reinstated explicitly" in message(refused)
    # other fields still change; the maintenance stays
    updated = send(api, "PUT", path, {"host": {"type": "COMPUTEHOST", "on_maintenance": True}})
    assert updated.status_code == 200 and updated.get_json()["host"]["on_maintenance"] is True
    renamed = send(api, "PUT", path, {"host": {"name": "node-01b"}}).get_json()["host"]
    assert renamed["uuid"] == node["uuid"] and renamed["fenced_by"] == record  # the state follows the host
    # deleted and added back, it is still out of service
    assert send(api, "DELETE", path).status_code == 204
    again = host(api, seg["uuid"], "node-01b")
    assert again["on_maintenance"] is True and again["fenced_by"] == record


def test_a_recovery_blocks_its_segment_only(api: FlaskClient) -> None:
    busy = segment(api, "busy")
    calm = segment(api, "calm")
    host(api, busy["uuid"], "node-01")
    other = host(api, busy["uuid"], "node-02")
    calm_host = host(api, calm["uuid"], "node-03")
    record = open_recovery(api, "node-01")
    blocked = send(
        api, "PUT", f"/v1/segments/{busy['uuid']}/hosts/{other['uuid']}", {"host": {"reserved": True}}
    )
    assert blocked.status_code == 409 and "node-01 is under recovery " + record in message(blocked)
    shown = send(api, "GET", f"/v1/segments/{busy['uuid']}/hosts?name=node-01").get_json()["hosts"][0]
    assert shown["under_recovery"] == record
    fine = send(
        api, "PUT", f"/v1/segments/{calm['uuid']}/hosts/{calm_host['uuid']}", {"host": {"reserved": True}}
    )
    assert fine.status_code == 200 and fine.get_json()["host"]["reserved"] is True
    # adding a host to a busy segment is allowed (Masakari allows it too)
    assert host(api, busy["uuid"], "node-04")["name"] == "node-04"


def test_rename_keeps_ids_and_hosts(api: FlaskClient) -> None:
    seg = segment(api, "rack-a")
    node = host(api, seg["uuid"], "node-01")
    renamed = send(api, "PUT", f"/v1/segments/{seg['uuid']}", {"segment": {"name": "rack-z"}}).get_json()[
        "segment"
    ]
    assert (renamed["uuid"], renamed["id"]) == (seg["uuid"], seg["id"])
    [kept] = send(api, "GET", f"/v1/segments/{seg['uuid']}/hosts").get_json()["hosts"]
    assert kept["uuid"] == node["uuid"] and kept["failover_segment"]["name"] == "rack-z"
    # a new segment under the old name is a different one
    again = segment(api, "rack-a")
    assert again["uuid"] != seg["uuid"] and again["id"] > seg["id"]


def test_a_file_applied_inventory_is_served_with_its_fencing_references(api: FlaskClient) -> None:
    """(Moved here with the routes from tests/integration/core/test_webhook.py.)"""
    services = api.application.extensions["lazarus"]
    bmc = {"address": "10.0.0.1", "username": "admin", "password": {"file": "/etc/lazarus/bmc/node-01"}}
    services.inventory.apply(
        inventory(
            {
                "name": "rack-a",
                "hosts": [{"name": "node-01", "bmc": bmc}, {"name": "spare-01", "reserved": True}],
            }
        ),
        datetime.now(UTC),
    )
    segments = send(api, "GET", "/v1/segments").get_json()["segments"]
    assert [(s["name"], s["recovery_method"], s["enabled"]) for s in segments] == [("rack-a", "auto", True)]
    hosts = send(
        api, "GET", f"/v1/segments/{segments[0]['uuid']}/hosts?sort_key=name&sort_dir=asc"
    ).get_json()
    assert [(h["name"], h["reserved"], h["on_maintenance"]) for h in hosts["hosts"]] == [
        ("node-01", False, False),
        ("spare-01", True, False),
    ]
    assert hosts["hosts"][0]["fencing"]["password_ref"] == "file:/etc/lazarus/bmc/node-01"
    assert "password" not in hosts["hosts"][0]["fencing"]
    assert send(api, "GET", "/v1/segments/nope/hosts").status_code == 404
    by_name = send(api, "GET", "/v1/segments/rack-a/hosts/node-01")  # names work too (ours)
    assert by_name.get_json()["host"]["uuid"] == hosts["hosts"][0]["uuid"]


def test_our_segment_controls_ride_along(api: FlaskClient) -> None:
    """Lazarus's own per-segment fields (beyond Masakari's) are accepted and shown at any microversion."""
    created = segment(api, "rack-a", requires_approval=True)
    assert (created["requires_approval"], created["shadow"], created["max_down_share"]) == (True, False, None)
    path = f"/v1/segments/{created['uuid']}"
    changed = send(api, "PUT", path, {"segment": {"shadow": True, "max_down_share": 0.5}}).get_json()[
        "segment"
    ]
    assert (changed["shadow"], changed["max_down_share"]) == (True, 0.5)
    refused = send(api, "PUT", path, {"segment": {"max_down_share": 2}})
    assert refused.status_code == 400 and "max_down_share" in message(refused)
    services = api.application.extensions["lazarus"]
    assert services.inventory.segment("rack-a").spec.shadow is True
