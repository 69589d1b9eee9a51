"""Fence escalation: a dead IPMI BMC, then Redfish (sushy-emulator) proves the host off."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from receiver.bootstrap import utc_now
from receiver.domain.record import Status
from receiver.inventory import parse_inventory
from tests.integration.core.lab_fixtures import LabRig, lab_rig, lab_settings
from tests.integration.redfish.emulator import running_emulator

pytestmark = pytest.mark.integration
__all__ = ["lab_rig", "lab_settings"]
SLOW_BMC = {"fencing": {"power_off_attempts": 1, "bmc_timeout_s": 2, "power_off_timeout_s": 40}}


@pytest.mark.parametrize("lab_settings", [SLOW_BMC], indirect=True)
def test_a_mute_ipmi_bmc_escalates_to_redfish(
    lab_rig: LabRig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with running_emulator(tmp_path / "redfish", {"node-01": "On"}) as emulator:
        monkeypatch.setenv("LAZARUS_TEST_REDFISH_PASSWORD", emulator.password)
        inventory = lab_rig.services.inventory.load().model_dump(mode="json")
        for host in inventory["segments"][0]["hosts"]:
            if host["name"] == "node-01":
                host["fence_fallbacks"] = [{
                    "driver": "redfish", "address": emulator.origin + emulator.system_path("node-01"),
                    "username": "admin", "password": {"env": "LAZARUS_TEST_REDFISH_PASSWORD"},
                }]  # fmt: skip
        lab_rig.services.inventory.apply(parse_inventory(inventory), utc_now())
        lab_rig.control.hang("node-01")
        lab_rig.control.bmc_fault("node-01", "mute")
        record = lab_rig.run(lab_rig.alert("node-01"))
        assert record.status is Status.FINISHED, record.message
        ipmi, redfish = record.fencing
        assert (ipmi.method, ipmi.outcome) == ("ipmi", "bmc_unreachable")
        assert (redfish.method, redfish.outcome, redfish.power_after) == ("redfish", "off_confirmed", "off")
        assert any(s.state == "escalating" for s in record.steps)
        assert emulator.reset_requests("node-01") == 1
        assert emulator.password not in caplog.text
        assert emulator.password not in str(record.to_dict())
