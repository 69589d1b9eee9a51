"""The gates a host recovery passes before anything is fenced, cheapest and most absolute first.

1. Storm guard (safety rule 6): too many hosts at once means the observer is broken.
2. Re-verification: Nova (and Prometheus, when configured) must still say the host is down.
3. Shadow mode: record exactly what would be done, touch nothing.
4. Approval: required by settings, by the blast radius, or because the host has no fence
   method (then the operator's approval, with who and when, is the proof it is off).
Every refusal ends the record with a reason; a wait for approval keeps it open and visible.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from receiver.adapters.redis_inventory import HostView
from receiver.domain.alerts import NotificationType
from receiver.domain.events import EventKind
from receiver.domain.reasons import Reason
from receiver.domain.record import MoveStatus, Notification, Status, VMove, iso
from receiver.domain.storm import Population, StormPolicy, StormVerdict, judge_storm
from receiver.domain.verify import Signal, VerifyVerdict, judge_signals, nova_signal
from receiver.errors import LazarusError
from receiver.probe import describe_bmc
from receiver.workflow.context import RecoveryContext
from receiver.workflow.deps import HostRecoveryDeps
from receiver.workflow.preflight import CAPACITY_HOLD
from receiver.workflow.retry import retry_transient

log = logging.getLogger(__name__)

APPROVAL_REQUESTED = "approval_requested_at"
APPROVED_BY = "approved_by"
APPROVED_AT = "approved_at"
REJECTED_BY = "rejected_by"
REJECTED_AT = "rejected_at"
FENCE_FAILED = "fence_failed"  # every fence method failed; only an operator's confirmation can go on


def pre_fence(ctx: RecoveryContext, deps: HostRecoveryDeps, host: HostView) -> Notification | None:
    """Run the gates; None means: go ahead and fence."""
    storm = storm_verdict(ctx, deps, host)
    if not storm.allowed:
        log.error(
            "storm guard: fencing nothing", extra={"notification_uuid": ctx.uuid, "detail": storm.message}
        )
        return ctx.finish(Status.IGNORED, storm.reason or Reason.STORM_GUARD, storm.message)
    verdict = _reverify(ctx, deps, host)
    ctx.step("verify", "succeeded" if verdict.proceed else "failed", verdict.message)
    if not verdict.proceed:
        return ctx.finish(Status.IGNORED, verdict.reason or Reason.NOT_VERIFIED, verdict.message)
    moves = [m for m in ctx.record().vmoves if m.status is MoveStatus.PENDING]
    plan = _describe_plan(host, ctx.record(), moves)
    if deps.settings.shadow or host.segment.shadow:
        return _shadow(ctx, plan)
    why = _approval_needed(ctx, deps, host, moves)
    if why:
        return await_approval(ctx, deps, why, plan)
    return None


def storm_verdict(ctx: RecoveryContext, deps: HostRecoveryDeps, host: HostView) -> StormVerdict:
    """Safety rule 6, checked just before the fence; the fence budget is reserved atomically."""
    config = deps.settings.storm
    policy = StormPolicy(
        config.max_fences, config.window_s, config.max_down_share, config.cliff_count, config.cliff_window_s,
        config.cooldown_s,
    )  # fmt: skip
    now = ctx.clock.now()
    hosts = deps.inventory.hosts()
    recent = [r for r in ctx.store.recent(limit=500) if r.type is NotificationType.COMPUTE_HOST]
    down = _down_hosts(ctx, hosts, recent) | {host.spec.name}
    segment = [h.spec.name for h in hosts if h.segment.name == host.segment.name]
    populations = [
        Population(
            f"segment {host.segment.name}",
            len(down & set(segment)),
            len(segment),
            host.segment.max_down_share,
        ),
        Population("cloud", len(down & {h.spec.name for h in hosts}), len(hosts)),
    ]
    cliff_start = now - timedelta(seconds=config.cliff_window_s)
    opened = {
        r.hostname for r in recent
        if r.payload.get("event") == "STOPPED" and datetime.fromisoformat(r.created_at) >= cliff_start
    }  # fmt: skip
    held = ctx.store.storm_hold()

    def judge(fences: int) -> StormVerdict:
        return judge_storm(populations=populations, fences_in_window=fences, opened_recently=len(opened),
                           held_until=held, now=now, policy=policy)  # fmt: skip

    verdict = judge(0)
    if verdict.allowed:
        reserved, others = ctx.store.reserve_slot("fences", ctx.uuid, now, config.window_s, config.max_fences)
        if not reserved:
            verdict = judge(others)
    if verdict.trips and config.cooldown_s:
        ctx.store.hold_storm(now + timedelta(seconds=config.cooldown_s))
    return verdict


def _down_hosts(ctx: RecoveryContext, hosts: list[HostView], recent: list[Notification]) -> set[str]:
    """Hosts with an open host recovery, and hosts fenced and not yet reinstated."""
    fenced = {h.spec.name for h in hosts if h.on_maintenance and h.state.notification_uuid}
    open_ids = set(ctx.store.open_uuids())
    in_recovery = {r.hostname for r in recent if r.notification_uuid in open_ids and r.hostname}
    return fenced | in_recovery


def _reverify(ctx: RecoveryContext, deps: HostRecoveryDeps, host: HostView) -> VerifyVerdict:
    """Ask the signals again, for up to `verify.wait_s`: Nova lags the alert by its service_down_time."""
    policy = deps.settings.verify
    deadline = ctx.clock.now() + timedelta(seconds=policy.wait_s)
    while True:
        signals = _signals(ctx, deps, host)
        verdict = judge_signals(signals, policy.min_agree)
        if verdict.proceed or ctx.clock.now() >= deadline:
            return verdict
        ctx.clock.sleep(policy.poll_interval_s)


def _signals(ctx: RecoveryContext, deps: HostRecoveryDeps, host: HostView) -> list[Signal]:
    from receiver.adapters.prometheus import PrometheusAlerts

    policy = deps.settings.verify
    compute = deps.compute()
    try:
        service = retry_transient(lambda: compute.service(host.spec.name))
        signals = [nova_signal(service, ctx.clock.now(), policy.heartbeat_stale_s)]
    except LazarusError as exc:
        signals = [Signal("nova", None, f"could not ask Nova: {exc.message}")]
    if policy.prometheus_url:
        alertname = str(ctx.record().payload.get("alertname", ""))
        label = deps.settings.webhook.host_label
        try:
            firing = PrometheusAlerts(policy.prometheus_url).firing(alertname, label, host.spec.name)
            detail = f"{alertname} {'still firing' if firing else 'no longer firing'} in Prometheus"
            signals.append(Signal("prometheus", firing, detail))
        except LazarusError as exc:
            signals.append(Signal("prometheus", None, exc.message))
    return signals


def _describe_plan(host: HostView, record: Notification, moves: list[VMove]) -> str:
    methods = host.spec.fence_methods
    via = " then ".join(f"{m.driver} at {describe_bmc(m.driver, m.address, m.port)}" for m in methods)
    fence = (
        f"fence {host.spec.name} via {via}"
        if methods
        else f"fence {host.spec.name}: no fence method, an operator must confirm it is off"
    )
    names = ", ".join(
        f"{m.instance_name} ({m.prior_status}) to {m.target_host or 'the scheduler'}" for m in moves
    )
    left = sum(1 for m in record.vmoves if m.status is MoveStatus.IGNORED)
    tail = f"; {left} left out (see the plan)" if left else ""
    return (
        f"{fence}; force down and disable its compute service; "
        f"evacuate {len(moves)} instances: {names or 'none'}{tail}"
    )


def _shadow(ctx: RecoveryContext, plan: str) -> Notification:
    now = ctx.clock.now()

    def would(r: Notification) -> Notification:
        for move in r.vmoves:
            if move.status is MoveStatus.PENDING:
                where = move.target_host or "a host of the scheduler's choice"
                message = f"shadow mode: would evacuate to {where}"
                r = r.with_vmove(replace(move, status=MoveStatus.IGNORED, message=message), now)
        return r

    ctx.update(would)
    ctx.step("shadow", "skipped", f"shadow mode, nothing touched; would {plan}")
    return ctx.finish(Status.FINISHED, Reason.SHADOW_MODE, f"shadow mode: would {plan}")


def _approval_needed(
    ctx: RecoveryContext, deps: HostRecoveryDeps, host: HostView, moves: list[VMove]
) -> str | None:
    """Why a human must say yes first, or None. Every reason that applies is given: one
    approval answers them all, so the operator must see them all."""
    policy = deps.settings.approval
    open_now = ctx.store.count_open()
    reasons = [
        (
            not host.spec.fence_methods,
            "the host has no fence method: an operator must confirm it is powered off",
        ),
        (
            FENCE_FAILED in ctx.record().marks,
            "every fence method failed: an operator must confirm it is powered off",
        ),
        (policy.required, "approval is required for every host recovery"),
        (
            host.segment.requires_approval,
            f"segment {host.segment.name} requires approval for every host recovery",
        ),
        (
            bool(policy.max_instances) and len(moves) > policy.max_instances,
            f"{len(moves)} instances to evacuate (more than {policy.max_instances})",
        ),
        (
            CAPACITY_HOLD in ctx.record().marks,
            f"the capacity plan falls short and segment {host.segment.name} holds for approval: "
            f"{ctx.record().marks.get(CAPACITY_HOLD, '')}",
        ),
        (
            bool(policy.max_hosts_in_flight) and open_now > policy.max_hosts_in_flight,
            f"{open_now} recoveries in flight (more than {policy.max_hosts_in_flight})",
        ),
    ]
    applying = [why for applies, why in reasons if applies]
    return "; and ".join(applying) or None


def await_approval(ctx: RecoveryContext, deps: HostRecoveryDeps, why: str, plan: str) -> Notification | None:
    record = ctx.record()
    marks = record.marks
    if APPROVED_BY in marks:
        ctx.step("approval", "succeeded", f"approved by {marks[APPROVED_BY]} at {marks[APPROVED_AT]} ({why})")
        return None
    if REJECTED_BY in marks:
        return ctx.finish(
            Status.IGNORED,
            Reason.APPROVAL_REJECTED,
            f"rejected by {marks[REJECTED_BY]} at {marks[REJECTED_AT]}; nothing was touched",
        )
    now = ctx.clock.now()
    if APPROVAL_REQUESTED in marks:
        expires = datetime.fromisoformat(marks[APPROVAL_REQUESTED]) + timedelta(
            seconds=deps.settings.approval.expire_s
        )
        if now >= expires:
            return ctx.finish(
                Status.FAILED,
                Reason.APPROVAL_EXPIRED,
                f"nobody approved within {deps.settings.approval.expire_s:.0f}s; nothing was touched",
            )
        return ctx.update(lambda r: r.sleep_until(expires, now))
    expires = now + timedelta(seconds=deps.settings.approval.expire_s)
    message = f"waiting for approval ({why})" + (f": would {plan}" if plan else "")
    record = ctx.update(
        lambda r: (
            r.mark(APPROVAL_REQUESTED, iso(now), now)
            .sleep_until(expires, now)
            .with_reason(Reason.AWAITING_APPROVAL.value, message, now)
        )
    )
    record = ctx.step("approval", "started", message)
    ctx.publish(EventKind.NEEDS_APPROVAL, record)
    return record


def forget_approval(record: Notification, now: datetime) -> Notification:
    """Drop an earlier approval so the next question is asked anew."""
    for name in (APPROVAL_REQUESTED, APPROVED_BY, APPROVED_AT):
        record = record.unmark(name, now)
    return record
