"""`IpmiPower` against Debian's independent BMC implementation, OpenIPMI's `ipmi_sim`.

ipmi_sim does chassis power through a `chassis_control` program named in its lan.conf:
it runs `PROGRAM get power` (which prints `power:0|1`) and `PROGRAM set power 0|1`.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ipmi_helpers import START_DEADLINE_S, free_udp_port, stop_process

from receiver.adapters.ipmi import IpmiPower
from receiver.domain.model import BmcTarget, PowerState, Secret
from receiver.errors import BmcRefused, BmcUnreachable, LazarusError

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("ipmi_sim") is None, reason="ipmi_sim (Debian package openipmi) is absent"
    ),
]

PASSWORD = "Lz-ipmisim-pw"

CHASSIS_PROGRAM = """#!/bin/sh
# ipmi_sim chassis_control: "get power" prints power:0|1; "set power 0|1" stores it.
state="{state}"
case "$1" in
  get) [ -f "$state" ] || echo 1 > "$state"; echo "power:$(cat "$state")" ;;
  set) echo "$3" > "$state" ;;
esac
"""

LAN_CONF = """name "lazarus-test"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 {port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "{program}"
  user 2 true "admin" "{password}" admin 10 none md2 md5 straight
"""

EMU_COMMANDS = """mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
"""


@pytest.fixture
def ipmi_sim(tmp_path: Path) -> Iterator[BmcTarget]:
    program = tmp_path / "chassis.sh"
    program.write_text(CHASSIS_PROGRAM.format(state=tmp_path / "power"), encoding="utf-8")
    program.chmod(0o755)
    port = free_udp_port()
    (tmp_path / "lan.conf").write_text(
        LAN_CONF.format(port=port, program=program, password=PASSWORD), encoding="utf-8"
    )
    (tmp_path / "cmds.emu").write_text(EMU_COMMANDS, encoding="utf-8")
    (tmp_path / "state").mkdir()
    log_file = tmp_path / "ipmi_sim.log"
    with log_file.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            ["ipmi_sim", "-c", "lan.conf", "-f", "cmds.emu", "-s", "state", "-n"],
            cwd=tmp_path, stdout=log, stderr=log,
        )  # fmt: skip
    target = BmcTarget("sim-01", "127.0.0.1", port, "admin", Secret(PASSWORD))
    try:
        _wait_until_answering(target, proc, log_file)
        yield target
    finally:
        stop_process(proc)


def _wait_until_answering(target: BmcTarget, proc: subprocess.Popen[bytes], log_file: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    power = IpmiPower(timeout_s=5)
    while True:
        assert proc.poll() is None, f"ipmi_sim exited: {log_file.read_text(encoding='utf-8')}"
        try:
            power.power_state(target)
            return
        except BmcUnreachable:
            if time.monotonic() > deadline:
                raise


def test_fence_against_ipmi_sim(ipmi_sim: BmcTarget) -> None:
    power = IpmiPower(timeout_s=20)
    assert power.power_state(ipmi_sim) is PowerState.ON

    power.power_off(ipmi_sim)

    assert power.power_state(ipmi_sim) is PowerState.OFF
    power.power_on(ipmi_sim)
    assert power.power_state(ipmi_sim) is PowerState.ON
    # And twice: a second fence of the same BMC must not hang.
    power.power_off(ipmi_sim)
    assert power.power_state(ipmi_sim) is PowerState.OFF


def test_wrong_password_against_ipmi_sim_is_refused(ipmi_sim: BmcTarget) -> None:
    power = IpmiPower(timeout_s=20)
    wrong = BmcTarget(ipmi_sim.host, ipmi_sim.address, ipmi_sim.port, ipmi_sim.username, Secret("Wr0ng-pw-x"))
    with pytest.raises(BmcRefused) as caught:
        power.power_off(wrong)
    error: LazarusError = caught.value
    assert "sim-01" in error.message and "Wr0ng-pw-x" not in str(error) and PASSWORD not in str(error)
    assert power.power_state(ipmi_sim) is PowerState.ON
