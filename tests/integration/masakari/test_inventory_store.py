"""The inventory store on a real redis-server: concurrent writers lose nothing, `inventory
apply` keeps ids and reports its changes, and a segment under recovery is left alone."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from receiver.bootstrap import Services, build
from receiver.errors import ConfigError
from receiver.inventory import InventoryConflict, default_uuid
from receiver.inventory_edits import Catalog
from tests.integration.masakari.kit import inventory

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 25, 13, 42, 42, tzinfo=UTC)
BMC = {"address": "10.0.0.1", "username": "admin", "password": {"env": "BMC_PASSWORD"}}


def rack(name: str, *hosts: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "hosts": [{"name": h, "bmc": BMC} for h in hosts], **extra}


def test_concurrent_writers_lose_nothing(app_services: Services, make_settings: Any) -> None:
    """Eight processes' worth of clients (one connection each) add hosts and edit the segment at once."""
    segment = app_services.inventory.create_segment(
        {"name": "rack-a", "recovery_method": "auto", "service_type": "COMPUTE"}, NOW
    )
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        store = build(make_settings()).inventory  # its own connection, as another process would have
        try:
            for i in range(10):
                store.create_host(
                    segment.spec.uuid,
                    {"name": f"w{worker}-n{i}", "type": "COMPUTE", "control_attributes": ""},
                    NOW,
                    source="api",
                )
                store.update_segment(segment.spec.uuid, {"description": f"writer {worker} step {i}"}, NOW)
        except BaseException as exc:  # the thread's boundary: hand it to the test
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    _, hosts = app_services.inventory.segment_hosts(segment.spec.uuid)
    assert sorted(h.spec.name for h in hosts) == sorted(f"w{w}-n{i}" for w in range(8) for i in range(10))
    ids = [h.meta.id for h in hosts] + [segment.meta.id]
    assert len(set(ids)) == len(ids)  # never handed out twice


def test_apply_reports_changes_keeps_ids_and_sees_api_writes(app_services: Services) -> None:
    store = app_services.inventory
    first = store.apply(inventory(rack("rack-a", "node-01", "node-02")), NOW)
    assert first == [
        "segment rack-a: created",
        "host node-01: created in segment rack-a",
        "host node-02: created in segment rack-a",
    ]
    seg = store.segment("rack-a")
    assert seg.spec.uuid == default_uuid(
        "segment", "rack-a"
    )  # a file applied on another cluster names the same
    node = store.host("node-01")
    assert node is not None
    # the API renames the segment and adds a host; a second apply of the same file sees both
    store.update_segment(seg.spec.uuid, {"name": "rack-renamed"}, NOW)
    store.create_host(
        seg.spec.uuid, {"name": "node-03", "type": "COMPUTE", "control_attributes": ""}, NOW, source="api"
    )
    again = store.apply(inventory(rack("rack-a", "node-01", "node-02")), NOW)
    assert again == ["segment rack-a: updated (was rack-renamed)", "host node-03: removed"]
    assert store.segment("rack-a").spec.uuid == seg.spec.uuid
    kept = store.host("node-01")
    assert kept is not None and (kept.spec.uuid, kept.meta.id) == (node.spec.uuid, node.meta.id)
    assert store.apply(inventory(rack("rack-a", "node-01", "node-02")), NOW) == []
    moved = store.apply(
        inventory(rack("rack-a", "node-01"), rack("rack-b", "node-02", recovery_method="reserved_host")), NOW
    )
    assert moved == ["segment rack-b: created", "host node-02: moved from segment rack-a to rack-b"]


def test_apply_leaves_a_segment_under_recovery_alone(app_services: Services) -> None:
    store = app_services.inventory
    store.apply(inventory(rack("rack-a", "node-01", "node-02"), rack("rack-b", "node-03")), NOW)
    claim = f"{app_services.settings.key_prefix}:claim:host:node-01"
    app_services.redis.set(claim, "4e1c2f0a-1111-4222-8333-944455556666")  # as the intake's script does
    with pytest.raises(InventoryConflict, match=r"segment rack-a .*node-01 is under recovery 4e1c2f0a"):
        store.apply(inventory(rack("rack-a", "node-01"), rack("rack-b", "node-03")), NOW)
    assert [h.spec.name for h in store.segment_hosts("rack-a")[1]] == [
        "node-01",
        "node-02",
    ]  # nothing applied
    # the same file again changes nothing in rack-a: allowed, and rack-b may change meanwhile
    changed = store.apply(
        inventory(rack("rack-a", "node-01", "node-02"), rack("rack-b", "node-03", "node-04")), NOW
    )
    assert changed == ["host node-04: created in segment rack-b"]
    with pytest.raises(InventoryConflict):
        store.delete_segment("rack-a")


def test_apply_keeps_a_fenced_host_on_maintenance(app_services: Services) -> None:
    store = app_services.inventory
    store.apply(inventory(rack("rack-a", "node-01")), NOW)
    store.set_maintenance("node-01", "fenced by recovery r-1", "r-1", NOW)
    lines = store.apply(inventory(rack("rack-a", "node-01", "node-02")), NOW)
    assert "host node-01: kept on maintenance (set by recovery r-1; reinstate it explicitly)" in lines
    view = store.host("node-01")
    assert view is not None and view.on_maintenance and view.state.notification_uuid == "r-1"


def test_a_document_from_before_ids_were_stored_still_loads(app_services: Services) -> None:
    legacy = {"segments": [rack("rack-a", "node-01", "node-02")]}
    app_services.redis.set(f"{app_services.settings.key_prefix}:inventory", json.dumps(legacy))
    store = app_services.inventory
    segments = store.segments()
    assert [(s.spec.name, s.spec.uuid, s.meta.id) for s in segments] == [
        ("rack-a", default_uuid("segment", "rack-a"), 1)
    ]
    created = store.create_host(
        "rack-a", {"name": "node-03", "type": "COMPUTE", "control_attributes": ""}, NOW, source="api"
    )
    assert created.meta.id == 4  # after the ids the old document's objects were given
    stored = Catalog.from_stored(
        json.loads(app_services.redis.get(f"{app_services.settings.key_prefix}:inventory"))
    )
    assert [stored.meta_of(h.uuid).id for h in stored.inventory.segments[0].hosts] == [2, 3, 4]


def test_a_corrupt_document_is_a_config_error(app_services: Services) -> None:
    app_services.redis.set(
        f"{app_services.settings.key_prefix}:inventory", json.dumps({"segments": [{"hosts": 1}]})
    )
    with pytest.raises(ConfigError, match="stored inventory is invalid"):
        app_services.inventory.segments()
