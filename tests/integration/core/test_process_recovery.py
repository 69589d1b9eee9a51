"""A dead nova-compute on a live host, against the lab: disable, wait for Nova, re-enable. Never fence."""

from __future__ import annotations

import time

import pytest

from receiver.domain.record import Phase, Status
from tests.integration.core.lab_fixtures import LabRig, lab_rig, lab_settings

pytestmark = pytest.mark.integration
__all__ = ["lab_rig", "lab_settings"]
FAST = {"process": {"poll_interval_s": 0.2, "recheck_window_s": 2, "recheck_interval_s": 0.5}}


def wait_for(condition: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


@pytest.mark.parametrize("lab_settings", [FAST], indirect=True)
def test_process_down_disabled_then_back_reenabled(lab_rig: LabRig) -> None:
    bmc_before = lab_rig.bmc_requests()
    lab_rig.control.compute("node-01", running=False)
    uuid = lab_rig.process_alert("node-01")
    record = lab_rig.run(uuid)
    # Nova still sees it down: the record stays open, the service disabled with our reason
    assert record.status is Status.RUNNING
    assert record.reached(Phase.SERVICE_DISABLED) and record.wake_at is not None
    service = lab_rig.service("node-01")
    assert (service["status"], service["forced_down"]) == ("disabled", False)
    assert uuid in service["disabled_reason"]
    assert lab_rig.nova("/servers/detail?all_tenants=1&host=node-01")["servers"], "instances untouched"
    # a resolved alert proves nothing; a rerun while the service is still down changes nothing
    assert lab_rig.run(uuid).status is Status.RUNNING
    lab_rig.control.compute("node-01", running=True)
    wait_for(lambda: lab_rig.service("node-01")["state"] == "up")
    record = lab_rig.run(uuid)
    assert (record.status, record.reason) == (Status.FINISHED, "completed")
    service = lab_rig.service("node-01")
    assert (service["status"], service["disabled_reason"]) == ("enabled", None)
    assert record.fencing == ()
    assert lab_rig.evacuations() == []
    assert lab_rig.power.calls == []  # zero BMC calls: a process failure never fences
    assert lab_rig.bmc_requests() == bmc_before  # not one IPMI message reached any BMC


@pytest.mark.parametrize("lab_settings", [FAST], indirect=True)
def test_process_down_on_a_host_an_operator_disabled_is_left_alone(lab_rig: LabRig) -> None:
    bmc_before = lab_rig.bmc_requests()
    service = lab_rig.service("node-02")
    lab_rig.services.compute().disable(
        lab_rig.services.compute().service("node-02"), "kernel upgrade (alice)"
    )
    lab_rig.control.compute("node-02", running=False)
    record = lab_rig.run(lab_rig.process_alert("node-02"))
    assert (record.status, record.reason) == (Status.IGNORED, "disabled_by_operator")
    lab_rig.control.compute("node-02", running=True)
    wait_for(lambda: lab_rig.service("node-02")["state"] == "up")
    after = lab_rig.service("node-02")
    assert (after["status"], after["disabled_reason"]) == ("disabled", "kernel upgrade (alice)")
    assert service["id"] == after["id"]
    assert lab_rig.power.calls == []
    assert lab_rig.bmc_requests() == bmc_before


@pytest.mark.parametrize("lab_settings", [FAST], indirect=True)
def test_operator_reenabling_meanwhile_closes_the_record_without_touching_nova(lab_rig: LabRig) -> None:
    bmc_before = lab_rig.bmc_requests()
    lab_rig.control.compute("node-01", running=False)
    uuid = lab_rig.process_alert("node-01")
    assert lab_rig.run(uuid).status is Status.RUNNING
    compute = lab_rig.services.compute()
    compute.enable(compute.service("node-01"))
    record = lab_rig.run(uuid)
    assert (record.status, record.reason) == (Status.FINISHED, "changed_by_operator")
    assert lab_rig.power.calls == []
    assert lab_rig.bmc_requests() == bmc_before


def test_process_alert_during_a_host_recovery_joins_it(lab_rig: LabRig) -> None:
    lab_rig.control.kill("node-01")
    host = lab_rig.alert("node-01")
    assert lab_rig.process_alert("node-01") == host
    assert lab_rig.run(host).status is Status.FINISHED


def test_other_processes_are_recorded_not_handled(lab_rig: LabRig) -> None:
    bmc_before = lab_rig.bmc_requests()
    record = lab_rig.run(lab_rig.process_alert("node-01", process="libvirtd"))
    assert (record.status, record.reason) == (Status.IGNORED, "process_not_handled")
    assert lab_rig.service("node-01")["status"] == "enabled"
    assert (lab_rig.power.calls, lab_rig.bmc_requests()) == ([], bmc_before)


def test_the_optional_restart_action_brings_the_process_back(lab_rig: LabRig) -> None:
    import sys

    # The operator's restart command; here the lab's own CLI stands in for `ssh HOST systemctl restart ...`.
    command = [
        sys.executable,
        "-m",
        "receiver.lab",
        "compute",
        "{host}",
        "start",
        "--workdir",
        str(lab_rig.lab.workdir),
    ]
    process = {**FAST["process"], "restart_command": command, "recheck_window_s": 20}
    settings = lab_rig.services.settings
    lab_rig.services.settings = settings.model_copy(
        update={"process": settings.process.model_copy(update=process)}
    )
    lab_rig.control.compute("node-01", running=False)
    record = lab_rig.run(lab_rig.process_alert("node-01"))
    assert (record.status, record.reason) == (Status.FINISHED, "completed"), record.message
    restart = [s for s in record.steps if s.name == "restart"]
    assert restart and restart[0].state == "succeeded" and "exited 0" in restart[0].message
    assert lab_rig.service("node-01")["status"] == "enabled"
    assert lab_rig.power.calls == []
