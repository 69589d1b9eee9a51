"""`lazarus inventory apply` and `lazarus notifications list/show` on a real redis-server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from receiver.bootstrap import build
from receiver.cli import main
from receiver.domain.alerts import parse_webhook
from receiver.settings import Settings
from tests.integration.core.helpers import host_alert, webhook

pytestmark = pytest.mark.integration


@pytest.fixture
def cli_env(
    make_settings: Callable[..., Settings], redis_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    settings = make_settings()
    config = tmp_path / "lazarus.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "redis_url": settings.redis_url.get_secret_value(),
                "queue_name": settings.queue_name,
                "webhook": {"bearer_tokens": ["t0k3n-for-tests"]},
                "nova": {"require_compute_hosts": False},  # no Nova here (see test_compute_host_check.py)
            }
        )
    )
    monkeypatch.setenv("LAZARUS_CONFIG", str(config))
    return settings


def test_inventory_apply_reports_changes_and_is_idempotent(cli_env: Settings, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "segments": [
                    {
                        "name": "rack-a",
                        "hosts": [
                            {
                                "name": "node-01",
                                "bmc": {
                                    "address": "10.0.0.1",
                                    "username": "admin",
                                    "password": {"env": "BMC_NODE01"},
                                },
                            }
                        ],
                    }
                ]
            }
        )
    )
    runner = CliRunner()
    first = runner.invoke(main, ["inventory", "apply", str(inventory)])
    assert first.exit_code == 0, first.output
    assert "segment rack-a: created" in first.output
    assert "host node-01: created in segment rack-a" in first.output
    again = runner.invoke(main, ["inventory", "apply", str(inventory)])
    assert again.output.strip() == "no changes"


def test_inventory_errors_name_the_field(cli_env: Settings, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "segments": [
                    {
                        "name": "a",
                        "hosts": [
                            {
                                "name": "node-01",
                                "bmc": {
                                    "address": "x",
                                    "port": 99999,
                                    "username": "u",
                                    "password": {"env": "P"},
                                },
                            }
                        ],
                    }
                ]
            }
        )
    )
    result = CliRunner().invoke(main, ["inventory", "apply", str(inventory)])
    assert result.exit_code != 0
    assert "segments.0.hosts.0.bmc.port" in result.output
    inline = tmp_path / "inline.yaml"
    inline.write_text(
        yaml.safe_dump(
            {
                "segments": [
                    {
                        "name": "a",
                        "hosts": [
                            {
                                "name": "node-01",
                                "bmc": {"address": "x", "username": "u", "password": "hunter2"},
                            }
                        ],
                    }
                ]
            }
        )
    )
    result = CliRunner().invoke(main, ["inventory", "apply", str(inline)])
    assert result.exit_code != 0
    assert "segments.0.hosts.0.bmc.password" in result.output
    assert "hunter2" not in result.output  # an inline password is refused, and not echoed


def test_notifications_list_and_show(cli_env: Settings) -> None:
    services = build(cli_env)
    [result] = services.intake().accept(parse_webhook(webhook(host_alert("node-07"))))
    runner = CliRunner()
    listed = runner.invoke(main, ["notifications", "list"])
    assert listed.exit_code == 0, listed.output
    assert result.notification_uuid in listed.output and "node-07" in listed.output
    as_json = json.loads(runner.invoke(main, ["notifications", "list", "--json"]).output)
    assert as_json["notifications"][0]["notification_uuid"] == result.notification_uuid
    shown = runner.invoke(main, ["notifications", "show", result.notification_uuid])
    assert "status    new" in shown.output
    detail = json.loads(
        runner.invoke(main, ["notifications", "show", result.notification_uuid, "--json"]).output
    )
    assert detail["notification"]["alerts"][0]["labels"]["host"] == "node-07"
    missing = runner.invoke(main, ["notifications", "show", "nope"])
    assert missing.exit_code != 0 and "not found" in missing.output


def test_host_show_and_a_refused_reinstate(cli_env: Settings, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"segments": [{"name": "rack-a", "hosts": [{"name": "node-01"}]}]}))
    runner = CliRunner()
    assert runner.invoke(main, ["inventory", "apply", str(inventory)]).exit_code == 0
    shown = json.loads(runner.invoke(main, ["host", "show", "node-01"]).output)
    assert shown["host"]["name"] == "node-01" and shown["host"]["on_maintenance"] is False
    assert (shown["bmc_probe"], shown["last_drill"]) == (None, None)
    refused = runner.invoke(main, ["host", "reinstate", "node-01", "--by", "alice"])
    assert refused.exit_code != 0
    assert "was not taken out by a recovery" in refused.output
    drill = runner.invoke(main, ["host", "drill", "node-01", "--by", "alice"])
    assert drill.exit_code != 0 and "not on maintenance" in drill.output
