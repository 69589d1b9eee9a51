"""A crashed instance: act only when Nova says it should run and the hypervisor says it does not.

Nova's record lags its hypervisor: after a guest stops on its own, Nova keeps power_state
RUNNING until its power-state sync notices (libvirt's lifecycle event, ~15 s later, or the
periodic sync), and that sync then *stops* the instance itself (an instance action `stop`
with no user). So the decision has three answers: act, ignore (with a reason), or wait for
Nova to catch up. A stop by a user is never undone; a stop by Nova's own sync is.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from receiver.domain.model import Server, ServerAction
from receiver.domain.reasons import Reason

# Nova's OS-EXT-STS:power_state codes (nova/compute/power_state.py).
NOSTATE, RUNNING, PAUSED, SHUTDOWN, CRASHED, SUSPENDED = 0, 1, 3, 4, 6, 7
_GUEST_GONE = frozenset({NOSTATE, SHUTDOWN, CRASHED})


class InstanceMethod(enum.StrEnum):
    STOP_START = "stop_start"
    HARD_REBOOT = "hard_reboot"


class InstanceAction(enum.StrEnum):
    ACT = "act"
    WAIT = "wait"  # Nova has not caught up with its hypervisor yet
    IGNORE = "ignore"


@dataclass(frozen=True)
class InstancePolicy:
    all_instances: bool = False
    ha_key: str = "HA_Enabled"


@dataclass(frozen=True)
class InstanceVerdict:
    action: InstanceAction
    reason: Reason | None
    message: str

    @property
    def act(self) -> bool:
        return self.action is InstanceAction.ACT


def ha_enabled(server: Server, key: str) -> bool:
    return server.metadata.get(key, "").strip().lower() in {"true", "1", "yes", "on"}


def judge_instance(
    server: Server,
    last_action: ServerAction | None,
    policy: InstancePolicy,
    *,
    alert_at: datetime | None = None,
    sync_stop_max_age_s: float = 900.0,
) -> InstanceVerdict:
    """Whether a crash alert for `server` should be acted on now, waited on, or ignored (and why).

    `last_action`: Nova's newest stop/start/reboot. `alert_at`: when the alert started; a stop by
    Nova's sync much older than the alert belongs to another story (an operator may have chosen
    to leave that instance off since)."""
    if not (policy.all_instances or ha_enabled(server, policy.ha_key)):
        return _ignore(Reason.NOT_HA_ENABLED, f"{server.id} lacks metadata {policy.ha_key}=True")
    vm_state = (server.vm_state or "").lower()
    if vm_state == "active":
        return _judge_active(server)
    if vm_state == "stopped" and not server.task_state:
        return _judge_stopped(server, last_action, alert_at, sync_stop_max_age_s)
    return _ignore(
        Reason.INSTANCE_NOT_EXPECTED_RUNNING,
        f"Nova says {server.id} is {vm_state or 'unknown'}/{server.task_state or '-'}",
    )


def _judge_active(server: Server) -> InstanceVerdict:
    task = server.task_state or ""
    if task == "powering-off":
        return _wait(f"{server.id} is powering off (Nova's power sync, or a user's stop)")
    if task:
        return _ignore(Reason.TASK_IN_PROGRESS, f"{server.id} has task {task} in progress")
    if server.power_state in _GUEST_GONE:
        return InstanceVerdict(
            InstanceAction.ACT,
            None,
            f"Nova expects {server.id} active; its hypervisor reports power state {server.power_state}",
        )
    return _wait(f"Nova still records {server.id} running (power state {server.power_state})")


def _judge_stopped(
    server: Server, last_action: ServerAction | None, alert_at: datetime | None, max_age_s: float
) -> InstanceVerdict:
    if last_action is not None and last_action.action == "stop" and last_action.user_id is None:
        stopped_at = last_action.start_time
        if (
            alert_at is not None
            and stopped_at is not None
            and stopped_at < alert_at - timedelta(seconds=max_age_s)
        ):
            return _ignore(
                Reason.INSTANCE_NOT_EXPECTED_RUNNING,
                f"{server.id} was stopped by Nova's power sync at {stopped_at.isoformat()}, long before this "
                "alert: not this crash",
            )
        return InstanceVerdict(
            InstanceAction.ACT,
            None,
            f"{server.id} was stopped by Nova's own power sync ({last_action.request_id}), not by a user",
        )
    who = f"by user {last_action.user_id}" if last_action and last_action.user_id else "by a user"
    return _ignore(Reason.INSTANCE_NOT_EXPECTED_RUNNING, f"{server.id} was stopped {who}: not a crash")


def after_waiting(server: Server, waited_s: float) -> InstanceVerdict:
    """Nova's record never caught up within the wait. A guest Nova still records as running, with
    no task, is believed crashed on the alert's word: the exporter speaks for the hypervisor, and
    Nova notices a guest kept CRASHED only at its periodic sync (600 s by default)."""
    if server.task_state:
        return _ignore(
            Reason.TASK_IN_PROGRESS, f"{server.id} still has task {server.task_state} after {waited_s:.0f}s"
        )
    return InstanceVerdict(
        InstanceAction.ACT,
        None,
        f"Nova's record still says {server.id} runs (power state {server.power_state}) after "
        f"{waited_s:.0f}s; the hypervisor's exporter says it does not: recovering on the alert's word",
    )


def _ignore(reason: Reason, message: str) -> InstanceVerdict:
    return InstanceVerdict(InstanceAction.IGNORE, reason, message)


def _wait(message: str) -> InstanceVerdict:
    return InstanceVerdict(InstanceAction.WAIT, None, message)
