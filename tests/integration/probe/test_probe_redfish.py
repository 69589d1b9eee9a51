"""The BMC probe through `RedfishPower`, against sushy-tools' emulator: reads, and nothing else."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from receiver.adapters.redfish import RedfishPower
from receiver.domain.model import BmcTarget, PowerState, Secret
from receiver.probe import ProbeFailure, probe
from tests.integration.redfish.emulator import Emulator, running_emulator

pytestmark = pytest.mark.integration

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def now() -> datetime:
    return AT


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    workdir: Path = tmp_path_factory.mktemp("probe-redfish")
    with running_emulator(workdir, {"rf-on": "On", "rf-off": "Off"}) as running:
        yield running


def test_probes_read_the_power_and_send_no_reset(emulator: Emulator) -> None:
    power = RedfishPower(timeout_s=20)

    on = probe(emulator.target("rf-on"), power, now)
    off = probe(emulator.target("rf-off"), power, now)

    assert (on.up, on.power_state, on.driver) == (True, PowerState.ON, "redfish")
    assert (off.up, off.power_state) == (True, PowerState.OFF)
    assert on.bmc == f"{emulator.origin}{emulator.system_path('rf-on')}"
    assert emulator.reset_requests("rf-on") == emulator.reset_requests("rf-off") == 0


def test_wrong_password_means_credentials_not_ok(emulator: Emulator) -> None:
    wrong = "Wr0ng-" + secrets.token_hex(6)
    result = probe(emulator.target("rf-on", password=wrong), RedfishPower(timeout_s=20), now)

    assert (result.reachable, result.credentials_ok) == (True, False)
    assert result.error_reason is ProbeFailure.BMC_REFUSED and "HTTP 401" in result.message
    assert wrong not in result.to_json() and emulator.password not in result.to_json()


def test_a_silent_redfish_service_is_unreachable() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        target = BmcTarget("rf-silent", f"https://127.0.0.1:{port}", 623, "admin", Secret("pw"), "redfish")
        result = probe(target, RedfishPower(timeout_s=2), now)

    assert (result.reachable, result.credentials_ok, result.power_state) == (False, None, PowerState.UNKNOWN)
    assert result.error_reason is ProbeFailure.BMC_UNREACHABLE
