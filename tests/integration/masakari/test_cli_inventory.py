"""`lazarus segment ...` and `lazarus host ...` on a real redis-server, beside the API and
`inventory apply` on the same store."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from receiver.bootstrap import build
from receiver.cli import main
from receiver.domain.record import AlertEvent, Status, iso
from receiver.settings import Settings
from tests.integration.masakari.conftest import WITHOUT_NOVA
from tests.unit.notify.records import new_record

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
                "evacuation": {"shared_storage": True},  # a setting that segments may override
                "nova": WITHOUT_NOVA,
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
    assert "spares       1 free of 2 reserved: spare-01\n" in shown
    assert "WARNING" not in shown

    lazarus("host", "update", "spare-01", "--not-reserved")
    shown = lazarus("segment", "show", "rack-a").output
    assert "spares       0 free of 1 reserved" in shown
    assert (
        "WARNING      segment rack-a: recovery method reserved_host needs a free reserved spare and has "
        "none (spare-02 on maintenance)" in shown
    )

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


def test_placement_options_and_what_is_in_effect(lazarus: Callable[..., Result]) -> None:
    lazarus("segment", "create", "rack-a", "--evacuate-all", "yes", "--capacity-policy", "hold_for_approval")
    shown = lazarus("segment", "show", "rack-a").output
    assert "    shared_storage         yes                      setting evacuation.shared_storage" in shown
    assert "    evacuate_all           yes                      segment" in shown
    assert (
        "    skip_error_instances   no                       setting evacuation.skip_error_instances" in shown
    )
    assert "    capacity_policy        hold_for_approval        segment" in shown
    assert "    max_down_share         0.34                     setting storm.max_down_share" in shown
    assert "spares       0 free of 0 reserved (recovery method auto uses none)" in shown

    lazarus(
        "segment", "update", "rack-a",
        "--shared-storage", "no", "--evacuate-all", "setting", "--skip-error-instances", "yes",
        "--capacity-policy", "setting",
    )  # fmt: skip
    segment = json.loads(lazarus("segment", "show", "rack-a", "--json").output)["segment"]
    own = {
        k: segment[k] for k in ("shared_storage", "evacuate_all", "skip_error_instances", "capacity_policy")
    }
    assert own == {
        "shared_storage": False,
        "evacuate_all": None,
        "skip_error_instances": True,
        "capacity_policy": None,
    }
    assert segment["effective"]["shared_storage"] == {"value": False, "from": "segment"}
    assert segment["effective"]["evacuate_all"] == {"value": False, "from": "setting evacuation.evacuate_all"}
    assert segment["effective"]["capacity_policy"] == {
        "value": "proceed",
        "from": "setting evacuation.capacity_policy",
    }
    bad = lazarus("segment", "update", "rack-a", "--capacity-policy", "maybe", ok=False)
    assert "'maybe' is not one of" in bad.output


def test_a_spare_an_open_recovery_holds_is_not_free(
    lazarus: Callable[..., Result], make_settings: Callable[..., Settings]
) -> None:
    lazarus("segment", "create", "rack-a", "--recovery-method", "rh_priority")
    for name, extra in (("node-01", ()), ("spare-01", ("--reserved",)), ("spare-02", ("--reserved",))):
        lazarus("host", "create", name, "--segment", "rack-a", *extra)
    services = build(make_settings())
    record = replace(new_record("node-01"), notification_uuid="5b0c7e2a-0000-4000-8000-0000000000b1")
    now = datetime.now(UTC)
    event = AlertEvent("f1", record.generated_time, "firing", "LazarusHostDown", iso(now), "recovery_created")
    services.store.intake(
        dedup_key="f1", claim="host:node-01", record=record, firing=True, event=event, ttl_s=600, now=now
    )
    plan = {"method": "rh_priority", "spares_used": ["spare-01"]}
    services.store.update(record.notification_uuid, lambda r: r.with_plan(plan, now))

    shown = lazarus("segment", "show", "rack-a").output
    assert f"node-01                  under recovery {record.notification_uuid}" in shown
    assert f"spare-01                 reserved spare (taken by recovery {record.notification_uuid})" in shown
    assert "spares       1 free of 2 reserved: spare-02" in shown
    as_json = json.loads(lazarus("segment", "show", "rack-a", "--json").output)["segment"]["spares"]
    assert as_json["free"] == ["spare-02"] and as_json["needed"] is True
    assert as_json["held"] == {"node-01": record.notification_uuid, "spare-01": record.notification_uuid}

    lazarus("host", "update", "spare-02", "--on-maintenance", ok=False)  # the segment is under recovery
    services.store.update(record.notification_uuid, lambda r: r.transition(Status.FAILED, now))
    shown = lazarus("segment", "show", "rack-a").output  # the recovery ended: its spare is free again
    assert "spares       2 free of 2 reserved: spare-01, spare-02" in shown
    for spare in ("spare-01", "spare-02"):
        services.inventory.set_maintenance(spare, "firmware", None, now)
    shown = lazarus("segment", "show", "rack-a").output
    assert (
        "WARNING      segment rack-a: recovery method rh_priority needs a free reserved spare and has none "
        "(spare-01 on maintenance; spare-02 on maintenance); only the scheduler will take instances"
    ) in shown
