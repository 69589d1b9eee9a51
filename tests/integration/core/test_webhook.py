"""The webhook over HTTP (Flask's test client) against a real redis-server."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from receiver.bootstrap import build
from receiver.errors import ConfigError
from receiver.settings import Settings
from receiver.web.app import create_app
from tests.conftest import TEST_TOKEN
from tests.integration.core.helpers import host_alert, webhook
from tests.redis_server import RedisServer

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}
URL = "/v1/webhooks/alertmanager"


@pytest.fixture
def client(make_settings: Callable[..., Settings], redis_client: Any) -> FlaskClient:
    return create_app(build(make_settings())).test_client()


def post(client: FlaskClient, body: Any, headers: dict[str, str] | None = None) -> Any:
    return client.post(
        URL,
        data=json.dumps(body),
        headers=headers if headers is not None else AUTH,
        content_type="application/json",
    )


def test_firing_host_alert_creates_one_durable_record(client: FlaskClient, redis_client: Any) -> None:
    response = post(client, webhook(host_alert("node-01")))
    assert response.status_code == 200
    [result] = response.get_json()["alerts"]
    assert result["outcome"] == "recovery_created"
    uuid = result["notification_uuid"]
    shown = client.get(f"/v1/notifications/{uuid}", headers=AUTH).get_json()["notification"]
    assert shown["status"] == "new"
    assert shown["type"] == "COMPUTE_HOST"
    assert shown["hostname"] == "node-01"
    assert shown["alerts"][0]["fingerprint"] == result["fingerprint"]
    listed = client.get("/v1/notifications", headers=AUTH).get_json()["notifications"]
    assert [n["notification_uuid"] for n in listed] == [uuid]
    assert client.get(f"/v1/notifications/{uuid}/vmoves", headers=AUTH).get_json() == {"vmoves": []}
    # queued for a worker
    assert redis_client.llen(f"rq:queue:{client.application.extensions['lazarus'].settings.queue_name}") == 1


def test_same_alert_twice_makes_one_recovery(client: FlaskClient) -> None:
    body = webhook(host_alert("node-01"))
    first = post(client, body).get_json()["alerts"][0]
    second = post(client, body).get_json()["alerts"][0]
    assert second["outcome"] == "duplicate"
    assert second["notification_uuid"] == first["notification_uuid"]
    shown = client.get(f"/v1/notifications/{first['notification_uuid']}", headers=AUTH).get_json()
    assert shown["notification"]["duplicates"] == 1
    assert len(client.get("/v1/notifications", headers=AUTH).get_json()["notifications"]) == 1


def test_other_alert_for_a_host_under_recovery_is_linked(client: FlaskClient) -> None:
    first = post(client, webhook(host_alert("node-01"))).get_json()["alerts"][0]
    other = host_alert("node-01", labels={"alertname": "NodeExporterDown"})
    second = post(client, webhook(other)).get_json()["alerts"][0]
    assert second["outcome"] == "linked_to_open"
    assert second["notification_uuid"] == first["notification_uuid"]
    third = post(client, webhook(host_alert("node-02"))).get_json()["alerts"][0]
    assert third["outcome"] == "recovery_created"


def test_resolved_then_stale_firing_never_fences_again(client: FlaskClient) -> None:
    """Alertmanager HA pairs send a stale "firing" after "resolved" (measured, 0.25)."""
    firing = host_alert("node-01")
    created = post(client, webhook(firing)).get_json()["alerts"][0]
    resolved = {**firing, "status": "resolved", "endsAt": "2026-11-25T12:30:00Z"}
    assert post(client, webhook(resolved)).get_json()["alerts"][0]["outcome"] == "recorded_resolved"
    stale = post(client, webhook(firing, external_url="http://am-2:9093")).get_json()["alerts"][0]
    assert stale["outcome"] == "firing_after_resolved"
    assert stale["notification_uuid"] == created["notification_uuid"]
    assert len(client.get("/v1/notifications", headers=AUTH).get_json()["notifications"]) == 1


def test_resolved_first_is_recorded_and_a_late_firing_does_not_act(client: FlaskClient) -> None:
    firing = host_alert("node-01")
    resolved = {**firing, "status": "resolved", "endsAt": "2026-11-25T12:30:00Z"}
    first = post(client, webhook(resolved)).get_json()["alerts"][0]
    assert first["outcome"] == "ignored" and first["reason"] == "alert_resolved"
    late = post(client, webhook(firing)).get_json()["alerts"][0]
    assert late["outcome"] == "firing_after_resolved"
    records = client.get("/v1/notifications", headers=AUTH).get_json()["notifications"]
    assert [r["status"] for r in records] == ["ignored"]


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        ({"recovery": "instance"}, "invalid_labels"),  # no uuid label
        ({"recovery": "process"}, "invalid_labels"),  # no process label
        ({"recovery": "rack"}, "no_recovery_label"),
    ],
)
def test_alerts_that_do_not_act_are_recorded_with_a_reason(
    client: FlaskClient, labels: dict[str, str], reason: str
) -> None:
    result = post(client, webhook(host_alert("node-01", labels=labels))).get_json()["alerts"][0]
    assert result["outcome"] == "ignored"
    assert result["reason"] == reason
    shown = client.get(f"/v1/notifications/{result['notification_uuid']}", headers=AUTH).get_json()
    assert shown["notification"]["status"] == "ignored"
    assert shown["notification"]["reason"] == reason


def test_process_and_instance_alerts_open_their_own_recoveries(client: FlaskClient) -> None:
    process = host_alert("node-01", labels={"recovery": "process", "process": "nova-compute"})
    instance = host_alert(
        "node-02", labels={"recovery": "instance", "uuid": "5e0c0000-0000-4000-8000-000000000001"}
    )
    results = [post(client, webhook(a)).get_json()["alerts"][0] for a in (process, instance)]
    assert [r["outcome"] for r in results] == ["recovery_created", "recovery_created"]
    uuids = [r["notification_uuid"] for r in results]
    shown = [client.get(f"/v1/notifications/{u}", headers=AUTH).get_json()["notification"] for u in uuids]
    types = [n["type"] for n in shown]
    assert types == ["PROCESS", "VM"]


def test_process_and_instance_alerts_join_an_open_host_recovery(client: FlaskClient) -> None:
    host = post(client, webhook(host_alert("node-01"))).get_json()["alerts"][0]
    process = host_alert("node-01", labels={"recovery": "process", "process": "nova-compute"})
    instance = host_alert(
        "node-01", labels={"recovery": "instance", "uuid": "5e0c0000-0000-4000-8000-000000000001"}
    )
    for alert in (process, instance):
        result = post(client, webhook(alert)).get_json()["alerts"][0]
        assert result["outcome"] == "linked_to_open"
        assert result["notification_uuid"] == host["notification_uuid"]
    assert len(client.get("/v1/notifications", headers=AUTH).get_json()["notifications"]) == 1


def test_alert_without_recovery_label_from_real_alertmanager(client: FlaskClient, fixtures_dir: Path) -> None:
    raw = json.loads((fixtures_dir / "alertmanager" / "grouped_3_alerts.json").read_text())["body"]
    results = post(client, raw).get_json()["alerts"]
    assert {r["reason"] for r in results} == {"no_recovery_label"}


def test_authentication(client: FlaskClient, make_settings: Callable[..., Settings]) -> None:
    body = webhook(host_alert("node-01"))
    assert post(client, body, headers={}).status_code == 401
    assert post(client, body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert post(client, body, headers={"Authorization": "Basic Zm9vOmJhcg=="}).status_code == 401
    assert client.get("/v1/notifications").status_code == 401
    assert client.get("/v1/notifications", headers={"X-Auth-Token": TEST_TOKEN}).status_code == 200
    basic = create_app(build(make_settings(webhook={"basic_users": {"am": "s3cret-pass"}}))).test_client()
    good = base64.b64encode(b"am:s3cret-pass").decode()
    assert post(basic, body, headers={"Authorization": f"Basic {good}"}).status_code == 200
    bad = base64.b64encode(b"am:nope").decode()
    assert post(basic, body, headers={"Authorization": f"Basic {bad}"}).status_code == 401


def test_no_auth_configured_refuses_to_start_unless_explicit(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigError, match="allow_unauthenticated"):
        create_app(build(make_settings(webhook={"bearer_tokens": []})))
    app = create_app(build(make_settings(webhook={"bearer_tokens": [], "allow_unauthenticated": True})))
    assert post(app.test_client(), webhook(host_alert("node-01")), headers={}).status_code == 200


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", "body"),
        (json.dumps({"version": "3", "alerts": []}).encode(), "version"),
        (
            json.dumps({**webhook(host_alert("n")), "alerts": [{"status": "firing"}]}).encode(),
            "alerts[0].fingerprint",
        ),
    ],
)
def test_bad_bodies_are_400_naming_the_field(client: FlaskClient, raw: bytes, field: str) -> None:
    response = client.post(URL, data=raw, headers=AUTH, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == field
    assert field in response.get_json()["error"]["message"]
    assert client.get("/v1/notifications", headers=AUTH).get_json()["notifications"] == []


def test_body_over_one_mebibyte_is_413(client: FlaskClient) -> None:
    body = webhook(host_alert("node-01"))
    body["padding"] = "x" * (1024 * 1024)
    assert post(client, body).status_code == 413


def test_redis_down_is_503_and_nothing_is_half_written(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    settings = make_settings(redis_url=server.url)
    client = create_app(build(settings)).test_client()
    assert client.get("/readyz").status_code == 200
    server.stop()
    response = post(client, webhook(host_alert("node-01")))
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200
    server.start()  # same port, same data dir (AOF): nothing was written
    assert client.get("/v1/notifications", headers=AUTH).get_json()["notifications"] == []
    assert post(client, webhook(host_alert("node-01"))).status_code == 200  # Alertmanager's retry
    server.stop()


def test_metrics_count_outcomes(client: FlaskClient) -> None:
    body = webhook(host_alert("node-01"))
    post(client, body)
    post(client, body)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'lazarus_alerts_received_total{outcome="recovery_created"} 1.0' in text
    assert 'lazarus_alerts_received_total{outcome="duplicate"} 1.0' in text
    assert "lazarus_recoveries_in_progress 1.0" in text
    assert "lazarus_queue_depth 1.0" in text
    assert 'lazarus_webhook_requests_total{code="200"} 2.0' in text


def test_operator_actions_over_http(client: FlaskClient) -> None:
    uuid = post(client, webhook(host_alert("node-01"))).get_json()["alerts"][0]["notification_uuid"]
    url = f"/v1/notifications/{uuid}"
    assert client.post(f"{url}/abort", json={"by": "alice"}).status_code == 401
    no_name = client.post(f"{url}/abort", json={}, headers=AUTH)
    assert no_name.status_code == 400 and no_name.get_json()["error"]["field"] == "by"
    assert client.post(f"{url}/explode", json={"by": "alice"}, headers=AUTH).status_code == 400
    not_waiting = client.post(f"{url}/approve", json={"by": "alice"}, headers=AUTH)
    assert (
        not_waiting.status_code == 400
        and "not waiting for approval" in not_waiting.get_json()["error"]["message"]
    )
    aborted = client.post(f"{url}/abort", json={"by": "alice"}, headers=AUTH).get_json()["notification"]
    assert (aborted["status"], aborted["reason"]) == ("failed", "aborted")
    assert "aborted by alice" in aborted["message"]
    assert client.post("/v1/notifications/nope/abort", json={"by": "a"}, headers=AUTH).status_code == 404
