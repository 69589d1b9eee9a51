"""The lab's host aggregates (Nova 34's os-aggregates rules, checked on the real test bed) and
the lab options the placement tests build on: reserved spares, per-host sizes, the segment of
the generated inventory, the flavors."""

from __future__ import annotations

from pathlib import Path

import pytest

from receiver.inventory import parse_inventory
from receiver.lab.cloud import Cloud
from receiver.lab.manifest import HostBmc, LabManifest, inventory
from receiver.lab.model import NovaError
from receiver.lab.topology import SPARE_REASON, LabOptions, build_cloud

pytestmark = pytest.mark.unit


def refused(call: object) -> tuple[int, str]:
    assert callable(call)
    with pytest.raises(NovaError) as caught:
        call()
    return caught.value.status, caught.value.message


# ------------------------------------------------------------------------------------ aggregates


def test_create_list_and_a_duplicate_name(cloud: Cloud) -> None:
    first = cloud.create_aggregate("rack-1", None)
    second = cloud.create_aggregate("rack-2", "zone-b")
    assert (first.id, second.id, second.availability_zone) == (1, 2, "zone-b")
    assert refused(lambda: cloud.create_aggregate(" rack-1 ", None)) == (
        409,
        "Aggregate rack-1 already exists.",
    )
    assert cloud.aggregate("2") is second
    assert refused(lambda: cloud.aggregate("99")) == (404, "Aggregate 99 could not be found.")
    assert refused(lambda: cloud.aggregate("abc")) == (400, "Invalid input received: id must be an integer")


def test_add_host_in_nova_s_order_of_checks(cloud: Cloud) -> None:
    aggregate = cloud.create_aggregate("rack-1", None)
    assert cloud.add_aggregate_host("1", "spare-01").hosts == ["spare-01"]
    assert refused(lambda: cloud.add_aggregate_host("1", "spare-01")) == (
        409,
        "Aggregate 1 already has host spare-01.",
    )
    # An unknown host is reported before an unknown aggregate, as Nova does.
    assert refused(lambda: cloud.add_aggregate_host("99", "nope")) == (
        404,
        "Compute host nope could not be found.",
    )
    assert refused(lambda: cloud.add_aggregate_host("99", "node-01")) == (
        404,
        "Aggregate 99 could not be found.",
    )
    assert aggregate.hosts == ["spare-01"]


def test_availability_zone_conflicts_are_409s(cloud: Cloud) -> None:
    zone_a = cloud.create_aggregate("a", "zone-a")
    cloud.create_aggregate("b", "zone-b")
    cloud.add_aggregate_host(str(zone_a.id), "spare-01")
    status, message = refused(lambda: cloud.add_aggregate_host("2", "spare-01"))
    assert status == 409
    reason = "One or more hosts already in availability zone(s) ['zone-a']"
    assert message == f"Cannot add host to aggregate 2. Reason: {reason}."
    cloud.add_server("vm", "node-01", "m1.small")
    status, message = refused(lambda: cloud.add_aggregate_host("2", "node-01"))
    assert status == 409 and message.startswith(
        "Cannot add host to aggregate 2. Reason: The host cannot be added to the aggregate as the "
        "availability zone of the host would change from 'None' to 'zone-b' but the host already "
        "has 1 instance(s)."
    )
    plain = cloud.create_aggregate("plain", None)  # no zone: the instances stay where they are
    assert cloud.add_aggregate_host(str(plain.id), "node-01").hosts == ["node-01"]


def test_remove_host_and_delete(cloud: Cloud) -> None:
    cloud.create_aggregate("rack-1", None)
    cloud.add_aggregate_host("1", "node-02")
    assert refused(lambda: cloud.delete_aggregate("1")) == (
        400,
        "Cannot remove host from aggregate 1. Reason: Host aggregate is not empty.",
    )
    assert cloud.remove_aggregate_host("1", "node-02").hosts == []
    assert refused(lambda: cloud.remove_aggregate_host("1", "node-02")) == (
        404,
        "Cannot remove host node-02 in aggregate 1",
    )
    cloud.delete_aggregate("1")
    assert refused(lambda: cloud.delete_aggregate("1"))[0] == 404
    assert cloud.create_aggregate("rack-1", None).id == 2  # ids are never reused


# ------------------------------------------------------------------------------------ options


def test_spares_start_disabled_and_empty() -> None:
    cloud = build_cloud(LabOptions(hosts=("node-01", "node-02", "spare-01"), spares=("spare-01",)))
    spare = cloud.hosts["spare-01"]
    assert (spare.disabled, spare.disabled_reason, cloud.list_servers(host="spare-01")) == (
        True,
        SPARE_REASON,
        [],
    )
    assert not cloud.hosts["node-02"].disabled and cloud.list_servers(host="node-02")
    with pytest.raises(ValueError, match="spares names unknown hosts: nope"):
        LabOptions(spares=("nope",)).spare_names()
    with pytest.raises(ValueError, match="recovery_method"):
        LabOptions(recovery_method="sometimes").spare_names()


def test_per_host_capacity() -> None:
    options = LabOptions(
        hosts=("node-01", "spare-01"), host_capacity=("spare-01:memory_mb=8704:vcpus=4",), servers_per_host=0
    )
    cloud = build_cloud(options)
    spare, node = cloud.hosts["spare-01"], cloud.hosts["node-01"]
    assert (spare.vcpus, spare.memory_mb, spare.local_gb) == (4, 8704, options.host_disk_gb)
    assert (node.vcpus, node.memory_mb) == (options.host_vcpus, options.host_memory_mb)
    for bad in ("nope:vcpus=2", "spare-01:ram=2", "spare-01:vcpus=0", "spare-01:vcpus=x"):
        with pytest.raises(ValueError, match="host_capacity"):
            LabOptions(hosts=("spare-01",), host_capacity=(bad,)).capacity_overrides()


def test_flavors_for_placement_tests() -> None:
    cloud = build_cloud(LabOptions(servers_per_host=0))
    by_name = {f.name: f for f in cloud.flavors.values()}
    assert by_name["lab.gpu"].extra_specs == {"pci_passthrough:alias": "gpu:1"}
    assert by_name["lab.pinned"].extra_specs == {"hw:cpu_policy": "dedicated"}
    huge = by_name["lab.huge"]
    for _ in range(2):  # two fill a default host, the 512 MB reserve aside
        cloud.add_server("big", "node-01", "lab.huge")
    assert cloud.hosts["node-01"].memory_mb_used == cloud.hosts["node-01"].memory_mb == 512 + 2 * huge.ram


def test_generated_inventory_marks_spares_and_the_segment(tmp_path: Path) -> None:
    manifest = LabManifest(
        workdir=tmp_path,
        nova_endpoint="http://127.0.0.1:1/v2.1",
        token="t",
        control_url="http://127.0.0.1:1/lab",
        bmc_username="admin",
        bmc_password_file=tmp_path / "bmc-password",
        hosts={"node-01": HostBmc("127.0.0.1", 623), "spare-01": None},
        pid=1,
        spares=("spare-01",),
        recovery_method="reserved_host",
        shared_storage=True,
    )
    data = inventory(manifest)
    [segment] = data["segments"]
    assert (segment["recovery_method"], segment["shared_storage"]) == ("reserved_host", True)
    assert [h.get("reserved", False) for h in segment["hosts"]] == [False, True]
    parsed = parse_inventory(data)  # what `lazarus inventory apply` accepts
    [spec] = parsed.segments
    assert (str(spec.recovery_method), spec.shared_storage) == ("reserved_host", True)
    assert {h.name: h.reserved for h in spec.hosts} == {"node-01": False, "spare-01": True}
    assert LabManifest.from_json(tmp_path, manifest.to_json()) == manifest
