"""Benchmark 4: one IPMI call, as the fence makes it, against a lab BMC and a standalone one.

The fence reads the power state, powers off and reads back: three calls through Lazarus's
`IpmiPower` (each a short-lived Python child running pyghmi). The same cycle runs, alternating,
against node-01's BMC inside a running lab (the BMC the stack fences) and against the lab's BMC
simulator run on its own (`python -m receiver.lab.bmc`). ipmitool against the standalone BMC,
when installed, shows what the Python child costs. A call slower than SLOW_S has almost surely
waited for pyghmi's retransmit timer (0.5-1.0 s): a request or an answer went missing.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stats import latency_summary, ratio
from receiver.adapters.ipmi import IpmiPower
from receiver.domain.model import BmcTarget, Secret
from receiver.lab.testing import LabControl, running_lab, wait_until

SLOW_S = 0.4
USERNAME = "admin"
CALLS = ("read", "off", "read back")


@dataclass(frozen=True)
class IpmiParams:
    cycles: int = 20  # read + off + read back, per BMC
    lab_hosts: int = 4


def run(workdir: Path, params: IpmiParams) -> dict[str, Any]:
    power = IpmiPower(timeout_s=10)
    hosts = tuple(f"node-{i:02d}" for i in range(1, params.lab_hosts + 1))
    with ExitStack() as stack:
        lab = stack.enter_context(running_lab(workdir / "lab", hosts=hosts))
        bmc = lab.hosts["node-01"]
        if bmc is None:
            raise RuntimeError("the lab started node-01 without a BMC")
        in_lab = BmcTarget("node-01", bmc.address, bmc.port, USERNAME, Secret(lab.bmc_password()))
        standalone = stack.enter_context(_standalone_bmc(workdir / "standalone"))
        control = LabControl(lab)
        targets: dict[str, tuple[BmcTarget, Callable[[], None]]] = {
            "lab": (in_lab, lambda: control.power("node-01", on=True)),
            "standalone": (standalone, lambda: power.power_on(standalone)),
        }
        samples: dict[str, list[float]] = {name: [] for name in targets}
        by_call: dict[tuple[str, str], list[float]] = {}
        for _ in range(params.cycles):
            for name, (target, power_on) in targets.items():
                power_on()  # untimed: every cycle fences a host that is ON
                for call, seconds in zip(CALLS, _fence_cycle(power, target), strict=True):
                    samples[name].append(seconds)
                    by_call.setdefault((name, call), []).append(seconds)
        ipmitool = _ipmitool(standalone, params.cycles)
    result: dict[str, Any] = {
        "parameters": {
            "cycles": params.cycles,
            "calls_per_cycle": list(CALLS),
            "lab_hosts": params.lab_hosts,
            "slow_threshold_s": SLOW_S,
            "client": "receiver.adapters.ipmi.IpmiPower (a Python child per call, pyghmi)",
        },
        "bmcs": {},
    }
    for name, values in samples.items():
        slow = sorted(round(v, 3) for v in values if v > SLOW_S)
        result["bmcs"][name] = {
            **latency_summary(values),
            "slow_calls": len(slow),
            "slow_fraction": len(slow) / len(values),
            "slow_s": slow,
            "per_call_p50_ms": {call: latency_summary(by_call[(name, call)])["p50_ms"] for call in CALLS},
        }
    if ipmitool is not None:
        result["bmcs"]["standalone_ipmitool"] = ipmitool
        result["pyghmi_child_over_ipmitool_p50"] = ratio(
            result["bmcs"]["standalone"]["p50_ms"], ipmitool["p50_ms"]
        )
    result["lab_over_standalone_p99"] = ratio(
        result["bmcs"]["lab"]["p99_ms"], result["bmcs"]["standalone"]["p99_ms"]
    )
    return result


def _fence_cycle(power: IpmiPower, target: BmcTarget) -> list[float]:
    timings = []
    for call in (power.power_state, power.power_off, power.power_state):
        began = time.perf_counter()
        call(target)
        timings.append(time.perf_counter() - began)
    return timings


@contextmanager
def _standalone_bmc(workdir: Path) -> Iterator[BmcTarget]:
    """The lab's BMC simulator in its own process. IPMI 2.0 passwords are at most 20 bytes."""
    workdir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)  # 16 characters
    password_file = workdir / "password"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    ready = workdir / "ready"
    ready.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "receiver.lab.bmc",
        "--host",
        "node-01",
        "--port",
        "0",
        "--username",
        USERNAME,
        "--password-file",
        str(password_file),
        "--ready-file",
        str(ready),
    ]
    with (workdir / "bmc.log").open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # noqa: S603
    try:
        wait_until(lambda: ready.exists() or process.poll() is not None, timeout=60, what="standalone BMC")
        if process.poll() is not None:
            raise RuntimeError(f"standalone BMC exited {process.returncode}; see {workdir / 'bmc.log'}")
        yield BmcTarget("node-01", "127.0.0.1", int(ready.read_text()), USERNAME, Secret(password))
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ipmitool(target: BmcTarget, cycles: int) -> dict[str, Any] | None:
    """The same cycle with ipmitool (C, no Python start). None when ipmitool is not installed."""
    binary = shutil.which("ipmitool")
    if binary is None:
        return None
    # -E takes the password from IPMI_PASSWORD: not on the command line, where `ps` shows it.
    base = [
        binary,
        "-I",
        "lanplus",
        "-C",
        "3",
        "-H",
        target.address,
        "-p",
        str(target.port),
        "-U",
        target.username,
        "-E",
    ]
    env = {"IPMI_PASSWORD": target.password.reveal(), "PATH": "/usr/bin:/bin"}
    values = []
    for _ in range(cycles):
        subprocess.run([*base, "power", "on"], env=env, capture_output=True, check=True, timeout=30)  # noqa: S603
        for args in (["power", "status"], ["power", "off"], ["power", "status"]):
            began = time.perf_counter()
            subprocess.run([*base, *args], env=env, capture_output=True, check=True, timeout=30)  # noqa: S603
            values.append(time.perf_counter() - began)
    return {**latency_summary(values), "slow_calls": sum(v > SLOW_S for v in values)}
