"""Nova's JSON shapes for the lab's records, copied from a real Nova 34 (see nova-lab/README.md).

Each function takes the microversion of the request where Nova's shape depends on it.
Call them under the cloud's lock: they read mutable records.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from receiver.lab.cloud import Cloud
from receiver.lab.model import Flavor, Host, Instance, MigrationRecord

MAX_VERSION = (2, 100)
MIN_VERSION = (2, 1)
Version = tuple[int, int]
Json = dict[str, Any]


def iso_z(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_micro(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def version_string(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def version_document(base_url: str) -> Json:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": version_string(MAX_VERSION),
        "min_version": version_string(MIN_VERSION),
        "updated": "2013-07-23T11:33:21Z",
        "links": [
            {"rel": "self", "href": f"{base_url}/v2.1/"},
            {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
        ],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}
        ],
    }


def versions_document(base_url: str) -> Json:
    current = version_document(base_url)
    return {
        "versions": [
            {
                "id": "v2.0",
                "status": "DEPRECATED",
                "version": "",
                "min_version": "",
                "updated": "2025-07-04T12:00:00Z",
                "links": [{"rel": "self", "href": f"{base_url}/v2/"}],
            },
            {key: current[key] for key in ("id", "status", "version", "min_version", "updated")}
            | {"links": [{"rel": "self", "href": f"{base_url}/v2.1/"}]},
        ]
    }


def links(base_url: str, collection: str, item_id: str) -> list[Json]:
    return [
        {"rel": "self", "href": f"{base_url}/v2.1/{collection}/{item_id}"},
        {"rel": "bookmark", "href": f"{base_url}/{collection}/{item_id}"},
    ]


def service(cloud: Cloud, host: Host, now: float, version: Version) -> Json:
    return {
        "binary": "nova-compute",
        "host": host.name,
        "id": host.service_id if version >= (2, 53) else host.number,
        "zone": "nova",
        "status": "disabled" if host.disabled else "enabled",
        "state": "up" if cloud.is_up(host, now) else "down",
        "updated_at": iso_micro(cloud.last_heartbeat(host, now) // 1),  # Nova's DB keeps whole seconds
        "disabled_reason": host.disabled_reason,
        "forced_down": host.forced_down,
    }


def host_status(cloud: Cloud, host_name: str | None, now: float) -> str:
    """Nova's get_instance_host_status: forced down is DOWN, disabled MAINTENANCE, and a service
    that merely stopped heartbeating is UNKNOWN (Nova cannot tell a dead host from a cut link)."""
    host = cloud.hosts.get(host_name or "")
    if host is None:
        return ""
    if host.forced_down:
        return "DOWN"
    if host.disabled:
        return "MAINTENANCE"
    return "UP" if cloud.is_up(host, now) else "UNKNOWN"


def flavor_embedded(flavor: Flavor, base_url: str, version: Version) -> Json:
    if version >= (2, 47):
        return {
            "vcpus": flavor.vcpus,
            "ram": flavor.ram,
            "disk": flavor.disk,
            "ephemeral": flavor.ephemeral,
            "swap": flavor.swap,
            "original_name": flavor.name,
            "extra_specs": dict(flavor.extra_specs),
        }
    return {"id": flavor.id, "links": [{"rel": "bookmark", "href": f"{base_url}/flavors/{flavor.id}"}]}


def server_summary(server: Instance, base_url: str) -> Json:
    return {"id": server.id, "name": server.name, "links": links(base_url, "servers", server.id)}


def server_detail(cloud: Cloud, server: Instance, base_url: str, now: float, version: Version) -> Json:
    host_id = (
        hashlib.sha224(f"{server.project_id}{server.host or ''}".encode()).hexdigest() if server.host else ""
    )
    body: Json = {
        "accessIPv4": "",
        "accessIPv6": "",
        "addresses": {},
        "created": iso_z(server.created),
        "flavor": flavor_embedded(server.flavor, base_url, version),
        "hostId": host_id,
        "id": server.id,
        "image": image(server, base_url),
        "links": links(base_url, "servers", server.id),
        "metadata": dict(server.metadata),
        "name": server.name,
        "status": server.status,
        "tenant_id": server.project_id,
        "user_id": server.user_id,
        "updated": iso_z(server.updated),
        "OS-DCF:diskConfig": "MANUAL",
        "progress": 0,
        "OS-EXT-AZ:availability_zone": "nova",
        "config_drive": "",
        "key_name": None,
        "OS-SRV-USG:launched_at": None if server.launched_at is None else iso_micro(server.launched_at),
        "OS-SRV-USG:terminated_at": None,
        "OS-EXT-SRV-ATTR:host": server.host,
        "OS-EXT-SRV-ATTR:instance_name": f"instance-{server.id[:8]}",
        "OS-EXT-SRV-ATTR:hypervisor_hostname": server.host,
        "OS-EXT-STS:task_state": server.task_state,
        "OS-EXT-STS:vm_state": server.vm_state,
        "OS-EXT-STS:power_state": server.power_state,
        "os-extended-volumes:volumes_attached": volumes_attached(server, version),
        "security_groups": [{"name": "default"}],
    }
    if version >= (2, 3):
        body |= {
            "OS-EXT-SRV-ATTR:hostname": server.name,
            "OS-EXT-SRV-ATTR:kernel_id": "",
            "OS-EXT-SRV-ATTR:launch_index": 0,
            "OS-EXT-SRV-ATTR:ramdisk_id": "",
            "OS-EXT-SRV-ATTR:reservation_id": f"r-{server.id[:8]}",
            "OS-EXT-SRV-ATTR:root_device_name": "/dev/sda",
            "OS-EXT-SRV-ATTR:user_data": None,
        }
    if version >= (2, 9):
        body["locked"] = server.locked
    if version >= (2, 16):
        body["host_status"] = host_status(cloud, server.host, now)
    if version >= (2, 19):
        body["description"] = None
    if version >= (2, 26):
        body["tags"] = []
    if version >= (2, 63):
        body["trusted_image_certificates"] = None
    if version >= (2, 71):
        body["server_groups"] = []
    if version >= (2, 73):
        body["locked_reason"] = server.locked_reason
    if server.fault is not None and server.vm_state == "error":
        body["fault"] = {
            "code": server.fault["code"],
            "created": iso_z(server.fault["created"]),
            "message": server.fault["message"],
            # Nova shows an error's traceback to admins, which the lab's token always is.
            "details": f"Traceback (most recent call last):\n  (simulated by the Lazarus lab)\n"
            f"{server.fault['message']}\n",
        }
    return body


def image(server: Instance, base_url: str) -> Json | str:
    """Nova shows an empty string for a server booted from a volume."""
    if server.root_volume is not None:
        return ""
    return {
        "id": server.image_id,
        "links": [{"rel": "bookmark", "href": f"{base_url}/images/{server.image_id}"}],
    }


def volumes_attached(server: Instance, version: Version) -> list[Json]:
    """The root volume first (its block device mapping comes first), then the data volumes;
    `delete_on_termination` from 2.3."""
    ids = ([server.root_volume] if server.root_volume is not None else []) + server.volumes
    if version >= (2, 3):
        return [{"id": volume, "delete_on_termination": False} for volume in ids]
    return [{"id": volume} for volume in ids]


def hypervisor(cloud: Cloud, host: Host, now: float, version: Version, detail: bool) -> Json:
    body: Json = {
        "id": host.hypervisor_id if version >= (2, 53) else host.number,
        "hypervisor_hostname": host.name,
        "state": "up" if cloud.is_up(host, now) else "down",
        "status": "disabled" if host.disabled else "enabled",
    }
    if not detail:
        return body
    body |= {
        "hypervisor_type": "fake",
        "hypervisor_version": 1000,
        "host_ip": "127.0.0.1",
        "service": {
            "id": host.service_id if version >= (2, 53) else host.number,
            "host": host.name,
            "disabled_reason": host.disabled_reason,
        },
    }
    if version >= (2, 88):
        body["uptime"] = None
        return body
    return body | {
        "vcpus": host.vcpus,
        "memory_mb": host.memory_mb,
        "local_gb": host.local_gb,
        "vcpus_used": host.vcpus_used,
        "memory_mb_used": host.memory_mb_used,
        "local_gb_used": host.local_gb_used,
        "free_ram_mb": host.memory_mb - host.memory_mb_used,
        "free_disk_gb": host.local_gb - host.local_gb_used,
        "current_workload": 0,
        "running_vms": host.running_vms,
        "disk_available_least": host.local_gb - host.local_gb_used,
        "cpu_info": {
            "arch": "x86_64",
            "model": "Nehalem",
            "vendor": "Intel",
            "features": ["pge", "clflush"],
            "topology": {"cores": 1, "threads": 1, "sockets": 4},
        },
    }


def flavor(flavor: Flavor, base_url: str, version: Version, detail: bool) -> Json:
    body: Json = {"id": flavor.id, "name": flavor.name, "links": links(base_url, "flavors", flavor.id)}
    if version >= (2, 55):
        body["description"] = flavor.description
    if not detail:
        return body
    body |= {
        "ram": flavor.ram,
        "disk": flavor.disk,
        "swap": flavor.swap if flavor.swap else ("" if version < (2, 75) else 0),
        "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral,
        "OS-FLV-DISABLED:disabled": False,
        "vcpus": flavor.vcpus,
        "os-flavor-access:is_public": True,
        "rxtx_factor": 1.0,
    }
    if version >= (2, 61):
        body["extra_specs"] = dict(flavor.extra_specs)
    return body


def migration(record: MigrationRecord, version: Version) -> Json:
    body: Json = {
        "id": record.id,
        "instance_uuid": record.instance_uuid,
        "source_compute": record.source_compute,
        "source_node": record.source_compute,
        "dest_compute": record.dest_compute,
        "dest_node": record.dest_compute,
        "dest_host": "127.0.0.1" if record.dest_compute else None,
        "status": record.status,
        "old_instance_type_id": 1,
        "new_instance_type_id": 1,
        "created_at": iso_micro(record.created_at),
        "updated_at": iso_micro(record.updated_at),
    }
    if version >= (2, 23):
        body["migration_type"] = record.migration_type
    if version >= (2, 59):
        body["uuid"] = record.uuid
    if version >= (2, 80):
        body["user_id"] = record.user_id
        body["project_id"] = record.project_id
    return body
