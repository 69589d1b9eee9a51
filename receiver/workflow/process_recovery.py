"""Process recovery: a dead `nova-compute` on a live host.

Never fences and never evacuates: the host and its instances are alive. Disables the
compute service (with a reason naming the record) so nothing new is scheduled there, then
waits, with the record open, until Nova itself reports the service up again; only then, and
only if the disable is still Lazarus's own, enables it. A resolved alert proves nothing.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from receiver.adapters.redis_inventory import InventoryStore
from receiver.domain.model import ComputeService
from receiver.domain.process import HANDLED_PROCESSES, ProcessAction, disable_reason, on_failure, on_recheck
from receiver.domain.reasons import Reason
from receiver.domain.record import Notification, Phase, Status, iso
from receiver.errors import ComputeError, ComputeRejected, NotFound
from receiver.ports import Compute
from receiver.settings import ProcessSettings
from receiver.workflow.context import RecoveryContext
from receiver.workflow.retry import retry_transient

log = logging.getLogger(__name__)
DISABLED_AT = "service_disabled_at"


@dataclass
class ProcessRecoveryDeps:
    inventory: InventoryStore
    compute: Callable[[], Compute]
    policy: ProcessSettings


def run(ctx: RecoveryContext, deps: ProcessRecoveryDeps) -> Notification:
    begun = ctx.begin(lambda r: f"process recovery of {_process(r)} on {r.hostname}")
    if begun is None:
        return ctx.record()
    record = begun
    hostname = record.hostname or ""
    try:
        if not record.reached(Phase.CHECKED):
            ended = _check(ctx, deps, record)
            if ended is not None:
                return ended
        if not ctx.record().reached(Phase.SERVICE_DISABLED):
            ended = _disable(ctx, deps, hostname)
            if ended is not None:
                return ended
        return _watch(ctx, deps, hostname)
    except NotFound:
        return ctx.finish(
            Status.FAILED, Reason.SERVICE_NOT_FOUND, f"Nova has no nova-compute service on {hostname}"
        )
    except ComputeError as exc:
        reason = Reason.COMPUTE_REJECTED if isinstance(exc, ComputeRejected) else Reason.COMPUTE_UNAVAILABLE
        return ctx.finish(Status.FAILED, reason, f"Nova failed: {exc.message}")


def _process(record: Notification) -> str:
    return str(record.payload.get("process_name", ""))


def _check(ctx: RecoveryContext, deps: ProcessRecoveryDeps, record: Notification) -> Notification | None:
    process = _process(record)
    if process not in HANDLED_PROCESSES:
        return ctx.finish(
            Status.IGNORED,
            Reason.PROCESS_NOT_HANDLED,
            f"process {process!r} is not one Lazarus recovers ({', '.join(sorted(HANDLED_PROCESSES))})",
        )
    host = deps.inventory.host(record.hostname or "")
    if host is None:
        return ctx.finish(
            Status.IGNORED,
            Reason.HOST_NOT_IN_INVENTORY,
            f"host {record.hostname} is not in the inventory; nothing was touched",
        )
    if host.on_maintenance:
        return ctx.finish(
            Status.IGNORED,
            Reason.HOST_ON_MAINTENANCE,
            f"host {host.spec.name} is on maintenance ({host.state.reason}); nothing was touched",
        )
    now = ctx.clock.now()
    ctx.update(lambda r: r.advance(Phase.CHECKED, now))
    return None


def _disable(ctx: RecoveryContext, deps: ProcessRecoveryDeps, hostname: str) -> Notification | None:
    compute = deps.compute()
    service = retry_transient(lambda: compute.service(hostname))
    decision = on_failure(service, ctx.uuid)
    if decision.action is ProcessAction.LEAVE:
        return ctx.finish(Status.IGNORED, decision.reason or Reason.DISABLED_BY_OPERATOR, decision.message)
    now = ctx.clock.now()
    if decision.action is ProcessAction.DISABLE:
        ctx.checkpoint()
        # Marked before the call: a resumed run must not mistake its own disable for an operator's.
        ctx.update(lambda r: r.mark(DISABLED_AT, iso(now), now))
        retry_transient(lambda: compute.disable(service, disable_reason(ctx.uuid)))
    elif DISABLED_AT not in ctx.record().marks:
        ctx.update(lambda r: r.mark(DISABLED_AT, iso(now), now))
    ctx.update(lambda r: r.advance(Phase.SERVICE_DISABLED, now))
    ctx.step(
        "nova",
        "succeeded",
        f"compute service of {hostname} disabled: {disable_reason(ctx.uuid)}; "
        "nothing new is scheduled there, its instances keep running",
    )
    _restart(ctx, deps.policy, hostname)
    return None


def _restart(ctx: RecoveryContext, policy: ProcessSettings, hostname: str) -> None:
    """The optional restart action (off by default): an operator-configured command."""
    if not policy.restart_command:
        return
    command = [part.replace("{host}", hostname) for part in policy.restart_command]
    try:
        result = subprocess.run(  # noqa: S603 - the operator's own configured command, no shell
            command, capture_output=True, timeout=policy.restart_timeout_s, check=False
        )
        outcome = f"exited {result.returncode}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        outcome = f"could not run: {type(exc).__name__}"
    ctx.step(
        "restart",
        "succeeded" if outcome == "exited 0" else "failed",
        f"restart action {command[0]} {outcome}",
    )


def _watch(ctx: RecoveryContext, deps: ProcessRecoveryDeps, hostname: str) -> Notification:
    compute = deps.compute()
    policy = deps.policy
    disabled_at = datetime.fromisoformat(ctx.record().marks[DISABLED_AT])
    deadline = ctx.clock.now() + timedelta(seconds=policy.recheck_window_s)
    while True:
        service = retry_transient(lambda: compute.service(hostname))
        decision = on_recheck(service, ctx.uuid, disabled_at)
        if decision.action is ProcessAction.REENABLE:
            return _reenable(ctx, compute, service, decision.message)
        if decision.action is ProcessAction.LEAVE:
            return ctx.finish(
                Status.FINISHED, decision.reason or Reason.CHANGED_BY_OPERATOR, decision.message
            )
        if ctx.clock.now() >= deadline:
            break
        ctx.clock.sleep(policy.poll_interval_s)
    now = ctx.clock.now()
    wake = now + timedelta(seconds=policy.recheck_interval_s)
    first = ctx.record().wake_at is None
    ctx.update(lambda r: r.sleep_until(wake, now))
    if first:
        ctx.step("wait", "started", f"{decision.message}; the record stays open until Nova reports it up")
    return ctx.record()


def _reenable(ctx: RecoveryContext, compute: Compute, service: ComputeService, why: str) -> Notification:
    ctx.checkpoint()
    retry_transient(lambda: compute.enable(service))
    now = ctx.clock.now()
    ctx.update(lambda r: r.advance(Phase.DONE, now).sleep_until(None, now))
    return ctx.finish(
        Status.FINISHED, Reason.COMPLETED, f"{why}; compute service of {service.host} enabled again"
    )
