"""Process and instance failures as pure decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from receiver.domain.instance import InstanceAction, InstancePolicy, after_waiting, judge_instance
from receiver.domain.model import ComputeService, Server, ServerAction
from receiver.domain.process import ProcessAction, disable_reason, on_failure, on_recheck
from receiver.domain.reasons import Reason

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
OURS = disable_reason("rec-1")


def service(status: str = "enabled", reason: str | None = None, state: str = "down", forced: bool = False,
            updated: datetime | None = T0) -> ComputeService:  # fmt: skip
    return ComputeService("svc", "node-01", state, status, forced, reason, updated)


@pytest.mark.parametrize(
    ("svc", "action", "reason"),
    [
        (service(), ProcessAction.DISABLE, None),
        (service("disabled", OURS), ProcessAction.WAIT, None),  # our own disable, found on resume
        (service("disabled", "kernel upgrade (alice)"), ProcessAction.LEAVE, Reason.DISABLED_BY_OPERATOR),
        (service("disabled", None), ProcessAction.LEAVE, Reason.DISABLED_BY_OPERATOR),
    ],
)
def test_on_failure(svc: ComputeService, action: ProcessAction, reason: Reason | None) -> None:
    decision = on_failure(svc, "rec-1")
    assert (decision.action, decision.reason) == (action, reason)


LATER = T0 + timedelta(seconds=30)


@pytest.mark.parametrize(
    ("svc", "action"),
    [
        (service("disabled", OURS, "down", updated=T0), ProcessAction.WAIT),
        # "up" from a heartbeat older than our disable is the dead process's last word
        (service("disabled", OURS, "up", updated=T0 - timedelta(seconds=5)), ProcessAction.WAIT),
        (service("disabled", OURS, "up", updated=LATER), ProcessAction.REENABLE),
        (service("disabled", OURS, "up", forced=True, updated=LATER), ProcessAction.WAIT),
        (service("enabled", None, "up", updated=LATER), ProcessAction.LEAVE),  # someone re-enabled it
        (service("disabled", "maintenance (bob)", "up", updated=LATER), ProcessAction.LEAVE),
        (service("disabled", disable_reason("other-record"), "up", updated=LATER), ProcessAction.LEAVE),
    ],
)
def test_on_recheck(svc: ComputeService, action: ProcessAction) -> None:
    assert on_recheck(svc, "rec-1", T0).action is action


def server(vm_state: str = "active", task: str | None = None, power: int | None = 4,
           metadata: dict[str, str] | None = None) -> Server:  # fmt: skip
    return Server("vm-1", "vm", "node-01", "ACTIVE", vm_state, task, metadata if metadata is not None
                  else {"HA_Enabled": "True"}, power_state=power)  # fmt: skip


BY_NOVA = ServerAction("stop", "req-sync", None)
BY_USER = ServerAction("stop", "req-user", "alice")
ACT, WAIT, IGNORE = InstanceAction.ACT, InstanceAction.WAIT, InstanceAction.IGNORE


@pytest.mark.parametrize(
    ("srv", "last", "policy", "action", "reason"),
    [
        (server(), None, InstancePolicy(), ACT, None),  # Nova: should run; hypervisor: shut down
        (server(power=6), None, InstancePolicy(), ACT, None),  # crashed
        (server(power=1), None, InstancePolicy(), WAIT, None),  # Nova's record has not caught up yet
        (server(task="powering-off", power=4), None, InstancePolicy(), WAIT, None),  # Nova's sync stopping it
        (server(task="rebooting"), None, InstancePolicy(), IGNORE, Reason.TASK_IN_PROGRESS),
        (server(vm_state="stopped"), BY_NOVA, InstancePolicy(), ACT, None),  # Nova's sync stopped a crash
        (server(vm_state="stopped"), BY_USER, InstancePolicy(), IGNORE, Reason.INSTANCE_NOT_EXPECTED_RUNNING),
        (server(vm_state="stopped"), None, InstancePolicy(), IGNORE, Reason.INSTANCE_NOT_EXPECTED_RUNNING),
        (server(vm_state="error"), None, InstancePolicy(), IGNORE, Reason.INSTANCE_NOT_EXPECTED_RUNNING),
        (server(metadata={}), None, InstancePolicy(), IGNORE, Reason.NOT_HA_ENABLED),
        (server(metadata={"HA_Enabled": "false"}), None, InstancePolicy(), IGNORE, Reason.NOT_HA_ENABLED),
        (server(metadata={}), None, InstancePolicy(all_instances=True), ACT, None),
        (server(metadata={"ha": "yes"}), None, InstancePolicy(ha_key="ha"), ACT, None),
    ],
)
def test_judge_instance(
    srv: Server,
    last: ServerAction | None,
    policy: InstancePolicy,
    action: InstanceAction,
    reason: Reason | None,
) -> None:
    verdict = judge_instance(srv, last, policy)
    assert (verdict.action, verdict.reason) == (action, reason)
    assert verdict.message


def test_a_stop_by_novas_sync_long_before_the_alert_is_not_this_crash() -> None:
    alert_at = T0 + timedelta(hours=2)
    old_stop = ServerAction("stop", "req-old", None, T0)
    recent_stop = ServerAction("stop", "req-new", None, alert_at - timedelta(seconds=30))
    stopped = server(vm_state="stopped")
    assert judge_instance(stopped, old_stop, InstancePolicy(), alert_at=alert_at).action is IGNORE
    assert judge_instance(stopped, recent_stop, InstancePolicy(), alert_at=alert_at).action is ACT


def test_after_waiting_the_alert_is_believed_unless_a_task_runs() -> None:
    assert after_waiting(server(power=1), 60).action is ACT  # Nova's record never caught up
    stuck = after_waiting(server(task="powering-off"), 60)
    assert (stuck.action, stuck.reason) == (IGNORE, Reason.TASK_IN_PROGRESS)
