"""A whole host recovery against the real Nova test bed: the rig.

The real Nova (../shared/nova-lab) has no BMCs, so the victim gets the standalone BMC
simulator (`python -m receiver.lab.bmc`, real RMCP+ over UDP) whose power-off runs
`nodectl.sh kill HOST`: the BMC reads back OFF exactly when the host's nova-compute is dead.
Lazarus's services run in-process on a private redis-server and reach Nova through
openstacksdk and a clouds.yaml, as a worker does.

The real Nova is shared: every fixture leaves it as it found it (servers deleted; a killed
compute restarted, heartbeating, un-forced and enabled again), whatever the test did.

  LAZARUS_TEST_NOVA_ENDPOINT          e.g. http://127.0.0.1:18774/v2.1 (unset: skipped)
  LAZARUS_TEST_NOVA_TOKEN             default admin:admin
  LAZARUS_TEST_NOVA_LAB               path to ../shared/nova-lab (unset: skipped; its
                                      nodectl.sh is the victim's power)
  LAZARUS_TEST_NOVA_RECOVERY_VICTIM   the host recovered here, default node-01 (the contract
                                      suite powers off node-02; keep the two apart)
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import yaml

from receiver import jobs
from receiver.bootstrap import Services, build, utc_now
from receiver.domain.alerts import parse_webhook
from receiver.domain.record import Notification
from receiver.inventory import parse_inventory
from receiver.settings import Settings
from tests.contract.conftest import FLAVOR_NAME, NovaAdmin, Target
from tests.integration.core.helpers import host_alert, webhook

REPO_ROOT = Path(__file__).resolve().parents[2]
CLOUD_NAME = "lazarus-nova-recovery"
BMC_USERNAME = "lazarus"
BMC_READY_TIMEOUT_S = 60.0
BMC_STOP_TIMEOUT_S = 20.0
SERVER_TAG = "lazarus-nova-recovery"


# ------------------------------------------------------------------------------ the real Nova


@dataclass
class RealNova:
    """The test bed, as far as this tier uses it."""

    target: Target  # the contract suite's helpers: boot, restore_host, cleanup_servers
    nodectl: Path

    @property
    def admin(self) -> NovaAdmin:
        return self.target.admin

    @property
    def victim(self) -> str:
        return self.target.victim

    def compute_running(self, host: str) -> bool:
        """Whether nodectl.sh knows a live nova-compute for `host` (a killed one is forgotten)."""
        status = subprocess.run(
            [str(self.nodectl), "status"], check=True, capture_output=True, text=True, timeout=60
        ).stdout
        return re.search(rf"^nova-compute-{re.escape(host)} pid \d+ running$", status, re.M) is not None

    def host_healthy(self, host: str) -> bool:
        service = self.admin.service(host)
        healthy_service = service["status"] == "enabled" and not service["forced_down"]
        return healthy_service and service["state"] == "up" and self.compute_running(host)

    def evacuations(self, source_host: str, server_ids: set[str]) -> list[dict[str, Any]]:
        """Nova's evacuation migration records of these servers (GET /os-migrations)."""
        query = f"/os-migrations?migration_type=evacuation&source_compute={source_host}"
        migrations: list[dict[str, Any]] = self.admin.call("GET", query)["migrations"]
        return [m for m in migrations if m["instance_uuid"] in server_ids]


@pytest.fixture(scope="session")
def real_nova() -> RealNova:
    endpoint = os.environ.get("LAZARUS_TEST_NOVA_ENDPOINT")
    if not endpoint:
        pytest.skip("real Nova: LAZARUS_TEST_NOVA_ENDPOINT is not set (start ../shared/nova-lab)")
    lab = os.environ.get("LAZARUS_TEST_NOVA_LAB")
    if not lab:
        pytest.skip("real Nova: LAZARUS_TEST_NOVA_LAB is not set; a host recovery needs its nodectl.sh")
    nodectl = Path(lab) / "nodectl.sh"
    if not nodectl.is_file():
        pytest.fail(f"LAZARUS_TEST_NOVA_LAB={lab} has no nodectl.sh")
    token = os.environ.get("LAZARUS_TEST_NOVA_TOKEN", "admin:admin")
    admin = NovaAdmin(endpoint, token)
    try:
        admin.compute_hosts()
    except (requests.RequestException, AssertionError) as exc:
        pytest.fail(f"real Nova at {endpoint} (LAZARUS_TEST_NOVA_ENDPOINT) does not answer: {exc}")

    def run_nodectl(action: str, host: str) -> None:
        subprocess.run([str(nodectl), action, host], check=True, capture_output=True, timeout=60)

    target = Target(
        name="nova",
        endpoint=endpoint,
        token=token,
        admin=admin,
        victim=os.environ.get("LAZARUS_TEST_NOVA_RECOVERY_VICTIM", "node-01"),
        power_off=lambda host: run_nodectl("kill", host),
        power_on=lambda host: run_nodectl("start", host),
        create_server=admin.boot,
        flavor=(FLAVOR_NAME, 1),
    )
    return RealNova(target, nodectl)


@dataclass
class VictimServers:
    host: str
    prior_status: dict[str, str]  # server id -> ACTIVE | SHUTOFF, as booted

    @property
    def ids(self) -> set[str]:
        return set(self.prior_status)


@pytest.fixture
def victim_servers(real_nova: RealNova) -> Iterator[VictimServers]:
    """Three servers on the victim, one of them stopped; afterwards the host is restored
    (if anything happened to it) and the servers are deleted."""
    host = real_nova.victim
    real_nova.target.require_healthy(host)
    if not real_nova.compute_running(host):
        pytest.skip(f"nova: {host}'s nova-compute is not running; someone else is using it")
    others_up = [h for h in real_nova.target.other_hosts(host) if real_nova.admin.service(h)["state"] == "up"]
    if not others_up:
        pytest.skip(f"nova: no compute host but {host} is up to evacuate to")
    owned: list[str] = []
    try:
        for index in range(3):
            name = f"{SERVER_TAG}-{index}-{uuid.uuid4().hex[:6]}"
            owned.append(real_nova.admin.boot(host, name, {SERVER_TAG: name, "HA_Enabled": "True"}))
        for server_id in owned:
            real_nova.admin.wait_status(server_id, "ACTIVE")
        real_nova.admin.stop(owned[-1])
        real_nova.admin.wait_status(owned[-1], "SHUTOFF")
        prior = {sid: "ACTIVE" for sid in owned[:-1]} | {owned[-1]: "SHUTOFF"}
        for server_id, status in prior.items():
            server = real_nova.admin.server(server_id)
            assert server is not None
            assert (server["OS-EXT-SRV-ATTR:host"], server["status"]) == (host, status)
        yield VictimServers(host, prior)
    finally:
        # Host first: deleting a server whose dead compute is not forced down would wait for
        # that compute forever; once it is back, deletes and its own clean-up proceed normally.
        try:
            if not real_nova.host_healthy(host):
                real_nova.target.restore_host(host)
        finally:
            real_nova.target.cleanup_servers(owned)
        assert real_nova.host_healthy(host), f"{host} was not restored: {real_nova.admin.service(host)}"


# ------------------------------------------------------------------------------ the BMC


@dataclass
class BmcSim:
    """The standalone BMC simulator of one host, as a child process."""

    host: str
    port: int
    username: str
    password: str
    password_file: Path
    log_file: Path
    process: subprocess.Popen[bytes]

    def output(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=BMC_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=BMC_STOP_TIMEOUT_S)


def start_bmc(workdir: Path, host: str, nodectl: Path, fault: str) -> BmcSim:
    """Start the simulator (power ON) whose power-off kills `host`'s nova-compute and whose
    power-on starts it again (the reinstate tests read ON exactly then)."""
    workdir.mkdir(parents=True, exist_ok=True)
    password = f"bmc-{secrets.token_hex(8)}"  # IPMI 2.0 passwords are at most 20 bytes
    password_file = workdir / "bmc-password"
    password_file.write_text(password + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    ready_file = workdir / "bmc-port"
    log_file = workdir / "bmc.log"
    command = [
        sys.executable,
        "-m",
        "receiver.lab.bmc",
        *("--host", host, "--port", "0", "--username", BMC_USERNAME),
        *("--password-file", str(password_file), "--ready-file", str(ready_file)),
        *("--on-power-off", shlex.join([str(nodectl), "kill", host])),
        *("--on-power-on", shlex.join([str(nodectl), "start", host]), "--fault", fault),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    with log_file.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env)
    bmc = BmcSim(host, 0, BMC_USERNAME, password, password_file, log_file, process)
    deadline = time.monotonic() + BMC_READY_TIMEOUT_S
    while not ready_file.exists():
        if process.poll() is not None:
            pytest.fail(f"BMC simulator exited {process.returncode} before it was ready:\n{bmc.output()}")
        if time.monotonic() > deadline:
            bmc.stop()
            pytest.fail(f"BMC simulator not ready after {BMC_READY_TIMEOUT_S:.0f}s:\n{bmc.output()}")
        time.sleep(0.05)
    bmc.port = int(ready_file.read_text(encoding="utf-8"))
    return bmc


# ------------------------------------------------------------------------------ the rig


@dataclass
class NovaRecoveryRig:
    nova: RealNova
    bmc: BmcSim
    services: Services
    timings: dict[str, float] = field(default_factory=dict)

    def alert(self, host: str) -> str:
        """Deliver a host-down alert through the intake; returns the record's uuid."""
        starts_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        message = parse_webhook(webhook(host_alert(host, starts_at=starts_at)))
        [result] = self.services.intake().accept(message)
        assert result.outcome == "recovery_created", result
        return result.notification_uuid

    def run(self, uuid: str) -> Notification:
        """`jobs.run_recovery` in this process, as the RQ work-horse would call it."""
        jobs.configure(self.services)
        jobs.run_recovery(uuid)
        return self.services.store.get(uuid)

    def redis_text(self) -> str:
        """Every value our Redis holds (records, alerts, inventory, metrics), as one text."""
        client: redis.Redis = self.services.redis
        return repr([(key, _redis_value(client, key)) for key in client.scan_iter()])


def _redis_value(client: redis.Redis, key: Any) -> Any:
    kind = client.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind == "string":
        return client.get(key)
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "set":
        return client.smembers(key)
    if kind == "zset":
        return client.zrange(key, 0, -1, withscores=True)
    if kind == "hash":
        return client.hgetall(key)
    return kind


def write_clouds_yaml(path: Path, endpoint: str, token: str) -> Path:
    clouds = {
        "clouds": {
            CLOUD_NAME: {
                "auth_type": "admin_token",
                "auth": {"endpoint": endpoint, "token": token},
                "compute_api_version": "2.94",
            }
        }
    }
    path.write_text(yaml.safe_dump(clouds), encoding="utf-8")
    return path


@pytest.fixture
def make_rig(
    real_nova: RealNova,
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., NovaRecoveryRig]]:
    """make_rig(fault="none", spare=None, **settings) -> a BMC simulator for the victim, a
    clouds.yaml for the real Nova, and services on the private Redis with an inventory naming
    that BMC. With `spare`, the segment uses `reserved_host` and that compute host is its
    reserved spare (its nova-compute disabled now, enabled again afterwards)."""
    started: list[BmcSim] = []
    spares: list[str] = []

    def make(fault: str = "none", spare: str | None = None, **settings: Any) -> NovaRecoveryRig:
        host = real_nova.victim
        bmc = start_bmc(tmp_path / f"bmc-{len(started)}", host, real_nova.nodectl, fault)
        started.append(bmc)
        target = real_nova.target
        clouds = write_clouds_yaml(tmp_path / "clouds.yaml", target.endpoint, target.token)
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
        defaults: dict[str, Any] = {
            "nova": {"cloud": CLOUD_NAME, "compute_api_version": "2.94", "timeout_s": 30},
            # Generous: the BMC's power-off hook runs nodectl.sh before it answers.
            "fencing": {"bmc_timeout_s": 15, "power_off_timeout_s": 60, "poll_interval_s": 0.2},
            "evacuation": {"timeout_s": 300, "poll_interval_s": 0.2},
            "worker": {"lease_ttl_s": 30},
        }
        merged = {key: {**defaults.get(key, {}), **value} for key, value in settings.items()}
        services = build(make_settings(**{**defaults, **merged}))
        if spare is not None:
            spares.append(spare)
            compute = services.compute()
            compute.disable(compute.service(spare), "reserved spare (lazarus real-Nova test)")
        inventory = {
            "segments": [
                {
                    "name": "nova-recovery",
                    "recovery_method": "auto" if spare is None else "reserved_host",
                    # The bed's servers are image-backed; its computes share nothing, but the fake
                    # driver keeps no disk either: nothing is lost by a rebuild.
                    "shared_storage": True,
                    "hosts": [
                        {
                            "name": host,
                            "bmc": {
                                "driver": "ipmi",
                                "address": "127.0.0.1",
                                "port": bmc.port,
                                "username": bmc.username,
                                "password": {"file": str(bmc.password_file)},
                            },
                        },
                        *([{"name": spare, "reserved": True}] if spare else []),
                    ],
                }
            ]
        }
        services.inventory.apply(parse_inventory(inventory), utc_now())
        return NovaRecoveryRig(real_nova, bmc, services)

    try:
        yield make
    finally:
        for bmc in started:
            bmc.stop()
        for name in spares:
            real_nova.admin.update_service(name, status="enabled")
