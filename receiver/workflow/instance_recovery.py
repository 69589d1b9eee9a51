"""Instance recovery: a crashed VM on a healthy host, brought back without fencing anything.

Cross-checks Nova first (it must say the instance should run, and the hypervisor that it
does not), refuses a crash loop, then stops and starts it (or hard-reboots it) and
confirms ACTIVE. Nova's own power-state sync may stop the instance first: its 409 is
expected and handled, not a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from receiver.domain.instance import (
    RUNNING,
    InstanceAction,
    InstanceMethod,
    InstancePolicy,
    InstanceVerdict,
    after_waiting,
    judge_instance,
)
from receiver.domain.model import Server
from receiver.domain.reasons import Reason
from receiver.domain.record import Notification, Phase, Status
from receiver.errors import ComputeError, ComputeRejected, NotFound
from receiver.ports import Compute
from receiver.settings import InstanceSettings
from receiver.workflow.context import RecoveryContext
from receiver.workflow.retry import retry_transient


@dataclass
class InstanceRecoveryDeps:
    compute: Callable[[], Compute]
    policy: InstanceSettings


class _GaveUp(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def run(ctx: RecoveryContext, deps: InstanceRecoveryDeps) -> Notification:
    begun = ctx.begin(lambda r: f"instance recovery of {r.payload.get('instance_uuid', '')} on {r.hostname}")
    if begun is None:
        return ctx.record()
    record = begun
    instance = str(record.payload.get("instance_uuid", ""))
    compute = deps.compute()
    try:
        if not record.reached(Phase.CHECKED):
            ended = _check(ctx, deps, compute, instance)
            if ended is not None:
                return ended
        if deps.policy.method == InstanceMethod.HARD_REBOOT:
            _hard_reboot(ctx, deps.policy, compute, instance)
        else:
            _stop_start(ctx, deps.policy, compute, instance)
        server = _wait(
            ctx, deps.policy, compute=compute, instance=instance, done=_is_running, what="ACTIVE and running"
        )
    except NotFound:
        return ctx.finish(Status.IGNORED, Reason.INSTANCE_DELETED, f"instance {instance} was deleted")
    except _GaveUp as exc:
        return ctx.finish(Status.FAILED, Reason.INSTANCE_RECOVERY_FAILED, exc.message)
    except ComputeError as exc:
        reason = Reason.COMPUTE_REJECTED if isinstance(exc, ComputeRejected) else Reason.COMPUTE_UNAVAILABLE
        return ctx.finish(Status.FAILED, reason, f"Nova failed: {exc.message}")
    now = ctx.clock.now()
    ctx.update(lambda r: r.advance(Phase.DONE, now))
    return ctx.finish(
        Status.FINISHED, Reason.COMPLETED, f"{server.name or instance} is ACTIVE on {server.host}"
    )


def _check(
    ctx: RecoveryContext, deps: InstanceRecoveryDeps, compute: Compute, instance: str
) -> Notification | None:
    policy = deps.policy
    verdict = _confirm(ctx, policy, compute, instance)
    if not verdict.act:
        return ctx.finish(Status.IGNORED, verdict.reason or Reason.INSTANCE_RUNNING, verdict.message)
    reserved, others = ctx.store.reserve_slot(
        f"instance:{instance}", ctx.uuid, ctx.clock.now(), policy.crash_loop_window_s, policy.crash_loop_max
    )
    if not reserved:
        return ctx.finish(
            Status.IGNORED,
            Reason.CRASH_LOOP,
            f"{instance} was recovered {others} times in the last {policy.crash_loop_window_s:.0f}s "
            f"(limit {policy.crash_loop_max}): left alone for a human",
        )
    now = ctx.clock.now()
    ctx.update(lambda r: r.advance(Phase.CHECKED, now))
    ctx.step("check", "succeeded", verdict.message)
    return None


def _confirm(
    ctx: RecoveryContext, policy: InstanceSettings, compute: Compute, instance: str
) -> InstanceVerdict:
    """Judge until Nova's record agrees either way, for up to `confirm_s` (its record lags its hypervisor)."""
    started = ctx.clock.now()
    deadline = started + timedelta(seconds=policy.confirm_s)
    alert_at = datetime.fromisoformat(ctx.record().generated_time)
    while True:
        server = retry_transient(lambda: compute.server(instance))
        last = (
            retry_transient(lambda: compute.last_power_action(instance))
            if server.vm_state == "stopped"
            else None
        )
        verdict = judge_instance(
            server, last, InstancePolicy(policy.all_instances, policy.ha_metadata_key), alert_at=alert_at
        )
        if verdict.action is not InstanceAction.WAIT:
            return verdict
        if ctx.clock.now() >= deadline:
            return after_waiting(server, (ctx.clock.now() - started).total_seconds())
        ctx.clock.sleep(policy.poll_interval_s)


def _stop_start(ctx: RecoveryContext, policy: InstanceSettings, compute: Compute, instance: str) -> None:
    if not ctx.record().reached(Phase.INSTANCE_STOPPED):
        server = retry_transient(lambda: compute.server(instance))
        already = server.status.upper() == "SHUTOFF"
        if not already:
            ctx.checkpoint()
            _tolerating_conflict(ctx, lambda: compute.stop(instance), "stop")
        _wait(ctx, policy, compute=compute, instance=instance, done=_is_stopped, what="SHUTOFF")
        now = ctx.clock.now()
        ctx.update(lambda r: r.advance(Phase.INSTANCE_STOPPED, now))
        if already:
            ctx.step("stop", "skipped", f"{instance} was already SHUTOFF; Lazarus sent no stop")
        else:
            ctx.step("stop", "succeeded", f"stopped {instance}; it is SHUTOFF")
    if not ctx.record().reached(Phase.INSTANCE_STARTED):
        ctx.checkpoint()
        _tolerating_conflict(ctx, lambda: compute.start(instance), "start")
        now = ctx.clock.now()
        ctx.update(lambda r: r.advance(Phase.INSTANCE_STARTED, now))
        ctx.step("start", "succeeded", f"start of {instance} accepted")


def _hard_reboot(ctx: RecoveryContext, policy: InstanceSettings, compute: Compute, instance: str) -> None:
    if not ctx.record().reached(Phase.INSTANCE_STARTED):
        ctx.checkpoint()
        _tolerating_conflict(ctx, lambda: compute.reboot(instance, hard=True), "hard reboot")
        now = ctx.clock.now()
        ctx.update(lambda r: r.advance(Phase.INSTANCE_STARTED, now))
        ctx.step("reboot", "succeeded", f"hard reboot of {instance} accepted")


def _tolerating_conflict(ctx: RecoveryContext, call: Callable[[], None], what: str) -> None:
    """Nova answers 409 when its own power sync (or a retried call) got there first."""
    try:
        retry_transient(call)
    except ComputeRejected as exc:
        if exc.status != 409:
            raise
        ctx.step(what, "progress", f"Nova answered 409 to {what} ({exc.message}); watching its state instead")


def _is_stopped(server: Server) -> bool:
    return server.status.upper() == "SHUTOFF" and not server.task_state


def _is_running(server: Server) -> bool:
    return (
        server.status.upper() == "ACTIVE" and not server.task_state and server.power_state in (None, RUNNING)
    )


def _wait(
    ctx: RecoveryContext,
    policy: InstanceSettings,
    *,
    compute: Compute,
    instance: str,
    done: Callable[[Server], bool],
    what: str,
) -> Server:
    deadline = ctx.clock.now() + timedelta(seconds=policy.timeout_s)
    while True:
        server = retry_transient(lambda: compute.server(instance))
        if done(server):
            return server
        if server.status.upper() == "ERROR" and not server.task_state:
            raise _GaveUp(f"{instance} went to ERROR while waiting for {what}")
        if ctx.clock.now() >= deadline:
            state = f"{server.status}/{server.task_state or '-'}"
            raise _GaveUp(f"{instance} not {what} within {policy.timeout_s:.0f}s (now {state})")
        ctx.clock.sleep(policy.poll_interval_s)
