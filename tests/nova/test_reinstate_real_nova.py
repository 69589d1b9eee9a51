"""Return to service after a whole host recovery, against the REAL Nova 34 test bed.

The victim is recovered for real (fenced through the standalone BMC simulator, whose
power-off kills its nova-compute; forced down, disabled, evacuated), then reinstated
through `receiver.workflow.reinstate`: the BMC's power-on hook starts that nova-compute
again (`nodectl.sh start HOST`), and Nova itself decides when the host may come back. It
answers 400 to an un-force while the evacuation records from the host are still `done`
(nova-lab README, pitfall 4); only the restarted compute's init_host moves them to
`completed`, ~8-16 s after start. So a reinstate that cannot wait that long must refuse
and leave the host out, and one that can must bring it all the way back.

Skipped unless LAZARUS_TEST_NOVA_ENDPOINT and LAZARUS_TEST_NOVA_LAB are set; see
recovery_fixtures.py. Teardown (victim_servers) restores the host whatever happened.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections import Counter
from collections.abc import Callable

import pytest

from receiver.domain.record import Notification, Status
from receiver.workflow.reinstate import ReinstateDeps, ReinstatePolicy, ReinstateRefused, reinstate
from tests.contract.conftest import wait_for
from tests.nova.recovery_fixtures import (
    NovaRecoveryRig,
    VictimServers,
    make_rig,
    real_nova,
    victim_servers,
)

pytestmark = pytest.mark.nova
__all__ = ["make_rig", "real_nova", "victim_servers"]

OPERATOR = "operator-alice"
# Far shorter than a restarted nova-compute needs to heartbeat and clean up (~8-16 s).
TOO_SHORT_CLEANUP_S = 1.0
# Far longer than it needs, even on a loaded 2-core machine.
REALISTIC_CLEANUP_S = 300.0
REFUSED_FOR_CLEANUP = (
    r"gave up after 1s: (\d+ evacuation records from {host} not yet completed"
    r"|nova-compute on {host} has not reported up since \S+)$"
)


class RecordedEvents:
    """An EventPublisher that remembers what it was asked to publish."""

    def __init__(self) -> None:
        self.kinds: list[str] = []

    def publish(self, kind: object, record: object) -> None:
        self.kinds.append(str(kind))


def reinstate_deps(rig: NovaRecoveryRig, events: RecordedEvents, cleanup_timeout_s: float) -> ReinstateDeps:
    services = rig.services
    return ReinstateDeps(
        store=services.store,
        inventory=services.inventory,
        compute=services.compute,
        power=services.power,
        events=events,
        clock=services.clock,
        policy=ReinstatePolicy(
            power_on_timeout_s=60, cleanup_timeout_s=cleanup_timeout_s, poll_interval_s=0.5
        ),
    )


def recover(rig: NovaRecoveryRig, servers: VictimServers) -> Notification:
    """The host dies first (its nova-compute killed), Nova notices, then the alert comes:
    re-verification before fencing refuses a host Nova still reports up. The BMC still
    reads ON, so fencing powers it off for real (the hook's kill then finds nothing to kill)."""
    host = servers.host
    started = time.monotonic()
    subprocess.run([str(rig.nova.nodectl), "kill", host], check=True, capture_output=True, timeout=60)
    wait_for(f"Nova to report {host} down", lambda: rig.nova.admin.service(host)["state"] == "down")
    rig.timings["nova_notices_death_s"] = time.monotonic() - started
    started = time.monotonic()
    record = rig.run(rig.alert(host))
    rig.timings["recovery_s"] = time.monotonic() - started
    assert record.status is Status.FINISHED, f"{record.reason}: {record.message}\n{record.steps}"
    assert record.reason == "completed"
    [attempt] = record.fencing
    assert (attempt.power_before, attempt.power_after, attempt.outcome) == ("on", "off", "off_confirmed")
    assert not rig.nova.compute_running(host)
    service = rig.nova.admin.service(host)
    assert (service["forced_down"], service["status"], service["state"]) == (True, "disabled", "down")
    migrations = rig.nova.evacuations(host, servers.ids)
    assert sorted(m["status"] for m in migrations) == ["done"] * len(servers.ids), migrations
    return record


def reinstate_steps(record: Notification) -> list[tuple[str, str]]:
    return [(s.state, s.message) for s in record.steps if s.name == "reinstate"]


def print_timeline(rig: NovaRecoveryRig, record: Notification) -> None:
    print(f"\nrecovery + reinstate of {record.hostname} ({record.notification_uuid}):")
    for step in record.steps:
        print(f"  {step.at} {step.name:9} {step.state:9} {step.message}")
    print("  timings: " + ", ".join(f"{name} {took:.2f}s" for name, took in rig.timings.items()))


def test_reinstate_waits_for_real_nova_to_clean_up_then_returns_the_host(
    victim_servers: VictimServers,
    make_rig: Callable[..., NovaRecoveryRig],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    host = victim_servers.host
    rig = make_rig()
    recovery = recover(rig, victim_servers)
    uuid = recovery.notification_uuid
    disabled_reason = rig.nova.admin.service(host)["disabled_reason"]
    moved_to = {m.instance_uuid: m.dest_host for m in recovery.vmoves}

    # 1. Too impatient: the BMC powers the host on (its nova-compute starts), but Nova's
    #    clean-up takes longer than allowed, so the gate refuses and the host stays out.
    events = RecordedEvents()
    said: list[str] = []
    started = time.monotonic()
    with pytest.raises(ReinstateRefused) as refused:
        reinstate(reinstate_deps(rig, events, TOO_SHORT_CLEANUP_S), host, OPERATOR, progress=said.append)
    rig.timings["refused_reinstate_s"] = time.monotonic() - started
    assert refused.match(REFUSED_FOR_CLEANUP.format(host=host))
    print(f"\nrefused: {refused.value.message}")

    service = rig.nova.admin.service(host)
    assert (service["forced_down"], service["status"]) == (True, "disabled"), service
    assert service["disabled_reason"] == disabled_reason
    assert rig.nova.compute_running(host), "the BMC's power-on hook should have started nova-compute"
    view = rig.services.inventory.host(host)
    assert view is not None and view.on_maintenance
    assert view.state.notification_uuid == uuid
    record = rig.services.store.get(uuid)
    assert record.status is Status.FINISHED  # the recovery's own outcome is untouched
    steps = reinstate_steps(record)
    assert steps[0] == ("started", f"reinstate of {host} requested by {OPERATOR}")
    assert steps[1][0] == "progress" and "(power off -> on)" in steps[1][1], steps
    assert steps[1][1].startswith(f"{host} powered on via ipmi at 127.0.0.1:{rig.bmc.port}")
    assert steps[2:] == [("failed", refused.value.message)], steps
    assert said == [message for _, message in steps]
    assert events.kinds == []

    # 2. Patient enough: the same gates pass once the restarted compute heartbeats and has
    #    moved the evacuation records to `completed`; then the host is back.
    started = time.monotonic()
    returned = reinstate(reinstate_deps(rig, events, REALISTIC_CLEANUP_S), host, OPERATOR)
    rig.timings["reinstate_s"] = time.monotonic() - started
    assert returned.notification_uuid == uuid

    service = rig.nova.admin.service(host)
    assert (service["forced_down"], service["status"], service["state"]) == (False, "enabled", "up"), service
    assert service["disabled_reason"] is None
    migrations = rig.nova.evacuations(host, victim_servers.ids)
    assert Counter(m["instance_uuid"] for m in migrations) == dict.fromkeys(victim_servers.ids, 1), migrations
    assert all(m["status"] == "completed" for m in migrations), migrations
    view = rig.services.inventory.host(host)
    assert view is not None and not view.on_maintenance

    record = rig.services.store.get(uuid)
    assert record.status is Status.FINISHED
    second = reinstate_steps(record)[len(steps) :]
    assert second[0] == ("started", f"reinstate of {host} requested by {OPERATOR}")
    assert second[1][0] == "progress" and "(power on -> on)" in second[1][1], second
    assert second[2] == ("progress", f"nova-compute on {host} is up and its evacuation records are completed")
    assert second[3:] == [
        ("succeeded", f"{host} is back in service: compute service up, enabled, not forced down")
    ]
    assert events.kinds == ["host_reinstated"]

    # Reinstate moved no server back: each stays where the recovery put it, as it was.
    for server_id, prior in victim_servers.prior_status.items():
        server = rig.nova.admin.server(server_id)
        assert server is not None
        assert (server["OS-EXT-SRV-ATTR:host"], server["status"]) == (moved_to[server_id], prior)
    # The BMC changed power exactly twice: off by the recovery, on by the first reinstate.
    bmc_log = rig.bmc.output()
    changes = (bmc_log.count(f"bmc {host}: power off"), bmc_log.count(f"bmc {host}: power on"))
    assert changes == (1, 1), bmc_log

    password = rig.bmc.password
    assert caplog.records, "caplog captured nothing: the secret check would prove nothing"
    assert password not in caplog.text
    assert password not in str(record.to_dict())
    assert password not in rig.redis_text()
    assert rig.nova.target.token not in str(record.to_dict())
    print_timeline(rig, record)
