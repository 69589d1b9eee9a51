"""The files a running lab writes into its workdir, and the manifest that describes it.

    manifest.json   LabManifest.to_json(); written last, so its presence means "ready"
    bmc-password    the BMCs' password, mode 0600, random per lab
    clouds.yaml     cloud `lazarus-lab`: auth_type admin_token, compute_api_version '2.94'
    inventory.yaml  Lazarus's inventory format, the password as a file reference
Every file is written to a temporary name and renamed, so readers never see half a file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CLOUD_NAME = "lazarus-lab"
COMPUTE_API_VERSION = "2.94"
MANIFEST = "manifest.json"
PASSWORD_FILE = "bmc-password"  # noqa: S105 (a file name, not a password)
CLOUDS_YAML = "clouds.yaml"
INVENTORY = "inventory.yaml"


@dataclass(frozen=True)
class HostBmc:
    address: str
    port: int


@dataclass(frozen=True)
class LabManifest:
    workdir: Path
    nova_endpoint: str  # http://127.0.0.1:PORT/v2.1
    token: str = field(repr=False)
    control_url: str  # http://127.0.0.1:PORT/lab
    bmc_username: str
    bmc_password_file: Path
    hosts: dict[str, HostBmc | None]  # None: the host has no BMC simulator
    pid: int
    compute_api_version: str = COMPUTE_API_VERSION
    cloud_name: str = CLOUD_NAME
    spares: tuple[str, ...] = ()  # reserved spares (their nova-compute starts disabled)
    recovery_method: str = "auto"  # of the inventory's segment `lab`
    shared_storage: bool = True  # of the inventory's segment `lab`

    @property
    def clouds_yaml(self) -> Path:
        return self.workdir / CLOUDS_YAML

    @property
    def inventory(self) -> Path:
        return self.workdir / INVENTORY

    def bmc_password(self) -> str:
        return self.bmc_password_file.read_text().strip()

    def openstack_auth(self) -> dict[str, Any]:
        """Keyword arguments for `openstack.connect(**...)`, the same shape as the real Nova test bed."""
        return {
            "auth_type": "admin_token",
            "auth": {"endpoint": self.nova_endpoint, "token": self.token},
            "compute_api_version": self.compute_api_version,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "pid": self.pid,
            "nova": {
                "endpoint": self.nova_endpoint,
                "token": self.token,
                "compute_api_version": self.compute_api_version,
            },
            "control_url": self.control_url,
            "cloud_name": self.cloud_name,
            "clouds_yaml": str(self.clouds_yaml),
            "inventory": str(self.inventory),
            "bmc": {"username": self.bmc_username, "password_file": str(self.bmc_password_file)},
            "hosts": {
                name: {"bmc": None if bmc is None else {"address": bmc.address, "port": bmc.port}}
                for name, bmc in self.hosts.items()
            },
            "segment": {
                "spares": list(self.spares),
                "recovery_method": self.recovery_method,
                "shared_storage": self.shared_storage,
            },
        }

    @classmethod
    def from_json(cls, workdir: Path, data: dict[str, Any]) -> LabManifest:
        hosts: dict[str, HostBmc | None] = {}
        segment = data.get("segment") or {}
        for name, entry in data["hosts"].items():
            bmc = entry.get("bmc")
            hosts[name] = None if bmc is None else HostBmc(address=bmc["address"], port=int(bmc["port"]))
        return cls(
            workdir=workdir,
            nova_endpoint=data["nova"]["endpoint"],
            token=data["nova"]["token"],
            compute_api_version=data["nova"]["compute_api_version"],
            control_url=data["control_url"],
            cloud_name=data["cloud_name"],
            bmc_username=data["bmc"]["username"],
            bmc_password_file=Path(data["bmc"]["password_file"]),
            hosts=hosts,
            pid=int(data["pid"]),
            spares=tuple(segment.get("spares", ())),
            recovery_method=str(segment.get("recovery_method", "auto")),
            shared_storage=bool(segment.get("shared_storage", True)),
        )

    @classmethod
    def load(cls, workdir: Path) -> LabManifest:
        workdir = workdir.resolve()
        return cls.from_json(workdir, json.loads((workdir / MANIFEST).read_text()))


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, mode)  # O_CREAT's mode is filtered by the umask; the password file must be 0600
    os.replace(tmp, path)


def write_lab_files(manifest: LabManifest, bmc_password: str) -> None:
    """Write the password, clouds.yaml and inventory, then the manifest last."""
    write_atomically(manifest.bmc_password_file, bmc_password + "\n", mode=0o600)
    clouds = {
        "clouds": {
            manifest.cloud_name: {
                "auth_type": "admin_token",
                "auth": {"endpoint": manifest.nova_endpoint, "token": manifest.token},
                "compute_api_version": manifest.compute_api_version,
            }
        }
    }
    write_atomically(manifest.clouds_yaml, yaml.safe_dump(clouds, sort_keys=False), mode=0o600)
    write_atomically(manifest.inventory, yaml.safe_dump(inventory(manifest), sort_keys=False))
    write_atomically(manifest.workdir / MANIFEST, json.dumps(manifest.to_json(), indent=2) + "\n", mode=0o600)


def inventory(manifest: LabManifest) -> dict[str, Any]:
    hosts: list[dict[str, Any]] = []
    for name, bmc in manifest.hosts.items():
        entry: dict[str, Any] = {"name": name}
        if name in manifest.spares:
            entry["reserved"] = True
        if bmc is not None:
            entry["bmc"] = {
                "driver": "ipmi",
                "address": bmc.address,
                "port": bmc.port,
                "username": manifest.bmc_username,
                "password": {"file": str(manifest.bmc_password_file)},
            }
        hosts.append(entry)
    segment = {
        "name": "lab",
        "recovery_method": manifest.recovery_method,
        "service_type": "COMPUTE",
        "shared_storage": manifest.shared_storage,
        "hosts": hosts,
    }
    return {"segments": [segment]}
