"""`lazarus segment ...` and `lazarus host ...` on a real redis-server, beside the API and
`inventory apply` on the same store."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from receiver.bootstrap import build
from receiver.cli import main
from receiver.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def lazarus(
    make_settings: Callable[..., Settings], redis_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    settings = make_settings()
    config = tmp_path / "lazarus.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "redis_url": settings.redis_url.get_secret_value(),
                "queue_name": settings.queue_name,
                "webhook": {"bearer_tokens": ["t0k3n-for-tests"]},
            }
        )
    )
    monkeypatch.setenv("LAZARUS_CONFIG", str(config))
    runner = CliRunner()

    def run(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(main, list(args))
        assert (result.exit_code == 0) is ok, result.output
        return result

    return run


def test_segment_and_host_commands(lazarus: Callable[..., Result]) -> None:
    created = lazarus(
        "segment", "create", "rack-a", "--recovery-method", "reserved_host", "--description", "row 1"
    )
    assert created.output.startswith("segment rack-a: created (")
    lazarus(
        "host", "create", "node-01", "--segment", "rack-a",
        "--bmc-address", "10.0.0.11", "--bmc-username", "admin", "--bmc-password-env", "BMC_NODE01",
    )  # fmt: skip
    lazarus("host", "create", "spare-01", "--segment", "rack-a", "--reserved")
    lazarus("host", "create", "spare-02", "--segment", "rack-a", "--reserved", "--on-maintenance")

    shown = lazarus("segment", "show", "rack-a").output
    assert "recovery     reserved_host" in shown
    assert "node-01                  in service" in shown
    assert "spare-01                 reserved spare; no fence method" in shown
    assert "spare-02                 reserved spare (not available); on maintenance" in shown
    assert "spares       1 free of 2 reserved" in shown
    assert "WARNING" not in shown

    lazarus("host", "update", "spare-01", "--not-reserved")
    shown = lazarus("segment", "show", "rack-a").output
    assert "spares       0 free of 1 reserved" in shown
    assert "WARNING      recovery method reserved_host needs a free reserved spare" in shown

    as_json = json.loads(lazarus("segment", "show", "rack-a", "--json").output)["segment"]
    assert as_json["recovery_method"] == "reserved_host" and len(as_json["hosts"]) == 3
    host = json.loads(lazarus("host", "show", "node-01").output)["host"]
    assert host["fencing"]["password_ref"] == "env:BMC_NODE01"

    lazarus(
        "host", "update", "node-01", "--bmc-address", "10.0.0.99", "--bmc-password-file", "/etc/lazarus/n1"
    )
    host = json.loads(lazarus("host", "show", "node-01").output)["host"]
    assert host["fencing"]["address"] == "10.0.0.99"
    assert host["fencing"]["password_ref"] == "file:/etc/lazarus/n1"
    assert host["fencing"]["username"] == "admin"  # kept: a partial change

    listed = lazarus("host", "list", "--segment", "rack-a").output
    assert "ipmi 10.0.0.99" in listed and "spare-02" in listed
    assert "rack-a" in lazarus("segment", "list").output
    lazarus("segment", "update", "rack-a", "--name", "rack-b", "--disabled")
    assert json.loads(lazarus("segment", "list", "--json").output)["segments"][0]["enabled"] is False
    assert "host spare-02: removed" in lazarus("host", "delete", "spare-02").output
    deleted = lazarus("segment", "delete", "rack-b").output
    assert "segment rack-b: removed" in deleted and "host node-01: removed" in deleted
    assert json.loads(lazarus("host", "list", "--json").output) == {"hosts": []}


def test_refusals_name_what_and_why(
    lazarus: Callable[..., Result], make_settings: Callable[..., Settings]
) -> None:
    lazarus("segment", "create", "rack-a")
    assert "already exists" in lazarus("segment", "create", "rack-a", ok=False).output
    assert (
        "No failover segment with id nope"
        in lazarus("host", "create", "n1", "--segment", "nope", ok=False).output
    )
    bad_port = lazarus(
        "host", "create", "n1", "--segment", "rack-a",
        "--bmc-address", "a", "--bmc-username", "u", "--bmc-password-env", "P", "--bmc-port", "70000",
        ok=False,
    )  # fmt: skip
    assert "bmc.port" in bad_port.output
    both = lazarus(
        "host",
        "create",
        "n1",
        "--segment",
        "rack-a",
        "--bmc-password-env",
        "P",
        "--bmc-password-file",
        "/f",
        ok=False,
    )
    assert "not both" in both.output
    assert "nothing to change" in lazarus("segment", "update", "rack-a", ok=False).output
    lazarus("host", "create", "n1", "--segment", "rack-a")
    services = build(make_settings())
    record = "5b0c7e2a-0000-4000-8000-00000000000a"
    services.inventory.set_maintenance("n1", f"fenced by recovery {record}", record, datetime.now(UTC))
    refused = lazarus("host", "update", "n1", "--in-service", ok=False)
    assert record in refused.output and "reinstated explicitly" in refused.output
    services.redis.set(f"{services.settings.key_prefix}:claim:host:n1", record)
    busy = lazarus("segment", "update", "rack-a", "--description", "x", ok=False)
    assert f"host n1 is under recovery {record}" in busy.output


def test_inventory_apply_and_the_commands_share_one_store(
    lazarus: Callable[..., Result], tmp_path: Path
) -> None:
    lazarus("segment", "create", "made-by-hand")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"segments": [{"name": "rack-a", "hosts": [{"name": "node-01"}]}]}))
    applied = lazarus("inventory", "apply", str(inventory)).output.splitlines()
    assert applied == [
        "segment rack-a: created",
        "segment made-by-hand: removed",
        "host node-01: created in segment rack-a",
    ]
    lazarus("host", "update", "node-01", "--reserved")
    assert lazarus("inventory", "apply", str(inventory)).output.splitlines() == ["host node-01: updated"]
    assert lazarus("inventory", "apply", str(inventory)).output.strip() == "no changes"
