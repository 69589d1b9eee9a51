"""Moving a fenced host's instances: evacuate each, confirm it runs elsewhere, record it.

Write-ahead: a move is recorded `ongoing` *before* the evacuate call, so a worker killed
at any point leaves evidence; `resume_action` then decides from Nova's own records whether
the call was accepted, and an instance is never evacuated twice.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial

from receiver.domain.evacuation import (
    SCHEDULER,
    MoveVerdict,
    ResumeAction,
    judge_move,
    resume_action,
    retry_target,
)
from receiver.domain.model import Migration, Server
from receiver.domain.record import MoveStatus, Notification, VMove, iso
from receiver.errors import ComputeError, ComputeRejected, NotFound
from receiver.ports import Compute
from receiver.settings import EvacuationSettings
from receiver.workflow.context import LeaseLost, RecoveryContext
from receiver.workflow.retry import retry_transient
from receiver.workflow.spares import SparePool

log = logging.getLogger(__name__)

EVACUATE_ATTEMPTS = 3


@dataclass(frozen=True)
class MoveRules:
    """How moves are driven: the settings, the method's routes and where a retry may go."""

    policy: EvacuationSettings
    routes: tuple[str, ...]
    spares: SparePool | None = None  # None: the method uses no reserved spares
    lock_reason: str = ""


def run_moves(ctx: RecoveryContext, compute: Compute, rules: MoveRules, source_host: str) -> list[VMove]:
    """Drive every unfinished move to an end, `concurrency` at a time; unlock what we locked."""
    record = ctx.record()
    todo = [m for m in record.vmoves if m.status in (MoveStatus.PENDING, MoveStatus.ONGOING)]
    migrations: list[Migration] | None = None
    if any(m.status is MoveStatus.ONGOING for m in todo):
        migrations = retry_transient(lambda: compute.evacuations(source_host))
    with ThreadPoolExecutor(max_workers=rules.policy.concurrency, thread_name_prefix="evacuate") as pool:
        futures = [pool.submit(_drive, ctx, compute, rules, move, migrations or []) for move in todo]
        for future in futures:
            future.result()  # re-raises LeaseLost and programming errors
    # A move ended by an earlier worker (killed before its unlock) is unlocked here.
    for move in ctx.record().vmoves:
        if move.locked_by_us and move.status not in (MoveStatus.PENDING, MoveStatus.ONGOING):
            _unlock(ctx, compute, move)
    return list(ctx.record().vmoves)


def _drive(
    ctx: RecoveryContext, compute: Compute, rules: MoveRules, move: VMove, migrations: list[Migration]
) -> None:
    try:
        server = retry_transient(lambda: compute.server(move.instance_uuid))
    except NotFound:
        _end(ctx, move, MoveStatus.IGNORED, None, "instance no longer exists")
        return
    except ComputeError as exc:
        _end(ctx, move, MoveStatus.FAILED, None, f"cannot read instance: {exc.described}")
        return
    action = resume_action(move, server, migrations)
    if action is ResumeAction.SKIP:
        return
    lease_lost = False
    try:
        while True:
            if action is ResumeAction.EVACUATE:
                move = _lock(ctx, compute, rules, move, server)
                move = _send(ctx, compute, move)
            else:
                ctx.step(
                    "evacuate",
                    "started",
                    f"resuming watch of {move.instance_uuid}: Nova already has the evacuation",
                    instance=move.instance_uuid,
                )
            if move.status is MoveStatus.ONGOING:
                move = _watch(ctx, compute, rules.policy, move)
            if move.status is not MoveStatus.FAILED:
                return
            retried = _retry(ctx, compute, rules, move)
            if retried is None:
                return
            move, server = retried
            action = ResumeAction.EVACUATE
    except LeaseLost:
        lease_lost = True  # another worker owns the record now: touch nothing, it unlocks
        raise
    finally:
        # Unlocked whatever happens: done, failed, aborted or a bug.
        current = None if lease_lost else ctx.record().vmove(move.instance_uuid)
        if current is not None and current.locked_by_us:
            _unlock(ctx, compute, current)


_OPEN_MOVES = (MoveStatus.PENDING, MoveStatus.ONGOING)


def _send(ctx: RecoveryContext, compute: Compute, move: VMove) -> VMove:
    """Write the move ahead as ongoing, then send the evacuation to its target."""
    started = ctx.clock.now()
    move = replace(move, status=MoveStatus.ONGOING, start_time=iso(started), attempts=move.attempts + 1)
    ctx.update(lambda r: r.with_vmove(move, started))
    ctx.checkpoint()
    try:
        request_id = _evacuate_once(compute, move)
    except ComputeError as exc:
        return _end(ctx, move, MoveStatus.FAILED, None, f"evacuate refused: {exc.described}")
    if request_id is not None:
        move = replace(move, request_id=request_id)
        ctx.update(lambda r: r.with_vmove(move, ctx.clock.now()))
    where = f"to {move.target_host}" if move.target_host else "(the scheduler chooses)"
    ctx.step(
        "evacuate",
        "started",
        f"evacuating {move.instance_name} ({move.instance_uuid}) from {move.source_host} {where}",
        instance=move.instance_uuid,
    )
    return move


def _retry(
    ctx: RecoveryContext, compute: Compute, rules: MoveRules, move: VMove
) -> tuple[VMove, Server] | None:
    """Another attempt for a failed move, on another target where the method allows; None: done."""
    try:
        server = retry_transient(lambda: compute.server(move.instance_uuid))
    except ComputeError:
        return None
    while True:
        spares = rules.spares.options() if rules.spares is not None else ()
        decision = retry_target(
            move, server, max_attempts=rules.policy.max_attempts, routes=rules.routes, spares=spares
        )
        if not decision.retry:
            if move.attempts > 1 or rules.policy.max_attempts > 1:
                ctx.step(
                    "evacuate",
                    "failed",
                    f"{move.instance_name}: {decision.message}",
                    instance=move.instance_uuid,
                )
            return None
        pool = rules.spares
        if decision.target is not None and pool is not None and pool.prepare(decision.target) is not None:
            continue  # that spare is no longer offered: decide again
        break
    tried = (*move.tried_hosts, move.target_host or SCHEDULER)
    retried = replace(
        move,
        status=MoveStatus.PENDING,
        target_host=decision.target,
        route=decision.route,
        tried_hosts=tried,
        message=f"{decision.message} after: {move.message}",
        request_id=None,  # the next attempt's request is another one
    )
    now = ctx.clock.now()
    ctx.update(lambda r: r.with_vmove(retried, now))
    ctx.step("evacuate", "retrying", f"{move.instance_name}: {retried.message}", instance=move.instance_uuid)
    return retried, server


def _lock(ctx: RecoveryContext, compute: Compute, rules: MoveRules, move: VMove, server: Server) -> VMove:
    """Lock the instance for its move (its owner cannot act on it meanwhile). Written ahead, so a
    killed worker's successor unlocks it. A lock someone else set is left alone, then and after."""
    if not rules.policy.lock_instances or move.locked_by_us:
        return move
    if server.locked:
        reason = f" ({server.locked_reason})" if server.locked_reason else ""
        ctx.step("lock", "skipped", f"{move.instance_name} was already locked{reason}; left as it is")
        return move
    now = ctx.clock.now()
    move = replace(move, locked_by_us=True)
    ctx.update(lambda r: r.with_vmove(move, now))
    ctx.checkpoint()
    try:
        retry_transient(lambda: compute.lock(move.instance_uuid, rules.lock_reason))
    except ComputeError as exc:
        # A lock is a courtesy to the owner, not a safety condition: the move goes on.
        ctx.step("lock", "failed", f"could not lock {move.instance_name}: {exc.described}")
        if isinstance(exc, ComputeRejected):
            # Nova refused it, so no lock of ours exists: the record must not claim one (nor
            # tell the operator to unlock by hand). A timeout may hide a lock: that one stays.
            move = replace(move, locked_by_us=False)
            refused = ctx.clock.now()
            ctx.update(lambda r: _unlocked(r, move.instance_uuid, refused))
    return move


def _unlock(ctx: RecoveryContext, compute: Compute, move: VMove) -> None:
    try:
        retry_transient(lambda: compute.unlock(move.instance_uuid))
    except NotFound:
        pass
    except ComputeError as exc:
        ctx.step(
            "lock", "failed", f"could not unlock {move.instance_name}: {exc.described}; unlock it by hand"
        )
        return
    now = ctx.clock.now()
    ctx.update(lambda r: _unlocked(r, move.instance_uuid, now))
    ctx.step("lock", "succeeded", f"{move.instance_name} unlocked")


def _unlocked(record: Notification, instance: str, now: datetime) -> Notification:
    current = record.vmove(instance)
    return record if current is None else record.with_vmove(replace(current, locked_by_us=False), now)


_POWER_FIXES = {MoveVerdict.NEEDS_START: "start", MoveVerdict.NEEDS_STOP: "stop"}


def _watch(ctx: RecoveryContext, compute: Compute, policy: EvacuationSettings, move: VMove) -> VMove:
    begun = datetime.fromisoformat(move.start_time) if move.start_time else ctx.clock.now()
    deadline = max(begun, ctx.clock.now() - timedelta(seconds=1)) + timedelta(seconds=policy.timeout_s)
    started_it = False
    while True:
        try:
            server = retry_transient(lambda: compute.server(move.instance_uuid))
        except ComputeError as exc:
            return _end(ctx, move, MoveStatus.FAILED, None, f"lost sight of the instance: {exc.described}")
        judgement = judge_move(move, server, ctx.clock.now(), deadline)
        if judgement.verdict is MoveVerdict.DONE:
            return _end(ctx, move, MoveStatus.SUCCEEDED, server.host, judgement.message)
        if judgement.verdict is MoveVerdict.FAILED:
            return _end(ctx, move, MoveStatus.FAILED, server.host, judgement.message)
        power = _POWER_FIXES.get(judgement.verdict)
        if power is not None and not started_it:
            ctx.checkpoint()
            action = compute.start if judgement.verdict is MoveVerdict.NEEDS_START else compute.stop
            try:
                retry_transient(partial(action, move.instance_uuid))
            except ComputeError as exc:
                # 409: already in that state (a retried call whose first try went through); keep watching.
                if not (isinstance(exc, ComputeRejected) and exc.status == 409):
                    message = f"{power} after evacuation failed: {exc.described}"
                    return _end(ctx, move, MoveStatus.FAILED, server.host, message)
            started_it = True
            ctx.step(
                "evacuate",
                "progress",
                f"{move.instance_uuid} {judgement.message}",
                instance=move.instance_uuid,
            )
        ctx.clock.sleep(policy.poll_interval_s)


def _evacuate_once(compute: Compute, move: VMove) -> str | None:
    """Send the evacuation; after a transient error, ask Nova whether it took it before resending.
    Returns Nova's request id, when it answered.

    A timeout may hide an accepted request: sending it again would be a second evacuation.
    """
    for attempt in range(1, EVACUATE_ATTEMPTS + 1):
        try:
            return compute.evacuate(move.instance_uuid, move.target_host)
        except ComputeError as exc:
            if not exc.retryable or attempt == EVACUATE_ATTEMPTS:
                raise
            log.warning(
                "evacuate call failed, checking Nova before any resend",
                extra={"instance": move.instance_uuid, "error": exc.message},
            )
            try:
                server = retry_transient(lambda: compute.server(move.instance_uuid))
                migrations = retry_transient(
                    lambda: compute.evacuations(move.source_host, move.instance_uuid)
                )
            except ComputeError:
                raise exc from None
            if resume_action(move, server, migrations) is ResumeAction.MONITOR:
                return None
    raise AssertionError("unreachable: the last attempt returns or raises")


def _end(ctx: RecoveryContext, move: VMove, status: MoveStatus, dest: str | None, message: str) -> VMove:
    now = ctx.clock.now()
    current = ctx.record().vmove(move.instance_uuid)
    locked = current.locked_by_us if current is not None else move.locked_by_us
    final = replace(
        move, status=status, dest_host=dest, end_time=iso(now), message=message, locked_by_us=locked
    )
    ctx.update(lambda r: r.with_vmove(final, now))
    state = (
        "succeeded"
        if status is MoveStatus.SUCCEEDED
        else ("skipped" if status is MoveStatus.IGNORED else "failed")
    )
    took = (now - datetime.fromisoformat(move.start_time)).total_seconds() if move.start_time else 0.0
    ctx.step(
        "evacuate",
        state,
        f"{move.instance_name} ({move.instance_uuid}): {message}"
        + (f" in {took:.1f}s" if move.start_time else ""),
        instance=move.instance_uuid,
        dest_host=dest,
    )
    if status in (MoveStatus.SUCCEEDED, MoveStatus.FAILED):
        ctx.metrics.evacuation_ended(status.value, took)
    return final


__all__ = ["LeaseLost", "MoveRules", "run_moves"]
