"""Host recovery: check -> fence -> force down -> disable -> evacuate -> confirm.

Each phase is recorded when its effect is proven, and skipped on resume when the record
says it is done, so a killed worker's successor continues where it stopped. Safety rules:
no Nova write before the fence is proven (rule 1), forced_down before disable before any
evacuation (rule 2).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from receiver.domain.diagnosis import diagnose, outcomes_from_vmoves
from receiver.domain.evacuation import SCHEDULER, judge_outcome, next_target
from receiver.domain.model import ComputeService
from receiver.domain.placement import ROUTES, Plan
from receiver.domain.reasons import Reason
from receiver.domain.record import STOPPED, FenceAttempt, MoveStatus, Notification, Phase, Status, VMove, iso
from receiver.errors import ComputeError, ComputeRejected, ConfigError, NotFound
from receiver.inventory import BmcSpec
from receiver.ports import Compute
from receiver.workflow import gates, preflight
from receiver.workflow.context import RecoveryContext
from receiver.workflow.deps import HostRecoveryDeps
from receiver.workflow.evacuation import MoveRules, run_moves
from receiver.workflow.fencing import fence
from receiver.workflow.retry import retry_transient
from receiver.workflow.spares import SparePool

log = logging.getLogger(__name__)


def disable_reason(uuid: str) -> str:
    # The reason names the record, so an operator looking at Nova knows who did this and why.
    return f"lazarus: host failure, recovery {uuid}"


def run(ctx: RecoveryContext, deps: HostRecoveryDeps) -> Notification:
    record = ctx.record()
    resumed = record.status is Status.RUNNING
    begun = ctx.begin(lambda r: f"recovery of host {r.hostname} started")
    if begun is None:
        return record
    record = begun
    if resumed:
        ctx.step(
            "recovery",
            "resumed",
            f"recovery resumed at phase {record.phase.value} (attempt {record.attempt})",
        )
    hostname = record.hostname or ""
    ctx.annotate = _with_diagnosis
    # Each phase runs only if the record does not already prove it done (resume).
    for proven_by, phase_step in _PHASES:
        if not ctx.record().reached(proven_by):
            ended = phase_step(ctx, deps, hostname)
            if ended is not None:
                return ended
    compute = deps.compute()
    moves = run_moves(ctx, compute, _move_rules(ctx, deps, hostname), hostname)
    now = ctx.clock.now()
    ctx.update(lambda r: r.advance(Phase.DONE, now))
    status, reason, message = judge_outcome(moves, hostname)
    return ctx.finish(status, reason, message)


def _move_rules(ctx: RecoveryContext, deps: HostRecoveryDeps, hostname: str) -> MoveRules:
    record = ctx.record()
    routes = _routes(record)
    planned = [str(s) for s in (record.plan or {}).get("spares_used", ())]
    spares = SparePool(ctx, deps, hostname, planned, taken=True) if "reserved_host" in routes else None
    return MoveRules(deps.settings.evacuation, routes, spares, lock_reason(ctx.uuid))


def _routes(record: Notification) -> tuple[str, ...]:
    """The recovery method's routes, in order (a record from before plans: auto)."""
    method = str((record.plan or {}).get("method", "auto"))
    return tuple(r.value for r in ROUTES.get(method, ROUTES["auto"]))


def lock_reason(uuid: str) -> str:
    return f"lazarus: evacuating off a failed host, recovery {uuid}"


def _with_diagnosis(record: Notification, status: Status, reason: str, message: str) -> Notification:
    """Every ended host recovery carries a diagnosis: what moved, and why the rest did not."""
    at = datetime.fromisoformat(record.updated_at)
    record = record.stop_pending(reason, at)
    if status not in (Status.FINISHED, Status.FAILED):
        return record
    plan = Plan.from_dict(record.plan) if record.plan else None
    diagnosis = diagnose(
        host=record.hostname or "",
        plan=plan,
        outcomes=outcomes_from_vmoves([m for m in record.vmoves if m.reason in (None, STOPPED)]),
        stopped_reason=reason,
        stopped_message=message,
    )
    return record.with_diagnosis(diagnosis.to_dict(), at)


def _check(ctx: RecoveryContext, deps: HostRecoveryDeps, hostname: str) -> Notification | None:
    record = ctx.record()
    host = deps.inventory.host(hostname)
    if host is None:
        return ctx.finish(
            Status.IGNORED,
            Reason.HOST_NOT_IN_INVENTORY,
            f"host {record.hostname} is not in the inventory; nothing was touched",
        )
    if host.on_maintenance and host.state.notification_uuid != record.notification_uuid:
        return ctx.finish(
            Status.IGNORED,
            Reason.HOST_ON_MAINTENANCE,
            f"host {host.spec.name} is on maintenance ({host.state.reason}); nothing was touched",
        )
    if not host.segment.enabled:
        return ctx.finish(
            Status.IGNORED,
            Reason.SEGMENT_DISABLED,
            f"segment {host.segment.name} is disabled; nothing was touched",
        )
    now = ctx.clock.now()
    ctx.update(lambda r: r.advance(Phase.CHECKED, now))
    ctx.update(lambda r: _with_host_ids(r, host.spec.uuid, host.segment.uuid))
    ctx.step(
        "check",
        "succeeded",
        f"host {host.spec.name} is in segment {host.segment.name} "
        f"({host.segment.recovery_method.value}), not on maintenance",
    )
    return None


def _with_host_ids(record: Notification, host_uuid: str, segment_uuid: str) -> Notification:
    return replace(record, source_host_uuid=host_uuid, failover_segment_uuid=segment_uuid)


def _preflight(ctx: RecoveryContext, deps: HostRecoveryDeps, hostname: str) -> Notification | None:
    """The capacity plan, before anything is fenced (reads only)."""
    host = deps.inventory.host(hostname)
    if host is None:
        return ctx.finish(Status.FAILED, Reason.HOST_NOT_IN_INVENTORY, f"host {hostname} left the inventory")
    try:
        preflight.run(ctx, deps, host)
    except ComputeError as exc:
        return _nova_failure(ctx, exc, f"planning where the instances of {hostname} go")
    now = ctx.clock.now()
    ctx.update(lambda r: r.advance(Phase.PLANNED, now))
    return None


def _fence(ctx: RecoveryContext, deps: HostRecoveryDeps, hostname: str) -> Notification | None:
    host = deps.inventory.host(hostname)
    if host is None:
        return ctx.finish(Status.FAILED, Reason.HOST_NOT_IN_INVENTORY, f"host {hostname} left the inventory")
    waiting_or_refused = gates.pre_fence(ctx, deps, host)
    if waiting_or_refused is not None:
        return waiting_or_refused
    methods = host.spec.fence_methods
    if not methods or gates.FENCE_FAILED in ctx.record().marks:
        # Only reachable through an approval: the operator's word, with who and when, is the proof.
        _record_operator_confirmation(ctx, hostname)
    else:
        refusal = _escalate(ctx, deps, hostname, methods)
        if refusal is not None:
            return refusal
    now = ctx.clock.now()
    # The host is off and stays out of service until an operator reinstates it (rule 5).
    deps.inventory.set_maintenance(hostname, f"fenced by recovery {ctx.uuid}", ctx.uuid, now)
    ctx.update(lambda r: r.advance(Phase.FENCED, now).sleep_until(None, now))
    return None


def _escalate(
    ctx: RecoveryContext, deps: HostRecoveryDeps, hostname: str, methods: list[BmcSpec]
) -> Notification | None:
    """Try each fence method in order until one proves the host off; every attempt is recorded."""
    failures: list[str] = []
    last_reason: Reason = Reason.NO_FENCE_METHOD
    for index, method in enumerate(methods, start=1):
        try:
            target = method.target(hostname)
        except ConfigError as exc:
            failures.append(f"method {index} ({method.driver}): {exc.message}")
            last_reason = Reason.FENCE_CONFIG_INVALID
            continue
        result = fence(ctx, deps.power(target.driver), target, deps.settings.fencing)
        if result.confirmed_off:
            return None
        failures.append(f"method {index} ({method.driver}): {result.message}")
        last_reason = result.reason or Reason.POWER_STILL_ON
        if index < len(methods):
            ctx.step(
                "fence",
                "escalating",
                f"{method.driver} could not prove {hostname} off; trying the next method",
            )
    message = "fencing failed, nothing evacuated: " + "; ".join(failures)
    if deps.settings.approval.on_fence_failure:
        # The recovery stops here (rule 1) and asks a human: only their confirmation that the
        # host is off, recorded with who and when, can stand in for the BMC's.
        now = ctx.clock.now()
        # A new question: an approval given earlier (say, for the blast radius) never answers it.
        ctx.update(lambda r: gates.forget_approval(r.mark(gates.FENCE_FAILED, last_reason.value, now), now))
        return gates.await_approval(ctx, deps, f"{message}; an operator must confirm it is powered off", "")
    return ctx.finish(Status.FAILED, last_reason, message)


def _record_operator_confirmation(ctx: RecoveryContext, hostname: str) -> None:
    marks = ctx.record().marks
    now = ctx.clock.now()
    evidence = FenceAttempt(
        method="operator",
        bmc="-",
        power_before="unknown",
        power_after="off",
        started_at=marks[gates.APPROVED_AT],
        ended_at=iso(now),
        outcome="operator_confirmed_off",
        message=f"{marks[gates.APPROVED_BY]} confirmed {hostname} is powered off "
        f"(approval at {marks[gates.APPROVED_AT]})",
    )
    ctx.update(lambda r: r.with_fence_attempt(evidence, now))
    ctx.step("fence", "succeeded", evidence.message)


def _tell_nova(ctx: RecoveryContext, deps: HostRecoveryDeps, hostname: str) -> Notification | None:
    compute = deps.compute()
    try:
        service = retry_transient(lambda: compute.service(hostname))
        if not ctx.record().reached(Phase.NOVA_FORCED_DOWN):
            service = _force_down(ctx, compute, service)
        if service.status != "disabled":
            ctx.checkpoint()
            retry_transient(lambda: compute.disable(service, disable_reason(ctx.uuid)))
        now = ctx.clock.now()
        ctx.update(lambda r: r.advance(Phase.NOVA_DISABLED, now))
        ctx.step("nova", "succeeded", f"compute service of {hostname} disabled: {disable_reason(ctx.uuid)}")
    except NotFound:
        return ctx.finish(
            Status.FAILED,
            Reason.SERVICE_NOT_FOUND,
            f"Nova has no nova-compute service on {hostname}; the host stays fenced",
        )
    except ComputeError as exc:
        return _nova_failure(ctx, exc, f"telling Nova that {hostname} is down")
    return None


def _force_down(ctx: RecoveryContext, compute: Compute, service: ComputeService) -> ComputeService:
    if not service.forced_down:
        ctx.checkpoint()
        service = retry_transient(lambda: compute.force_down(service))
    now = ctx.clock.now()
    ctx.update(lambda r: r.advance(Phase.NOVA_FORCED_DOWN, now))
    ctx.step("nova", "succeeded", f"compute service of {service.host} forced down")
    return service


def _prepare(ctx: RecoveryContext, deps: HostRecoveryDeps, hostname: str) -> Notification | None:
    """The host is off and Nova knows: take the plan's spares into service, add instances that
    appeared since the plan, then evacuate."""
    compute = deps.compute()
    try:
        servers = retry_transient(lambda: compute.servers_on(hostname))
    except ComputeError as exc:
        return _nova_failure(ctx, exc, f"listing instances on {hostname}")
    record = ctx.record()
    late = preflight.late_moves(ctx, deps, [s for s in servers if record.vmove(s.id) is None], hostname)
    planned = [str(s) for s in (record.plan or {}).get("spares_used", ())]
    pool = SparePool(ctx, deps, hostname, planned, taken=False)
    for spare in planned:
        pool.prepare(spare)
    unusable = pool.unusable()
    routes = _routes(record)
    ready = [s for s in planned if s not in unusable]
    now = ctx.clock.now()

    def record_moves(r: Notification) -> Notification:
        for move in late:
            r = r.with_vmove(move, now)
        for move in r.vmoves:
            if move.status is MoveStatus.PENDING and move.target_host in unusable:
                r = r.with_vmove(_retarget(move, routes, ready), now)
        return r.advance(Phase.EVACUATING, now)

    record = ctx.update(record_moves)
    pending = [m for m in record.vmoves if m.status is MoveStatus.PENDING]
    if not pending and not any(m.status is MoveStatus.FAILED for m in record.vmoves):
        status, reason, message = judge_outcome(list(record.vmoves), hostname)
        return ctx.finish(status, reason, message)
    names = ", ".join(m.instance_name for m in pending)
    ctx.step("evacuate", "ready", f"{len(pending)} instances to evacuate from {hostname}: {names}")
    return None


def _retarget(move: VMove, routes: tuple[str, ...], ready: list[str]) -> VMove:
    """A move whose planned spare could not be taken into service: the next target the method
    offers, else left out with the reason."""
    option = next_target({move.target_host or SCHEDULER}, routes, ready)
    why = f"planned spare {move.target_host} could not be taken into service"
    if option is None:
        message = f"not attempted: {why} and the method offers no other target"
        return replace(move, status=MoveStatus.IGNORED, reason=Reason.NO_FREE_SPARE.value, message=message)
    target, route = option
    return replace(move, target_host=target, route=route, message=why)


def _nova_failure(ctx: RecoveryContext, exc: ComputeError, doing: str) -> Notification:
    reason = Reason.COMPUTE_REJECTED if isinstance(exc, ComputeRejected) else Reason.COMPUTE_UNAVAILABLE
    request = f" (request {exc.request_id})" if exc.request_id else ""
    return ctx.finish(Status.FAILED, reason, f"Nova failed while {doing}: {exc.message}{request}")


_PhaseStep = Callable[[RecoveryContext, HostRecoveryDeps, str], Notification | None]
_PHASES: tuple[tuple[Phase, _PhaseStep], ...] = (
    (Phase.CHECKED, _check),
    (Phase.PLANNED, _preflight),
    (Phase.FENCED, _fence),
    (Phase.NOVA_DISABLED, _tell_nova),
    (Phase.EVACUATING, _prepare),
)
