"""The lab's compute API for placement, over HTTP as real Nova 34 answers it: os-hypervisors
pages, os-aggregates through openstacksdk, lock validation; and the lab options and control
calls the workflow tests build on (spares, per-host sizes, volume-backed servers, evacuation
faults per target host)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import openstack
import pytest
import yaml
from openstack import exceptions as sdk_exceptions

from receiver.adapters.nova import NovaCompute
from receiver.domain.capacity import DiskFacts
from receiver.domain.model import Server
from receiver.lab.manifest import LabManifest
from receiver.lab.testing import LabControl, running_lab, wait_until
from tests.integration.lab.conftest import FAST

pytestmark = pytest.mark.integration


def nova(conn: Any, path: str, *, method: str = "GET", version: str = "2.87", body: Any = None) -> Any:
    return conn.compute.request(path, method, json=body, microversion=version, raise_exc=False)


def test_hypervisors_page_at_2_87(conn: Any) -> None:
    first = nova(conn, "/os-hypervisors/detail?limit=1").json()
    assert [h["service"]["host"] for h in first["hypervisors"]] == ["node-01"]
    [link] = first["hypervisors_links"]
    marker = first["hypervisors"][0]["id"]
    assert link["rel"] == "next" and link["href"].endswith(f"/os-hypervisors/detail?limit=1&marker={marker}")
    rest = nova(conn, f"/os-hypervisors/detail?limit=5&marker={marker}").json()
    assert [h["service"]["host"] for h in rest["hypervisors"]] == ["node-02", "spare-01"]
    assert "hypervisors_links" not in rest  # a page that is not full is the last
    bad = nova(conn, "/os-hypervisors/detail?limit=1&marker=nonexistent")
    assert (bad.status_code, bad.json()["badRequest"]["message"]) == (400, "marker [nonexistent] not found")
    assert nova(conn, "/os-hypervisors/detail?bogus=1").status_code == 400
    assert "vcpus_used" not in nova(conn, "/os-hypervisors/detail", version="2.88").json()["hypervisors"][0]


def test_aggregates_through_openstacksdk(conn: Any) -> None:
    aggregate = conn.compute.create_aggregate(name="rack-1")
    assert (aggregate.name, aggregate.availability_zone) == ("rack-1", None)
    with pytest.raises(sdk_exceptions.ConflictException, match="Aggregate rack-1 already exists"):
        conn.compute.create_aggregate(name="rack-1")
    conn.compute.add_host_to_aggregate(aggregate, "spare-01")
    with pytest.raises(sdk_exceptions.ConflictException, match="already has host spare-01"):
        conn.compute.add_host_to_aggregate(aggregate, "spare-01")
    with pytest.raises(sdk_exceptions.NotFoundException, match="Compute host nope could not be found"):
        conn.compute.add_host_to_aggregate(aggregate, "nope")
    [listed] = list(conn.compute.aggregates())
    assert (listed.name, listed.hosts) == ("rack-1", ["spare-01"])
    conn.compute.remove_host_from_aggregate(aggregate, "spare-01")
    conn.compute.delete_aggregate(aggregate)
    assert list(conn.compute.aggregates()) == []
    assert nova(conn, "/os-aggregates/abc", version="2.94").status_code == 400


def test_lock_validates_its_reason_as_nova_2_73(conn: Any, control: LabControl) -> None:
    server_id = control.add_server("vm", "node-01")
    path = f"/servers/{server_id}/action"
    empty = nova(conn, path, method="POST", version="2.94", body={"lock": {"locked_reason": ""}})
    assert empty.status_code == 400 and "should be non-empty" in empty.json()["badRequest"]["message"]
    long = nova(conn, path, method="POST", version="2.94", body={"lock": {"locked_reason": "x" * 256}})
    assert long.status_code == 400 and "is too long" in long.json()["badRequest"]["message"]
    extra = nova(conn, path, method="POST", version="2.94", body={"lock": {"locked_reason": "r", "other": 1}})
    assert extra.status_code == 400 and "'other' was unexpected" in extra.json()["badRequest"]["message"]
    assert nova(conn, path, method="POST", version="2.94", body={"lock": {}}).status_code == 202
    server = nova(conn, f"/servers/{server_id}", version="2.94").json()["server"]
    assert (server["locked"], server["locked_reason"]) == (True, None)
    # Below 2.73 any lock body is accepted and a reason ignored.
    assert nova(conn, path, method="POST", version="2.72", body={"lock": {"whatever": 1}}).status_code == 202


def test_volume_backed_servers_through_the_control_api(lab: LabManifest, control: LabControl) -> None:
    compute = _compute(lab)
    before = next(r for r in compute.hypervisors() if r.host == "node-02")
    server_id = control.add_server("bfv", "node-02", flavor="m1.small", boot_from_volume=True, volumes=1)
    assert compute.server(server_id).disks == DiskFacts(root_on_volume=True, volumes=2)
    after = next(r for r in compute.hypervisors() if r.host == "node-02")
    growth = (after.vcpus_used - before.vcpus_used, after.memory_mb_used - before.memory_mb_used)
    assert growth == (1, 2048) and after.local_gb_used == before.local_gb_used  # its root is no local disk


def test_an_evacuation_fault_on_a_target_host(lab: LabManifest, control: LabControl) -> None:
    server_id = control.add_server("vm", "node-01")
    compute = _compute(lab)
    control.power("node-01", on=False)
    compute.force_down(compute.service("node-01"))
    control.fail_evacuation(target="spare-01")
    faults = control.status()["faults"]
    assert faults["evacuate_fails_on"] == [{"target": "spare-01", "server_id": None}]
    compute.evacuate(server_id, "spare-01")
    failed = wait_until(lambda: _settled(compute, server_id), what="the rebuild on spare-01 failed")
    assert (failed.status, failed.host) == ("ERROR", "node-01")
    [record] = compute.evacuations("node-01", server_id)
    assert (record.status, record.dest_host) == ("failed", "spare-01")
    compute.evacuate(server_id, "node-02")  # from ERROR, to another host
    landed = wait_until(lambda: _settled(compute, server_id, host="node-02"), what="landed on node-02")
    assert landed.status == "ACTIVE"
    control.clear_faults()
    assert control.status()["faults"]["evacuate_fails_on"] == []


def test_spares_sizes_and_the_inventory_segment(tmp_path: Path) -> None:
    """A spare that runs out: 8704 MB is Nova's 512 MB reserve and four m1.small (2048 MB)."""
    options = FAST | {
        "servers_per_host": 0,
        "spares": ("spare-01",),
        "recovery_method": "reserved_host",
        "host_capacity": {"spare-01": {"memory_mb": 8704}},
    }
    with running_lab(tmp_path / "lab", **options) as lab:
        assert (lab.spares, lab.recovery_method, lab.shared_storage) == (("spare-01",), "reserved_host", True)
        [segment] = yaml.safe_load(lab.inventory.read_text())["segments"]
        assert (segment["recovery_method"], segment["shared_storage"]) == ("reserved_host", True)
        assert {h["name"]: h.get("reserved", False) for h in segment["hosts"]} == {
            "node-01": False,
            "node-02": False,
            "spare-01": True,
        }
        compute, control = _compute(lab), LabControl(lab)
        spare = compute.service("spare-01")
        assert (spare.status, spare.disabled_reason) == ("disabled", "reserved spare")
        report = next(r for r in compute.hypervisors() if r.host == "spare-01")
        assert (report.memory_mb, report.memory_mb_used, report.enabled) == (8704, 512, False)

        servers = [control.add_server(f"vm-{i}", "node-01", flavor="m1.small") for i in range(5)]
        control.power("node-01", on=False)
        compute.force_down(compute.service("node-01"))
        compute.enable(spare)  # what reserved_host does with a spare before using it
        for server_id in servers:
            compute.evacuate(server_id, "spare-01")
            wait_until(partial(_settled, compute, server_id), what=f"{server_id} settled")
        statuses = [compute.server(s).status for s in servers]
        assert statuses == ["ACTIVE"] * 4 + ["ERROR"], statuses
        last = LabControl(lab).server(servers[-1])
        assert last["host"] == "node-01"


def _compute(lab: LabManifest) -> NovaCompute:
    return NovaCompute(openstack.connect(**lab.openstack_auth()))


def _settled(compute: NovaCompute, server_id: str, host: str | None = None) -> Server | None:
    """The server once no task runs on it (and it is on `host`, if given)."""
    server = compute.server(server_id)
    done = server.task_state is None and server.status != "REBUILD" and (host is None or server.host == host)
    return server if done else None
