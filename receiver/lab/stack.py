"""The whole Lazarus stack on one machine, as real processes: redis-server, the lab,
receivers (`lazarus serve`, gunicorn) and workers (`lazarus worker`).

Used by `make demo` and the end-to-end tests. Every process it starts, it stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from receiver.lab.manifest import LabManifest
from receiver.lab.redis_server import RedisServer, free_port
from receiver.lab.testing import LabControl, running_lab

READY_DEADLINE_S = 60.0


class StackError(RuntimeError):
    pass


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Stack:
    workdir: Path
    redis: RedisServer
    lab: LabManifest
    token: str = field(repr=False)
    env: dict[str, str] = field(repr=False)
    receivers: list[tuple[Proc, str]] = field(default_factory=list)  # (process, base URL)
    workers: list[Proc] = field(default_factory=list)

    @property
    def control(self) -> LabControl:
        return LabControl(self.lab)

    # -- processes ----------------------------------------------------------------------
    def start_receiver(self, workers: int = 2) -> str:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        n = len(self.receivers)
        proc = self._spawn(
            f"receiver-{n}", ["serve", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
        )
        self.receivers.append((proc, url))
        deadline = time.monotonic() + READY_DEADLINE_S
        while True:
            try:
                if self.http("GET", f"{url}/readyz")[0] == 200:
                    return url
            except OSError:
                pass
            if proc.process.poll() is not None or time.monotonic() > deadline:
                raise StackError(f"receiver did not become ready; see {proc.log}:\n{_tail(proc.log)}")
            time.sleep(0.1)

    def start_worker(self) -> Proc:
        proc = self._spawn(
            f"worker-{len(self.workers)}", ["worker", "--name", f"w{len(self.workers)}-{os.getpid()}"]
        )
        self.workers.append(proc)
        return proc

    def kill(self, proc: Proc, sig: int = signal.SIGKILL) -> None:
        """Kill a process and all its descendants, as a machine that dies would.

        RQ's work-horse puts itself in its own process group, so a signal to the worker's
        group alone would leave the horse running the job.
        """
        if proc.process.poll() is None:
            for pid in [proc.process.pid, *_descendants(proc.process.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            proc.process.wait(30)

    def _spawn(self, name: str, args: list[str]) -> Proc:
        log = self.workdir / f"{name}.log"
        handle = log.open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "receiver", *args],
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: kill() reaches the work-horse
        )
        handle.close()
        return Proc(name, process, log)

    # -- talking to it ------------------------------------------------------------------
    def http(self, method: str, url: str, body: Any = None, *, auth: bool = True) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (loopback)
        request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                payload = response.read()
                if "json" not in response.headers.get("Content-Type", ""):
                    return response.status, payload.decode(errors="replace")
                return response.status, json.loads(payload or b"null")
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                return error.code, json.loads(payload)
            except ValueError:
                return error.code, payload.decode(errors="replace")

    def post_alerts(self, body: dict[str, Any], receiver: int = 0) -> tuple[int, Any]:
        return self.http("POST", f"{self.receivers[receiver][1]}/v1/webhooks/alertmanager", body)

    def notification(self, uuid: str, receiver: int = 0) -> dict[str, Any]:
        status, body = self.http("GET", f"{self.receivers[receiver][1]}/v1/notifications/{uuid}")
        if status != 200:
            raise StackError(f"GET notification {uuid}: {status} {body}")
        result: dict[str, Any] = body["notification"]
        return result

    def wait_until_ended(self, uuid: str, timeout: float = 180.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            record = self.notification(uuid)
            if record["status"] in ("finished", "failed", "ignored"):
                return record
            if time.monotonic() > deadline:
                raise StackError(f"recovery {uuid} still {record['status']} after {timeout:.0f}s")
            time.sleep(0.2)

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """`lazarus ARGS` against this stack (its config and clouds.yaml), as an operator runs it."""
        return subprocess.run(
            [sys.executable, "-m", "receiver", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    def nova(self, path: str) -> Any:
        request = urllib.request.Request(self.lab.nova_endpoint + path)  # noqa: S310
        request.add_header("X-Auth-Token", self.lab.token)
        request.add_header("OpenStack-API-Version", "compute 2.94")
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read())

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.workdir.rglob("*.log"))


@contextmanager
def running_stack(
    workdir: Path,
    *,
    receivers: int = 1,
    workers: int = 1,
    lab_options: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> Iterator[Stack]:
    workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as cleanup:
        redis_server = RedisServer(workdir / "redis")
        redis_server.start()
        cleanup.callback(redis_server.stop)
        lab = cleanup.enter_context(running_lab(workdir / "lab", **(lab_options or {})))
        token = secrets.token_urlsafe(24)
        config = {
            "redis_url": redis_server.url,
            "log_json": False,
            "webhook": {"bearer_tokens": [token]},
            "nova": {"cloud": lab.cloud_name},
            "fencing": {"poll_interval_s": 0.25},
            "evacuation": {"poll_interval_s": 0.25},
            "worker": {"lease_ttl_s": 6, "reconcile_interval_s": 2},
            "verify": {"poll_interval_s": 0.25, "wait_s": 60},
            "process": {"poll_interval_s": 0.5, "recheck_window_s": 5, "recheck_interval_s": 1},
            "instance": {"poll_interval_s": 0.25, "confirm_s": 30, "timeout_s": 60},
            **(settings or {}),
        }
        config_path = workdir / "lazarus.yaml"
        config_path.write_text(yaml.safe_dump(config))
        config_path.chmod(0o600)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("LAZARUS_", "OS_"))},
            "LAZARUS_CONFIG": str(config_path),
            "OS_CLIENT_CONFIG_FILE": str(lab.clouds_yaml),
            "PYTHONUNBUFFERED": "1",
        }
        stack = Stack(workdir, redis_server, lab, token, env)
        cleanup.callback(_stop_all, stack)
        applied = stack.cli("inventory", "apply", str(lab.inventory))
        if applied.returncode != 0:
            raise StackError(f"inventory apply failed: {applied.stderr}")
        for _ in range(receivers):
            stack.start_receiver()
        for _ in range(workers):
            stack.start_worker()
        yield stack


def _stop_all(stack: Stack) -> None:
    for proc in [*stack.workers, *(p for p, _ in stack.receivers)]:
        if proc.process.poll() is None:
            os.killpg(proc.process.pid, signal.SIGTERM)
    for proc in [*stack.workers, *(p for p, _ in stack.receivers)]:
        try:
            proc.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.process.pid, signal.SIGKILL)
            proc.process.wait()


def _descendants(pid: int) -> list[int]:
    """Child processes, recursively, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
