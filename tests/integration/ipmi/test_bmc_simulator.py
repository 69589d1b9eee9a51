"""The lab's BMC simulator seen by independent parties: ipmitool, its standalone mode with
hook commands, and a fleet stopped and started again in one process."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ipmi_helpers import START_DEADLINE_S, USERNAME, stop_process, subprocess_env, wait_until

from receiver.adapters.ipmi import IpmiPower
from receiver.domain.model import BmcTarget, PowerState, Secret

pytestmark = pytest.mark.integration

PASSWORD = "Lz-standalone-pw"


@dataclass
class Standalone:
    port: int
    workdir: Path
    log_file: Path

    def target(self) -> BmcTarget:
        return BmcTarget("node-01", "127.0.0.1", self.port, USERNAME, Secret(PASSWORD))


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[Standalone]:
    """`python -m receiver.lab.bmc` with hooks that leave a mark file per transition."""
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")
    ready_file = tmp_path / "ready"
    log_file = tmp_path / "bmc.log"
    touch = shutil.which("touch") or "/usr/bin/touch"
    command = [
        sys.executable, "-m", "receiver.lab.bmc", "--host", "node-01", "--port", "0",
        "--username", USERNAME, "--password-file", str(password_file),
        "--on-power-off", f"{touch} {tmp_path / 'powered-off'}",
        "--on-power-on", f"{touch} {tmp_path / 'powered-on'}",
        "--ready-file", str(ready_file),
    ]  # fmt: skip
    with log_file.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=log, env=subprocess_env())
    try:
        wait_until(lambda: ready_file.exists() or proc.poll() is not None, START_DEADLINE_S, "ready file")
        assert proc.poll() is None, log_file.read_text(encoding="utf-8")
        yield Standalone(int(ready_file.read_text(encoding="utf-8")), tmp_path, log_file)
    finally:
        stop_process(proc)
    assert proc.returncode == 0, log_file.read_text(encoding="utf-8")
    assert PASSWORD not in log_file.read_text(encoding="utf-8")


def test_standalone_bmc_runs_hooks_and_reports_power(standalone: Standalone) -> None:
    power = IpmiPower(timeout_s=20)
    target = standalone.target()
    assert power.power_state(target) is PowerState.ON  # starts ON

    power.power_off(target)

    assert power.power_state(target) is PowerState.OFF
    assert (standalone.workdir / "powered-off").exists()
    assert not (standalone.workdir / "powered-on").exists()
    power.power_on(target)
    assert power.power_state(target) is PowerState.ON
    assert (standalone.workdir / "powered-on").exists()


@pytest.mark.skipif(shutil.which("ipmitool") is None, reason="ipmitool is not installed")
@pytest.mark.parametrize("cipher_args", [["-C", "3"], []], ids=["suite-3", "suite-negotiated"])
def test_ipmitool_drives_the_simulator(standalone: Standalone, cipher_args: list[str]) -> None:
    """An independent client. Without -C, ipmitool proposes suite 17 first and must be
    told 0x11 ("no matching cipher suite") to fall back to suite 3."""

    def ipmitool(*args: str) -> str:
        result = subprocess.run(
            ["ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", str(standalone.port),
             "-U", USERNAME, "-P", PASSWORD, *cipher_args, *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert ipmitool("power", "status") == "Chassis Power is on"
    ipmitool("power", "off")
    assert ipmitool("power", "status") == "Chassis Power is off"
    assert (standalone.workdir / "powered-off").exists()
    ipmitool("power", "on")
    assert ipmitool("power", "status") == "Chassis Power is on"


def test_fleet_releases_its_ports_and_can_serve_again_in_one_process(tmp_path: Path) -> None:
    """stop() must release every UDP port without breaking pyghmi's shared I/O thread, so
    a new fleet in the same process can bind the same ports and serve them."""
    script = textwrap.dedent(
        """
        import subprocess, sys
        from receiver.lab.bmc import BmcFleet

        class Power:
            def __init__(self): self.on = {}
            def is_on(self, host): return self.on.get(host, True)
            def set_power(self, host, on): self.on[host] = on

        def status(port):
            out = subprocess.run(
                ["ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", str(port), "-U", "admin",
                 "-P", "pw", "-C", "3", "power", "status"],
                capture_output=True, text=True, timeout=60,
            )
            return out.stdout.strip()

        first = BmcFleet(Power(), "admin", "pw")
        ports = [first.add("a"), first.add("b")]
        first.start()
        before = [status(p) for p in ports]
        first.stop()
        second = BmcFleet(Power(), "admin", "pw")
        again = [second.add("a", ports[0]), second.add("b", ports[1])]
        second.start()
        after = [status(p) for p in again]
        second.stop()
        print(before == after == ["Chassis Power is on"] * 2 and again == ports)
        """
    )
    if shutil.which("ipmitool") is None:
        pytest.skip("ipmitool is not installed")
    result = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True", result.stderr
