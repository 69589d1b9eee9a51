"""Helpers for tests (and the demo) that need a lab: start one as a subprocess, and drive it.

    with running_lab(tmp_path, hosts=("node-01", "node-02"), evacuate_delay=0.2) as lab:
        conn = openstack.connect(**lab.openstack_auth())
        LabControl(lab).power(host="node-01", on=False)

The lab runs as `python -m receiver.lab serve` in its own process, so pyghmi's process-wide
state never mixes with the test process's own IPMI client.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from receiver.lab.manifest import MANIFEST, LabManifest

T = TypeVar("T")
START_DEADLINE_S = 120.0  # generous: a loaded 2-core machine building 20,000 servers
STOP_DEADLINE_S = 20.0


class LabError(RuntimeError):
    """The lab did not start, or its control API refused a request (status and message)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def serve_arguments(workdir: Path, options: dict[str, Any]) -> list[str]:
    """`lazarus lab serve` arguments for keyword options named as in LabOptions."""
    arguments = ["serve", "--workdir", str(workdir)]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is None:
            continue
        if isinstance(value, bool):
            arguments.append(flag if value else "--no-" + name.replace("_", "-"))
        elif isinstance(value, dict):  # host_capacity {"spare-01": {"memory_mb": 8704}}
            entries = [
                ":".join([host, *(f"{k}={v}" for k, v in sizes.items())]) for host, sizes in value.items()
            ]
            arguments += [flag, ",".join(entries)]
        elif isinstance(value, list | tuple):
            arguments += [flag, ",".join(value)]
        else:
            arguments += [flag, str(value)]
    return arguments


@contextmanager
def running_lab(workdir: Path, **options: Any) -> Iterator[LabManifest]:
    """Start a lab in a subprocess and yield its manifest once everything listens.

    Options are LabOptions' fields (hosts, host_count, servers_per_host, service_down_time,
    report_interval, evacuate_delay, action_delay, token, bmc, bmc_hosts, host_vcpus,
    host_memory_mb, host_disk_gb, spares, recovery_method, shared_storage, ...); host_capacity
    may also be a dict, e.g. {"spare-01": {"memory_mb": 8704}}. The lab's output goes to
    WORKDIR/lab.log, which the error shows if the lab dies before it is ready.
    """
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MANIFEST).unlink(missing_ok=True)
    log_path = workdir / "lab.log"
    environment = dict(os.environ)
    token = options.pop("token", None)
    if token is not None:
        environment["LAZARUS_LAB_TOKEN"] = token  # not on the command line, where `ps` shows it
    command = [sys.executable, "-m", "receiver.lab", *serve_arguments(workdir, options)]
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=environment
        )
    try:
        manifest = _wait_for_manifest(workdir, process, log_path)
        yield manifest
    finally:
        _terminate(process)


def _wait_for_manifest(workdir: Path, process: subprocess.Popen[bytes], log_path: Path) -> LabManifest:
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if (workdir / MANIFEST).exists():
            manifest = LabManifest.load(workdir)
            if manifest.pid == process.pid:
                return manifest
        if process.poll() is not None:
            raise LabError(f"lab exited with {process.returncode} before it was ready:\n{_tail(log_path)}")
        time.sleep(0.05)
    raise LabError(f"lab not ready within {START_DEADLINE_S:.0f} s:\n{_tail(log_path)}")


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float = 60.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `condition` until it returns something truthy (returned), or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f} s")
        time.sleep(interval)


class LabControl:
    """A small client of the lab's control API (stdlib urllib; no extra dependency)."""

    def __init__(self, manifest: LabManifest, timeout: float = 30.0) -> None:
        self._url = manifest.control_url
        self._token = manifest.token
        self._timeout = timeout

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/status")

    def power(self, host: str, on: bool) -> None:
        self._call("POST", f"/hosts/{host}/power", {"on": on})

    def kill(self, host: str) -> None:
        """Power the host off: its BMC says OFF and its compute service stops heartbeating."""
        self.power(host, on=False)

    def hang(self, host: str, hung: bool = True) -> dict[str, Any]:
        """Freeze a powered-on host: its compute service stops heartbeating (down after
        service_down_time), its servers stop answering, but its BMC still reports ON until
        someone powers it off. hung=False lets it carry on (no restart: no init_host)."""
        return self._call("POST", f"/hosts/{host}/hang", {"hung": hung})

    def compute(self, host: str, running: bool) -> dict[str, Any]:
        """Kill (running=False) or start nova-compute on a powered-on host. While it is dead
        the service stops heartbeating but the BMC says ON and the servers keep running."""
        return self._call("POST", f"/hosts/{host}/compute", {"running": running})

    def add_server(
        self,
        name: str,
        host: str,
        *,
        flavor: str | None = None,
        stopped: bool = False,
        metadata: dict[str, str] | None = None,
        boot_from_volume: bool = False,
        volumes: int = 0,
        project_id: str = "demo",
    ) -> str:
        """A server already running (or SHUTOFF) on `host`, placed without the scheduler.
        `flavor` is a flavor id or name (topology.FLAVORS). Booted from a volume, Nova shows
        `"image": ""` and lists the root volume first among `volumes_attached`; `volumes` more
        data volumes are attached."""
        body: dict[str, Any] = {
            "name": name,
            "host": host,
            "stopped": stopped,
            "metadata": metadata or {},
            "boot_from_volume": boot_from_volume,
            "volumes": volumes,
            "project_id": project_id,
        }
        if flavor is not None:
            body["flavor"] = flavor
        server_id: str = self._call("POST", "/servers", body)["server"]["id"]
        return server_id

    def server(self, server_id: str) -> dict[str, Any]:
        """Nova's record of the server (vm_state, task_state, power_state) beside the
        hypervisor's view (hypervisor_power_state), which Nova's API does not show."""
        return self._call("GET", f"/servers/{server_id}")

    def crash(self, server_id: str, power_state: int = 4, sync_after: float | None = None) -> dict[str, Any]:
        """The guest stops on its own: the hypervisor says 4 SHUTDOWN (or 6 CRASHED) while
        Nova's record stays active and RUNNING. With sync_after, Nova's power-state sync runs
        that many seconds later: it records the power state and stops the instance
        (powering-off, then stopped), as Nova does for a guest found stopped."""
        return self._call(
            "POST", f"/servers/{server_id}/crash", {"power_state": power_state, "sync_after": sync_after}
        )

    def bmc_requests(self) -> dict[str, dict[str, int]]:
        """Per host, what its simulated BMC received: "requests" (every RMCP/IPMI message),
        "power_reads" and "power_changes"."""
        counts: dict[str, dict[str, int]] = self.status()["bmc_requests"]
        return counts

    def fail_evacuation(
        self, server_id: str | None = None, fail: bool = True, *, target: str | None = None
    ) -> None:
        """Evacuations of `server_id` (anywhere), of any server onto `target`, or of `server_id`
        onto `target` fail as a failed rebuild on the destination does in Nova 34: the server
        goes to ERROR (task_state None) on the host it was on, its migration is `failed`, the
        destination's allocation is dropped. Evacuating it again (from ERROR) is allowed, to
        another host too, but it then comes up ACTIVE even if it was SHUTOFF before."""
        body: dict[str, Any] = {"fail": fail}
        if server_id is not None:
            body["server_id"] = server_id
        if target is not None:
            body["target"] = target
        self._call("POST", "/faults/evacuate", body)

    def api_delay(self, delay_ms: int) -> None:
        self._call("POST", "/faults/api-delay", {"delay_ms": delay_ms})

    def forbid(self, path: str, forbid: bool = True) -> None:
        """Nova's policy refuses every compute API request under `path` (say `/os-hypervisors`)
        with 403, as it does for a role the deployment's policy.yaml does not allow."""
        self._call("POST", "/faults/forbid", {"path": path, "forbid": forbid})

    def bmc_fault(self, host: str, fault: str) -> None:
        """fault: none | mute | refuse | stuck_on."""
        self._call("POST", "/faults/bmc", {"host": host, "fault": fault})

    def clear_faults(self) -> None:
        self._call("POST", "/faults/clear", {})

    def settings(self, **values: float) -> dict[str, Any]:
        """Change evacuate_delay, action_delay or service_down_time of the running lab."""
        return self._call("POST", "/settings", values)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._url + path, data=data, method=method)  # noqa: S310 (http on 127.0.0.1)
        request.add_header("X-Auth-Token", self._token)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                result: dict[str, Any] = json.loads(response.read() or b"{}")
                return result
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            with suppress(ValueError, KeyError, TypeError):
                detail = json.loads(detail)["error"]["message"]
            raise LabError(f"lab control {method} {path}: {error.code} {detail}", status=error.code) from None


def lab_environment(manifest: LabManifest) -> dict[str, str]:
    """Environment variables that point openstacksdk at the lab (OS_CLIENT_CONFIG_FILE, OS_CLOUD)."""
    return {
        **os.environ,
        "OS_CLIENT_CONFIG_FILE": str(manifest.clouds_yaml),
        "OS_CLOUD": manifest.cloud_name,
    }
