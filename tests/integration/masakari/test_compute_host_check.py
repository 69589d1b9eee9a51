"""A host must be one Nova runs nova-compute on, as Masakari requires (400, its words): through
the real `openstack segment host ...` client, `lazarus host ...`, and `lazarus inventory apply`,
with the lab's compute API (real HTTP through openstacksdk) as Nova."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from flask.testing import FlaskClient

from receiver.bootstrap import Services, build
from receiver.cli import main
from receiver.lab.manifest import LabManifest
from receiver.lab.testing import LabControl, running_lab
from receiver.settings import Settings
from receiver.web.app import create_app
from tests.conftest import TEST_TOKEN
from tests.integration.masakari.test_real_clients import openstack, server

pytestmark = pytest.mark.integration
__all__ = ["openstack", "server"]
UNKNOWN = "Compute service of node-1 could not be found."  # "node-1" for "node-01": a typo


HEADERS = {"X-Auth-Token": TEST_TOKEN}


def hosts_path(api: FlaskClient) -> str:
    """A new segment's hosts collection."""
    body = {"segment": {"name": "rack-a", "recovery_method": "auto", "service_type": "COMPUTE"}}
    created = api.post("/v1/segments", json=body, headers=HEADERS)
    assert created.status_code == 201, created.json
    return f"/v1/segments/{created.json['segment']['uuid']}/hosts"


def host_body(name: str) -> dict[str, Any]:
    return {"host": {"name": name, "type": "COMPUTE", "control_attributes": "SSH"}}


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabManifest]:
    with running_lab(tmp_path / "lab", hosts=("node-01", "node-02")) as manifest:
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(manifest.clouds_yaml))
        yield manifest


@pytest.fixture
def app_services(lab: LabManifest, make_settings: Callable[..., Settings], redis_client: Any) -> Services:
    return build(make_settings(nova={"cloud": lab.cloud_name}))


@pytest.fixture
def lazarus(
    lab: LabManifest,
    make_settings: Callable[..., Settings],
    redis_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Result]:
    settings = make_settings()
    config = tmp_path / "lazarus.yaml"
    values = {
        "redis_url": settings.redis_url.get_secret_value(),
        "queue_name": settings.queue_name,
        "nova": {"cloud": lab.cloud_name},
    }
    config.write_text(yaml.safe_dump(values))
    monkeypatch.setenv("LAZARUS_CONFIG", str(config))

    def run(*args: str, ok: bool = True) -> Result:
        result = CliRunner().invoke(main, list(args))
        assert (result.exit_code == 0) is ok, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result

    return run


def test_the_openstack_client_gets_masakaris_400_for_an_unknown_host(
    openstack: Callable[..., Any], app_services: Services
) -> None:
    openstack("segment", "create", "rack-a", "auto", "COMPUTE", "-f", "json")
    created = openstack("segment", "host", "create", "node-01", "COMPUTE", "SSH", "rack-a", "-f", "json")
    assert created["name"] == "node-01"
    refused = openstack("segment", "host", "create", "node-1", "COMPUTE", "SSH", "rack-a", ok=False)
    assert "400" in refused and UNKNOWN in refused
    assert "Invalid input" not in refused  # Masakari's own sentence, nothing around it
    renamed = openstack("segment", "host", "update", "rack-a", created["uuid"], "--name", "node-1", ok=False)
    assert UNKNOWN in renamed
    assert [h.spec.name for h in app_services.inventory.hosts()] == ["node-01"]


def test_lazarus_host_commands_and_inventory_apply_refuse_an_unknown_host(
    lazarus: Callable[..., Result], tmp_path: Path
) -> None:
    lazarus("segment", "create", "rack-a", "--recovery-method", "auto")
    assert UNKNOWN in lazarus("host", "create", "node-1", "--segment", "rack-a", ok=False).output
    lazarus("host", "create", "node-01", "--segment", "rack-a")
    assert UNKNOWN in lazarus("host", "update", "node-01", "--name", "node-1", ok=False).output

    inventory = tmp_path / "inventory.yaml"
    hosts = [{"name": "node-01"}, {"name": "node-02"}, {"name": "node-03"}, {"name": "spare-9"}]
    inventory.write_text(
        yaml.safe_dump({"segments": [{"name": "rack-a", "recovery_method": "auto", "hosts": hosts}]})
    )
    refused = lazarus("inventory", "apply", str(inventory), ok=False).output
    assert "hosts: Compute service of node-03, spare-9 could not be found." in refused
    listed = lazarus("host", "list").output
    assert "node-02" not in listed  # nothing of the file was applied
    inventory.write_text(
        yaml.safe_dump({"segments": [{"name": "rack-a", "recovery_method": "auto", "hosts": hosts[:2]}]})
    )
    assert "host node-02: created" in lazarus("inventory", "apply", str(inventory)).output


def test_when_nova_cannot_be_asked_the_api_says_so_and_writes_nothing(
    app_services: Services, lab: LabManifest
) -> None:
    api = create_app(app_services).test_client()
    path = hosts_path(api)
    body = host_body("node-01")
    LabControl(lab).forbid("/os-services")
    answer = api.post(path, json=body, headers=HEADERS)
    assert answer.status_code == 503
    message = answer.json["masakariFault"]["message"]
    assert message.startswith("could not check the host name against Nova: ") and "req-" in message
    assert app_services.inventory.hosts() == []
    LabControl(lab).clear_faults()
    assert api.post(path, json=body, headers=HEADERS).status_code == 201


def test_a_nova_connection_that_is_not_configured_is_a_clear_503(
    make_settings: Callable[..., Settings], redis_client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "absent.yaml"))
    for var in [v for v in os.environ if v.startswith("OS_") and v != "OS_CLIENT_CONFIG_FILE"]:
        monkeypatch.delenv(var)
    services = build(make_settings())
    api = create_app(services).test_client()
    path = hosts_path(api)
    answer = api.post(path, json=host_body("node-01"), headers=HEADERS)
    assert answer.status_code == 503
    assert "cannot set up the Nova connection" in answer.json["masakariFault"]["message"]


def test_the_check_can_be_turned_off_for_hosts_registered_before_their_nova_compute(
    make_settings: Callable[..., Settings], redis_client: Any
) -> None:
    services = build(make_settings(nova={"require_compute_hosts": False}))
    api = create_app(services).test_client()
    path = hosts_path(api)
    body = host_body("node-77")
    assert api.post(path, json=body, headers=HEADERS).status_code == 201
