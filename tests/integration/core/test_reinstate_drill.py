"""Return to service and fence drills, against the lab (real IPMI and Nova HTTP)."""

from __future__ import annotations

import pytest

from receiver.bootstrap import utc_now
from receiver.domain.record import Status
from receiver.lab.testing import wait_until
from receiver.workflow.drill import DrillRefused, DrillStore, drill
from receiver.workflow.reinstate import ReinstateDeps, ReinstatePolicy, ReinstateRefused, reinstate
from tests.integration.core.lab_fixtures import LabRig, lab_rig, lab_settings

pytestmark = pytest.mark.integration
__all__ = ["lab_rig", "lab_settings"]


class Events:
    def __init__(self) -> None:
        self.kinds: list[str] = []

    def publish(self, kind: object, record: object) -> None:
        self.kinds.append(str(kind))


def deps(rig: LabRig, events: Events | None = None, **policy: float) -> ReinstateDeps:
    services = rig.services
    return ReinstateDeps(
        store=services.store,
        inventory=services.inventory,
        compute=services.compute,
        power=services.power,
        events=events or Events(),
        clock=services.clock,
        policy=ReinstatePolicy(
            **{"poll_interval_s": 0.2, "cleanup_timeout_s": 30, "power_on_timeout_s": 20, **policy}
        ),
    )


def recover(rig: LabRig, host: str = "node-01", starts_at: str = "2026-11-25T12:00:00Z") -> str:
    rig.control.kill(host)
    uuid = rig.alert(host, starts_at=starts_at)
    assert rig.run(uuid).status is Status.FINISHED
    return uuid


def test_reinstate_brings_a_fenced_host_back_only_through_its_gates(lab_rig: LabRig) -> None:
    events = Events()
    uuid = recover(lab_rig)
    before = lab_rig.service("node-01")
    assert (before["forced_down"], before["status"]) == (True, "disabled")
    record = reinstate(deps(lab_rig, events), "node-01", "alice")
    after = lab_rig.service("node-01")
    assert (after["forced_down"], after["status"], after["state"]) == (False, "enabled", "up")
    host = lab_rig.services.inventory.host("node-01")
    assert host is not None and not host.on_maintenance
    assert record.notification_uuid == uuid
    steps = [s.message for s in record.steps if s.name == "reinstate"]
    assert steps[0] == "reinstate of node-01 requested by alice"
    assert any("powered on via ipmi" in s and "(power off -> on)" in s for s in steps)
    assert any("evacuation records are completed" in s for s in steps)
    assert events.kinds == ["host_reinstated"]
    assert ("power_on", "node-01") in lab_rig.power.calls
    with pytest.raises(ReinstateRefused, match="not taken out by a recovery"):
        reinstate(deps(lab_rig), "node-01", "alice")  # nothing to reinstate twice


def test_reinstate_refuses_a_host_no_recovery_took_out(lab_rig: LabRig) -> None:
    with pytest.raises(ReinstateRefused, match="not taken out by a recovery"):
        reinstate(deps(lab_rig), "node-02", "alice")
    assert lab_rig.power.calls == []


def test_reinstate_refuses_while_the_bmc_cannot_power_it_on(lab_rig: LabRig) -> None:
    recover(lab_rig)
    lab_rig.control.bmc_fault("node-01", "stuck_on")  # the simulator's "ignore power changes" fault
    lab_rig.control.bmc_fault("node-01", "refuse")
    with pytest.raises(ReinstateRefused):
        reinstate(deps(lab_rig, power_on_timeout_s=1), "node-01", "alice")
    service = lab_rig.service("node-01")
    assert (service["forced_down"], service["status"]) == (True, "disabled")
    host = lab_rig.services.inventory.host("node-01")
    assert host is not None and host.on_maintenance


def test_a_flapping_host_is_quarantined(lab_rig: LabRig) -> None:
    d = deps(lab_rig, flap_max=2)
    recover(lab_rig)
    reinstate(d, "node-01", "alice")
    recover(lab_rig, starts_at="2026-11-25T13:00:00Z")
    with pytest.raises(ReinstateRefused, match="quarantined"):
        reinstate(d, "node-01", "alice")
    record = reinstate(d, "node-01", "alice", accept_flapping=True)
    assert any("(flapping accepted)" in s.message for s in record.steps)


def test_fence_drill_records_evidence(lab_rig: LabRig) -> None:
    store = DrillStore(lab_rig.services.redis, lab_rig.services.settings.key_prefix)
    common = {
        "inventory": lab_rig.services.inventory,
        "compute": lab_rig.services.compute,
        "power_for": lab_rig.services.power,
        "clock": lab_rig.services.clock,
        "store": store,
        "poll_interval_s": 0.2,
    }
    with pytest.raises(DrillRefused, match="not on maintenance"):
        drill("node-03", "alice", **common)  # type: ignore[arg-type]
    lab_rig.services.inventory.set_maintenance("node-03", "drill", None, utc_now())
    with pytest.raises(DrillRefused, match="instances"):
        drill("node-03", "alice", **common)  # type: ignore[arg-type]
    assert lab_rig.power.calls == []
    for server in lab_rig.servers_on("node-03"):
        lab_rig.nova(f"/servers/{server['id']}", method="DELETE")
    wait_until(lambda: not lab_rig.servers_on("node-03"), timeout=30, what="node-03 emptied")
    result = drill("node-03", "alice", **common)  # type: ignore[arg-type]
    assert result.passed, result.message
    assert result.off_after_s is not None and result.on_after_s is not None
    assert store.last("node-03") == result
    assert [c[0] for c in lab_rig.power.calls].count("power_off") == 1
    assert lab_rig.service("node-03")["state"] in ("up", "down")
