"""A whole host recovery, in-process, against the REAL Nova 34 test bed.

The same flow as tests/integration/core/test_host_recovery.py (alert -> intake -> job ->
fence over real IPMI -> force down -> disable -> evacuate -> confirm), but Nova is the
real one of ../shared/nova-lab and the victim's power loss is its nova-compute killed by
the BMC simulator's power-off hook. Skipped unless LAZARUS_TEST_NOVA_ENDPOINT and
LAZARUS_TEST_NOVA_LAB are set; see recovery_fixtures.py.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections import Counter
from collections.abc import Callable

import pytest

from receiver.domain.record import MoveStatus, Notification, Phase, Status
from receiver.workflow.host_recovery import disable_reason
from tests.nova.recovery_fixtures import (
    NovaRecoveryRig,
    RealNova,
    VictimServers,
    make_rig,
    real_nova,
    victim_servers,
)

pytestmark = pytest.mark.nova
__all__ = ["make_rig", "real_nova", "victim_servers"]


def hang(rig: NovaRecoveryRig, host: str) -> None:
    """The host dies as hosts do: its nova-compute stops (killed here) while its BMC still says ON,
    and Nova notices after its service_down_time. Lazarus re-verifies with Nova before fencing."""
    subprocess.run([str(rig.nova.nodectl), "kill", host], check=True, capture_output=True, timeout=60)
    deadline = time.monotonic() + 180
    while rig.nova.admin.service(host)["state"] != "down":
        assert time.monotonic() < deadline, f"Nova never reported {host} down"
        time.sleep(0.5)


def recover(rig: NovaRecoveryRig, host: str) -> Notification:
    """Alert, then the job; prints the timeline (pytest -s / -rP shows it)."""
    hang(rig, host)
    started = time.monotonic()
    uuid = rig.alert(host)
    record = rig.run(uuid)
    took = time.monotonic() - started
    print(f"\nrecovery {uuid} of {host}: alert -> {record.status.value} in {took:.2f}s")
    for step in record.steps:
        print(f"  {step.at} {step.name:9} {step.state:9} {step.message}")
    return record


def assert_no_secret(rig: NovaRecoveryRig, record: Notification, caplog: pytest.LogCaptureFixture) -> None:
    """The BMC password in no log record (caplog at DEBUG), not in the record, nowhere in Redis."""
    password = rig.bmc.password
    assert caplog.records, "caplog captured nothing: the check below would prove nothing"
    for entry in caplog.records:
        assert password not in entry.getMessage(), f"BMC password in a log record of {entry.name}"
    assert password not in caplog.text
    assert password not in str(record.to_dict())
    assert password not in rig.redis_text()
    token = rig.nova.target.token  # Nova's token too: keystoneauth logs only its hash
    assert token not in caplog.text
    assert token not in str(record.to_dict())


def test_dead_host_is_fenced_and_evacuated_on_real_nova(
    victim_servers: VictimServers,
    make_rig: Callable[..., NovaRecoveryRig],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    host = victim_servers.host
    rig = make_rig()
    record = recover(rig, host)

    assert record.status is Status.FINISHED, f"{record.reason}: {record.message}\n{record.steps}"
    assert (record.reason, record.phase) == ("completed", Phase.DONE)
    # fencing evidence: the BMC simulator starts ON and reads back OFF after the power-off
    [attempt] = record.fencing
    assert (attempt.power_before, attempt.power_after, attempt.outcome) == ("on", "off", "off_confirmed")
    assert attempt.bmc == f"127.0.0.1:{rig.bmc.port}"
    assert not rig.nova.compute_running(host)
    # the safety order: fence, then force down + disable, then plan and evacuate
    succeeded = [s.name for s in record.steps if s.state == "succeeded"]
    # The capacity plan is made before the fence; evacuations only after Nova is told.
    assert (
        succeeded.index("plan")
        < succeeded.index("fence")
        < succeeded.index("nova")
        < succeeded.index("evacuate")
    )

    service = rig.nova.admin.service(host)
    assert (service["forced_down"], service["status"], service["state"]) == (True, "disabled", "down")
    assert service["disabled_reason"] == disable_reason(record.notification_uuid)
    assert record.notification_uuid in service["disabled_reason"]

    assert {m.instance_uuid for m in record.vmoves} == victim_servers.ids
    for move in record.vmoves:
        prior = victim_servers.prior_status[move.instance_uuid]
        assert move.status is MoveStatus.SUCCEEDED, move.message
        assert move.prior_status == prior
        server = rig.nova.admin.server(move.instance_uuid)
        assert server is not None
        assert server["OS-EXT-SRV-ATTR:host"] not in (None, host)
        assert server["OS-EXT-SRV-ATTR:host"] == move.dest_host
        assert (server["status"], server["OS-EXT-STS:task_state"]) == (prior, None)  # SHUTOFF stays SHUTOFF

    migrations = rig.nova.evacuations(host, victim_servers.ids)
    per_server = Counter(m["instance_uuid"] for m in migrations)
    assert per_server == dict.fromkeys(victim_servers.ids, 1), migrations
    for migration in migrations:
        dest = rig.nova.admin.server(migration["instance_uuid"])
        assert dest is not None
        assert migration["dest_compute"] == dest["OS-EXT-SRV-ATTR:host"]
        assert migration["status"] == "done", migration

    host_view = rig.services.inventory.host(host)
    assert host_view is not None and host_view.on_maintenance
    assert_no_secret(rig, record, caplog)


def test_bmc_stuck_on_stops_before_nova_on_real_nova(
    victim_servers: VictimServers,
    make_rig: Callable[..., NovaRecoveryRig],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    host = victim_servers.host
    # The BMC accepts the power-off and keeps reporting ON: the recovery must give up at the deadline.
    rig = make_rig(fault="stuck_on", fencing={"power_off_timeout_s": 8})
    record = recover(rig, host)

    assert record.status is Status.FAILED, f"{record.reason}: {record.message}"
    assert record.reason == "power_still_on"
    assert record.fencing and all(a.outcome == "power_still_on" for a in record.fencing)
    assert all((a.power_before, a.power_after) == ("on", "on") for a in record.fencing)
    assert not record.reached(Phase.NOVA_FORCED_DOWN)
    # Planned before the fence, never attempted.
    assert record.vmoves and all(
        (m.status, m.reason, m.attempts) == (MoveStatus.IGNORED, "recovery_stopped", 0) for m in record.vmoves
    )
    assert not any(s.name in ("nova", "evacuate", "lock", "spare") for s in record.steps)

    assert rig.nova.evacuations(host, victim_servers.ids) == []
    service = rig.nova.admin.service(host)
    assert (service["forced_down"], service["status"]) == (False, "enabled")
    for server_id, prior in victim_servers.prior_status.items():
        server = rig.nova.admin.server(server_id)
        assert server is not None
        assert (server["OS-EXT-SRV-ATTR:host"], server["status"]) == (host, prior)
    assert_no_secret(rig, record, caplog)


def test_reserved_host_takes_the_spare_into_service_on_real_nova(
    victim_servers: VictimServers, make_rig: Callable[..., NovaRecoveryRig], real_nova: RealNova
) -> None:
    """Masakari's reserved_host on the real Nova: the spare's service is enabled, each instance
    is locked with a reason, evacuated to the named spare (the scheduler validates it), and
    unlocked; SHUTOFF stays SHUTOFF."""
    host = victim_servers.host
    up = [h for h in real_nova.target.other_hosts(host) if real_nova.admin.service(h)["state"] == "up"]
    spare = up[-1]
    rig = make_rig(spare=spare)
    record = recover(rig, host)
    assert record.status is Status.FINISHED, f"{record.reason}: {record.message}\n{record.steps}"
    assert record.plan is not None and record.plan["spares_used"] == [spare]
    for move in record.vmoves:
        assert (move.status, move.target_host, move.dest_host) == (MoveStatus.SUCCEEDED, spare, spare)
        server = rig.nova.admin.call("GET", f"/servers/{move.instance_uuid}")["server"]
        assert server["status"] == victim_servers.prior_status[move.instance_uuid]
        assert (server["locked"], server["locked_reason"]) == (False, None)
    assert rig.nova.admin.service(spare)["status"] == "enabled"
    view = rig.services.inventory.host(spare)
    assert view is not None and not view.spec.reserved
    assert sum(1 for s in record.steps if s.name == "lock" and "unlocked" in s.message) == len(record.vmoves)
