"""What a host recovery leaves behind for the people who own the instances and the operator who
reads the record, on the lab (real HTTP and IPMI): the lock reason naming the record while an
instance moves (and no lock claimed that Nova refused), the diagnosis of a fencing gap and of
a Nova refusal (with Nova's request id), and `lazarus notifications show` printing the plan
against the outcome and the diagnosis.

The lab's demo layout: node-01 carries vm-01, vm-02 and vm-04 HA-enabled (vm-04 SHUTOFF) and
vm-03 without HA_Enabled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from receiver.cli import main
from receiver.domain.diagnosis import REQUEST_ID
from receiver.domain.record import MoveStatus, Notification, Status
from receiver.lab.testing import wait_until
from receiver.workflow.host_recovery import lock_reason
from tests.integration.core.lab_fixtures import LabRig, lab_rig, lab_settings

pytestmark = pytest.mark.integration
__all__ = ["lab_rig", "lab_settings"]

HA_ENABLED = ("node-01-vm-01", "node-01-vm-02", "node-01-vm-04")
JOIN_TIMEOUT_S = 180.0  # a whole recovery on a loaded machine; a hang fails, it never blocks the run


class InBackground:
    """A recovery run on a thread, so the test can watch Nova while it moves instances."""

    def __init__(self, work: Callable[[], Notification]) -> None:
        self._work = work
        self.result: Notification | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="recovery", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = self._work()
        except BaseException as exc:  # handed to the test thread by join()
            self.error = exc

    def join(self) -> Notification:
        self._thread.join(JOIN_TIMEOUT_S)
        assert not self._thread.is_alive(), f"the recovery did not end within {JOIN_TIMEOUT_S:.0f} s"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


@pytest.fixture
def show(lab_rig: LabRig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """`lazarus notifications show ID`, the real CLI, on the rig's Redis, key prefix and queue."""
    settings = lab_rig.services.settings
    config = tmp_path / "lazarus.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "redis_url": settings.redis_url.get_secret_value(),
                "key_prefix": settings.key_prefix,
                "queue_name": settings.queue_name,
                "nova": {"cloud": lab_rig.lab.cloud_name},
            }
        )
    )
    monkeypatch.setenv("LAZARUS_CONFIG", str(config))

    def run(uuid: str) -> str:
        result = CliRunner().invoke(main, ["notifications", "show", uuid])
        assert result.exit_code == 0, result.output
        return result.output

    return run


def ha_servers(rig: LabRig, host: str = "node-01") -> dict[str, str]:
    """Name -> id of the host's HA-enabled servers."""
    return {s["name"]: s["id"] for s in rig.servers_on(host) if s["name"] in HA_ENABLED}


def instance_rows(shown: list[str]) -> dict[str, tuple[str, str]]:
    """The `instances (planned -> outcome)` section of `show`: name -> (what the plan said,
    what happened and its detail), each checked to name the instance by name and uuid."""
    start = shown.index("  instances (planned -> outcome)") + 1
    rows = {}
    for line in shown[start:]:
        if not line.startswith("    "):
            break
        name, uuid, rest = line.split(maxsplit=2)
        assert len(uuid) == 36, line
        planned, outcome = rest.split(" -> ", 1)
        rows[name] = (planned.rstrip(), outcome)
    return rows


def nova_server(rig: LabRig, server_id: str) -> dict[str, Any]:
    server: dict[str, Any] = rig.nova(f"/servers/{server_id}")["server"]
    return server


def test_an_instance_is_locked_during_its_move_with_a_reason_naming_the_record(lab_rig: LabRig) -> None:
    servers = ha_servers(lab_rig)
    assert sorted(servers) == list(HA_ENABLED)
    lab_rig.control.settings(evacuate_delay=5.0)  # each rebuild takes seconds: time to look at Nova
    lab_rig.control.kill("node-01")
    uuid = lab_rig.alert("node-01")
    recovery = InBackground(lambda: lab_rig.run(uuid))
    try:

        def a_locked_server() -> dict[str, Any] | None:
            for server_id in servers.values():
                server = nova_server(lab_rig, server_id)
                if server["locked"]:
                    return server
            return None

        locked = wait_until(a_locked_server, timeout=90, interval=0.05, what="an instance locked by the move")
    finally:
        record = recovery.join()
    # The owner who finds the instance locked reads who holds it and why: this recovery.
    assert locked["locked_reason"] == lock_reason(uuid)
    assert uuid in locked["locked_reason"]
    assert (record.status, record.reason) == (Status.FINISHED, "completed"), record.message
    moved = {m.instance_name: m for m in record.vmoves if m.status is MoveStatus.SUCCEEDED}
    assert sorted(moved) == list(HA_ENABLED)
    for name, server_id in servers.items():
        after = nova_server(lab_rig, server_id)
        assert (after["locked"], after["locked_reason"]) == (False, None), name
        assert after["OS-EXT-SRV-ATTR:host"] == moved[name].dest_host != "node-01"
        assert not moved[name].locked_by_us
    unlocked = [s.message for s in record.steps if s.name == "lock" and s.state == "succeeded"]
    assert sorted(unlocked) == [f"{name} unlocked" for name in HA_ENABLED]


@pytest.mark.parametrize(("fault", "reason"), [("stuck_on", "power_still_on"), ("mute", "bmc_unreachable")])
def test_a_fencing_gap_is_the_diagnosis_and_show_prints_it(
    lab_rig: LabRig, show: Callable[[str], str], fault: str, reason: str
) -> None:
    lab_rig.control.hang("node-01")  # Nova sees it down, its BMC still answers ON (or not at all)
    lab_rig.control.bmc_fault("node-01", fault)
    uuid = lab_rig.alert("node-01")
    record = lab_rig.run(uuid)
    assert (record.status, record.reason) == (Status.FAILED, reason), record.message
    assert lab_rig.evacuations() == []
    assert record.diagnosis is not None
    [finding] = record.diagnosis["findings"]
    assert finding["cause"] == "fencing_gap"
    assert finding["message"].startswith(f"fencing gap: node-01 was never proven off ({reason}: ")
    assert finding["message"].endswith("nothing was evacuated")
    assert record.diagnosis["summary"] == f"node-01: 0 of 3 instances moved; {finding['message']}"

    shown = show(uuid).splitlines()
    assert f"  status    failed ({reason})" in shown
    assert "  diagnosis node-01: 0 of 3 instances moved" in shown
    assert f"    fencing_gap  {finding['message']}" in shown
    # The plan was made before the fence: each instance planned, none attempted.
    rows = instance_rows(shown)
    assert sorted(rows) == sorted([*HA_ENABLED, "node-01-vm-03"])
    for name in HA_ENABLED:
        planned, outcome = rows[name]
        assert planned == "scheduler (auto)"
        assert outcome == f"ignored (recovery_stopped)  not attempted: the recovery ended ({reason})"


@pytest.mark.parametrize(
    ("lab_options", "want_planned", "summary"),
    [
        ({}, "scheduler (auto)", "auto: 3 of 3 placed; 3 to the scheduler"),
        (
            {
                "hosts": ("node-01", "node-02", "node-03", "spare-01"),
                "spares": ("spare-01",),
                "recovery_method": "reserved_host",
            },
            "spare-01 (reserved_host)",
            "reserved_host: 3 of 3 placed; 3 to spare spare-01",
        ),
    ],
    indirect=["lab_options"],
    ids=["auto", "reserved_host"],
)
def test_show_prints_the_plan_and_each_instance_planned_against_its_outcome(
    lab_rig: LabRig, show: Callable[[str], str], want_planned: str, summary: str
) -> None:
    lab_rig.control.kill("node-01")
    uuid = lab_rig.alert("node-01")
    record = lab_rig.run(uuid)
    assert (record.status, record.reason) == (Status.FINISHED, "completed"), record.message

    shown = show(uuid).splitlines()
    assert f"  plan      {summary}" in shown
    assert "  instances (planned -> outcome)" in shown
    assert ("    spares used  spare-01" in shown) is want_planned.startswith("spare-01")
    rows = instance_rows(shown)
    assert sorted(rows) == sorted(m.instance_name for m in record.vmoves)
    for move in record.vmoves:
        planned, outcome = rows[move.instance_name]
        if move.instance_name in HA_ENABLED:
            assert planned == want_planned
            assert outcome.startswith(f"succeeded on {move.dest_host}, 1 attempt, "), outcome
            # Nova's state on arrival: SHUTOFF stayed SHUTOFF (vm-04), ACTIVE stayed ACTIVE
            assert outcome.endswith(f"  {move.prior_status} on {move.dest_host}"), outcome
        else:  # vm-03, not HA-enabled: left out by the selection, and so never attempted
            assert planned == "left out: not_ha_enabled"
            assert outcome.startswith("not attempted  not attempted: node-01-vm-03 ("), outcome
    assert "  diagnosis node-01: all 3 instances moved" in shown


@pytest.mark.parametrize("lab_settings", [{"evacuation": {"lock_instances": False}}], indirect=True)
def test_novas_refusal_carries_its_request_id_into_the_diagnosis(
    lab_rig: LabRig, show: Callable[[str], str]
) -> None:
    """Nova's policy refuses our account the evacuation of one instance (as a policy.yaml that
    does not grant it would): the diagnosis quotes Nova's answer with its request id, the
    handle to find the refusal in Nova's logs."""
    victim = ha_servers(lab_rig)["node-01-vm-01"]
    lab_rig.control.forbid(f"/servers/{victim}/action")
    lab_rig.control.kill("node-01")
    uuid = lab_rig.alert("node-01")
    record = lab_rig.run(uuid)
    assert (record.status, record.reason) == (Status.FAILED, "evacuation_failed"), record.message
    [failed] = [m for m in record.vmoves if m.status is MoveStatus.FAILED]
    assert failed.instance_uuid == victim
    assert "HTTP 403 (request req-" in failed.message and "Policy doesn't allow" in failed.message
    assert victim not in {e["instance_uuid"] for e in lab_rig.evacuations()}  # refused, never accepted
    moved = sorted(m.instance_name for m in record.vmoves if m.status is MoveStatus.SUCCEEDED)
    assert moved == ["node-01-vm-02", "node-01-vm-04"]

    assert record.diagnosis is not None
    [finding] = record.diagnosis["findings"]
    assert (finding["cause"], finding["instances"]) == ("nova_error", [victim])
    [request_id] = finding["request_ids"]
    assert REQUEST_ID.fullmatch(request_id), request_id  # Nova's x-openstack-request-id, read off the answer
    assert request_id in finding["message"] and request_id in failed.message
    assert request_id in record.diagnosis["summary"]  # the notifiers' one-liner carries it too

    shown = show(uuid).splitlines()
    [line] = [row for row in shown if row.startswith("    nova_error ")]
    assert request_id in line and "node-01-vm-01" in line


def test_a_lock_nova_refuses_is_neither_claimed_nor_released(
    lab_rig: LabRig, show: Callable[[str], str]
) -> None:
    """Nova's policy refuses every action on one instance, its lock included: the record must
    not say Lazarus holds a lock Nova never granted, nor send the operator to unlock it by hand."""
    victim = ha_servers(lab_rig)["node-01-vm-01"]
    lab_rig.control.forbid(f"/servers/{victim}/action")
    lab_rig.control.kill("node-01")
    uuid = lab_rig.alert("node-01")
    record = lab_rig.run(uuid)
    assert (record.status, record.reason) == (Status.FAILED, "evacuation_failed"), record.message
    [failed] = [m for m in record.vmoves if m.status is MoveStatus.FAILED]
    assert (failed.instance_uuid, failed.locked_by_us) == (victim, False)
    assert nova_server(lab_rig, victim)["locked"] is False
    lock_steps = [s.message for s in record.steps if s.name == "lock"]
    refused = [m for m in lock_steps if m.startswith("could not lock node-01-vm-01: ")]
    assert refused and all("HTTP 403 (request req-" in m for m in refused)
    assert not [m for m in lock_steps if "could not unlock" in m or "unlock it by hand" in m], lock_steps
    assert sorted(m for m in lock_steps if m.endswith(" unlocked")) == [
        "node-01-vm-02 unlocked",
        "node-01-vm-04 unlocked",
    ]
    [row] = [line for line in show(uuid).splitlines() if line.startswith(f"    node-01-vm-01 {victim}")]
    assert "still locked by Lazarus" not in row
