"""A crashed instance: act only when Nova says it should run and the hypervisor says it does not."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from receiver.domain.model import Server
from receiver.domain.reasons import Reason

# Nova's OS-EXT-STS:power_state codes (nova/compute/power_state.py).
RUNNING = 1


class InstanceMethod(enum.StrEnum):
    STOP_START = "stop_start"
    HARD_REBOOT = "hard_reboot"


@dataclass(frozen=True)
class InstancePolicy:
    all_instances: bool = False
    ha_key: str = "HA_Enabled"


@dataclass(frozen=True)
class InstanceVerdict:
    act: bool
    reason: Reason | None
    message: str


def ha_enabled(server: Server, key: str) -> bool:
    return server.metadata.get(key, "").strip().lower() in {"true", "1", "yes", "on"}


def judge_instance(server: Server, policy: InstancePolicy) -> InstanceVerdict:
    """Whether a crash alert for `server` should be acted on, and if not why not."""
    vm_state = (server.vm_state or "").lower()
    if vm_state != "active":
        return InstanceVerdict(
            False,
            Reason.INSTANCE_NOT_EXPECTED_RUNNING,
            f"Nova says {server.id} is {vm_state or 'unknown'}, not active: a user's stop is not a crash",
        )
    if server.task_state:
        return InstanceVerdict(
            False, Reason.TASK_IN_PROGRESS, f"{server.id} has task {server.task_state} in progress"
        )
    if not (policy.all_instances or ha_enabled(server, policy.ha_key)):
        return InstanceVerdict(
            False, Reason.NOT_HA_ENABLED, f"{server.id} lacks metadata {policy.ha_key}=True"
        )
    if server.power_state == RUNNING:
        return InstanceVerdict(
            False, Reason.INSTANCE_RUNNING, f"the hypervisor reports {server.id} running; nothing to recover"
        )
    return InstanceVerdict(
        True, None, f"Nova expects {server.id} active but its power state is {server.power_state}"
    )
