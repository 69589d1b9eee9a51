"""Helpers for the Masakari API tests: the recorded answers of the real Masakari 22, and a
comparison of our answers' shapes with theirs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from receiver.inventory import parse_inventory
from tests.conftest import TEST_TOKEN
from tests.integration.core.helpers import host_alert, webhook

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures"
TOKEN = {"X-Auth-Token": TEST_TOKEN}


def recorded(name: str) -> dict[str, Any]:
    """One request and Masakari's answer to it, from ../shared/fixtures/masakari-api/."""
    [path] = (FIXTURES / "masakari-api").glob(f"*-{name}.json")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def client_requests(name: str) -> list[dict[str, Any]]:
    """What a real client sent, from ../shared/fixtures/masakari-clients/."""
    lines = (FIXTURES / "masakari-clients" / f"{name}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def assert_same_shape(ours: Any, theirs: Any, path: str = "body") -> None:
    """Same keys (ours may add some to an object of Masakari's) and same JSON types; a null on
    either side matches any type (updated_at, description)."""
    if theirs is None or ours is None:
        return
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{path}: {ours!r} is not an object"
        missing = set(theirs) - set(ours)
        assert not missing, f"{path}: missing {sorted(missing)}"
        for key, value in theirs.items():
            assert_same_shape(ours[key], value, f"{path}.{key}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list), f"{path}: {ours!r} is not a list"
        assert len(ours) == len(theirs), f"{path}: {len(ours)} items, Masakari had {len(theirs)}"
        for i, (mine, other) in enumerate(zip(ours, theirs, strict=True)):
            assert_same_shape(mine, other, f"{path}[{i}]")
    else:
        assert type(ours) is type(theirs), f"{path}: {ours!r} vs Masakari's {theirs!r}"


def assert_masakari_headers(response: Any, version: str | None) -> None:
    assert response.headers["Vary"] == "OpenStack-API-Version"
    assert response.headers["X-OpenStack-Request-Id"].startswith("req-")
    if version is None:
        assert "OpenStack-API-Version" not in response.headers
    else:
        assert response.headers["OpenStack-API-Version"] == f"instance-ha {version}"


def send(client: FlaskClient, method: str, path: str, body: Any = None, version: str | None = None) -> Any:
    headers = dict(TOKEN)
    if version is not None:
        headers["OpenStack-API-Version"] = f"instance-ha {version}"
    return client.open(path, method=method, json=body, headers=headers)


def open_recovery(client: FlaskClient, host: str) -> str:
    """A real open recovery of `host`: Alertmanager's alert through the webhook (it claims the host)."""
    response = client.post(
        "/v1/webhooks/alertmanager",
        json=webhook(host_alert(host)),
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    uuid: str = response.get_json()["alerts"][0]["notification_uuid"]
    return uuid


def inventory(*segments: dict[str, Any]) -> Any:
    return parse_inventory({"segments": list(segments)})
