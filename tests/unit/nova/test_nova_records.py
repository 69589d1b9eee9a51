"""Reading Nova's records (receiver.adapters.nova_records): the parts the live targets of the
contract suite cannot show, e.g. a host with several hypervisor nodes (Ironic)."""

from __future__ import annotations

from typing import Any

import pytest

from receiver.adapters import nova_records as records
from receiver.domain.capacity import DiskFacts, HypervisorReport
from receiver.domain.model import Aggregate
from receiver.errors import ComputeError

pytestmark = pytest.mark.unit


def node(
    host: str, node_id: str, *, status: str = "enabled", state: str = "up", **figures: int
) -> dict[str, Any]:
    """One os-hypervisors/detail item at 2.87, as the real test bed answers it."""
    values = {
        "vcpus": 4,
        "vcpus_used": 1,
        "memory_mb": 8192,
        "memory_mb_used": 1024,
        "local_gb": 100,
        "local_gb_used": 10,
    }
    return {
        "id": node_id,
        "hypervisor_hostname": f"{host}-{node_id}",
        "state": state,
        "status": status,
        "service": {"id": f"svc-{host}", "host": host, "disabled_reason": None},
        **values,
        **figures,
    }


def test_one_report_per_service_host_nodes_summed() -> None:
    reports = records.hypervisor_reports(
        [node("ironic-1", "a"), node("compute-1", "c", vcpus_used=3), node("ironic-1", "b", local_gb_used=0)]
    )
    assert reports == [
        HypervisorReport("ironic-1", 8, 2, 16384, 2048, 200, 10, enabled=True, up=True),
        HypervisorReport("compute-1", 4, 3, 8192, 1024, 100, 10, enabled=True, up=True),
    ]


def test_a_host_is_enabled_and_up_only_if_all_its_nodes_say_so() -> None:
    [report] = records.hypervisor_reports([node("h", "a"), node("h", "b", status="disabled", state="down")])
    assert (report.enabled, report.up) == (False, False)


def test_missing_figures_are_an_error_not_zero() -> None:
    raw = node("h", "a")
    del raw["vcpus_used"], raw["local_gb"]  # what os-hypervisors answers from 2.88
    with pytest.raises(ComputeError, match="without vcpus_used, local_gb"):
        records.hypervisor_reports([raw])
    with pytest.raises(ComputeError, match="without a service host"):
        records.hypervisor_reports([{k: v for k, v in node("h", "a").items() if k != "service"}])


def test_server_disks_and_lock_reason() -> None:
    volume_backed = {
        "id": "s1",
        "image": "",
        "os-extended-volumes:volumes_attached": [{"id": "v1", "delete_on_termination": False}],
        "locked": True,
        "locked_reason": "lazarus recovery r-1",
        "tenant_id": "p-1",
    }
    server = records.server(volume_backed)
    assert (server.disks, server.locked, server.locked_reason, server.project_id) == (
        DiskFacts(True, 1),
        True,
        "lazarus recovery r-1",
        "p-1",
    )
    image_backed = records.server(
        {"id": "s2", "image": {"id": "img"}, "os-extended-volumes:volumes_attached": []}
    )
    assert image_backed.disks == DiskFacts(False, 0) and image_backed.locked_reason is None
    failed = records.server(
        {
            "id": "s4",
            "status": "ERROR",
            "fault": {"code": 500, "message": "No valid host was found. ", "details": "Traceback"},
        }
    )
    assert failed.fault == "No valid host was found. "  # the message only: details are an admin's traceback
    assert image_backed.fault is None
    partial = records.server({"id": "s3", "status": "UNKNOWN"})  # a server in a down cell
    assert partial.disks == DiskFacts(None, 0) and partial.project_id is None


def test_aggregate() -> None:
    raw = {"id": 7, "name": "rack-1", "hosts": ["a", "b"], "availability_zone": None, "metadata": {}}
    assert records.aggregate(raw) == Aggregate("7", "rack-1", ("a", "b"), None)
    assert records.aggregate({"id": 8, "name": "z", "hosts": None, "availability_zone": "az1"}) == Aggregate(
        "8", "z", (), "az1"
    )


def test_next_marker() -> None:
    links = [{"rel": "next", "href": "http://proxy.example/v2.1/os-hypervisors/detail?limit=1&marker=abc"}]
    assert records.next_marker(links) == "abc"
    assert records.next_marker([]) is None
