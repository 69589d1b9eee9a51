"""Fixtures for the IPMI tests: BMC simulators in their own processes, and a leak check.

The simulators run in subprocesses: pyghmi's client and server share process-global
session state, and the client under test must never see the server's.
"""

from __future__ import annotations

import json
import logging
import secrets
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The test modules import their shared helpers by name from this directory.
sys.path.insert(0, str(Path(__file__).parent))

from ipmi_helpers import (
    FLEET_HOSTS,
    FLEET_PROCESS,
    START_DEADLINE_S,
    USERNAME,
    WRONG_PASSWORD,
    Fleet,
    stop_process,
    subprocess_env,
)


@pytest.fixture(scope="session")
def ipmi_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    workdir = tmp_path_factory.mktemp("bmc-fleet")
    password = "Lz-bmc-" + secrets.token_hex(8)
    password_file = workdir / "password"
    password_file.write_text(password, encoding="utf-8")
    log_file = workdir / "fleet.log"
    hosts = [f"{host}={fault}" for host, fault in FLEET_HOSTS.items()]
    with log_file.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(FLEET_PROCESS),
                "--username",
                USERNAME,
                "--password-file",
                str(password_file),
                *hosts,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=subprocess_env(),
        )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], START_DEADLINE_S)
        line = proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"BMC fleet did not start; its log: {log_file.read_text(encoding='utf-8')}")
        yield Fleet(
            password=password, ports=json.loads(line), log_file=log_file, secrets={password, WRONG_PASSWORD}
        )
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # the fleet stops when its stdin closes
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stop_process(proc)


@pytest.fixture
def leak_check(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Iterator[set[str]]:
    """Yield a set to add secrets to; after the test, none may appear in any log record
    (at DEBUG, pyghmi's loggers included) or in anything written to stdout/stderr."""
    caplog.set_level(logging.DEBUG)
    for name in ("pyghmi", "receiver"):
        caplog.set_level(logging.DEBUG, logger=name)
    watched: set[str] = set()
    yield watched
    out, err = capfd.readouterr()
    for secret in watched:
        for record in caplog.records:
            text = record.getMessage() + repr(record.args) + (record.exc_text or "")
            assert secret not in text, f"secret in log record from {record.name}"
        assert secret not in caplog.text
        assert secret not in out
        assert secret not in err
