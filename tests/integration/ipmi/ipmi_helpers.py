"""Helpers shared by the IPMI integration tests (imported by name: no conftest imports)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from receiver.domain.model import BmcTarget, Secret

REPO = Path(__file__).resolve().parents[3]
FLEET_PROCESS = Path(__file__).with_name("fleet_process.py")
USERNAME = "admin"
WRONG_PASSWORD = "Wr0ng-" + secrets.token_hex(6)
START_DEADLINE_S = 60.0

# Hosts of the shared fleet, by fault. Each test uses its own hosts, so no test depends
# on the power state another left behind.
FLEET_HOSTS = {
    **{f"ok-{n:02d}": "none" for n in range(1, 13)},
    "refuse-01": "refuse",
    "mute-01": "mute",
    "mute-02": "mute",
    "stuck-01": "stuck_on",
}


def subprocess_env() -> dict[str, str]:
    """The environment for our own Python subprocesses: the repository is importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop_process(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@dataclass
class Fleet:
    """A running fleet of simulated BMCs and how to reach each."""

    password: str
    ports: dict[str, int]
    log_file: Path
    secrets: set[str] = field(default_factory=set)

    def target(self, host: str, *, password: str | None = None, username: str = USERNAME) -> BmcTarget:
        return BmcTarget(
            host=host,
            address="127.0.0.1",
            port=self.ports[host],
            username=username,
            password=Secret(self.password if password is None else password),
        )


def wait_until(predicate: Callable[[], bool], deadline_s: float, what: str) -> None:
    """Poll `predicate()` until true, failing after `deadline_s` (no fixed sleeps)."""
    deadline = time.monotonic() + deadline_s
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(0.05)
