"""Moving a fenced host's instances: evacuate each, confirm it runs elsewhere, record it.

Write-ahead: a move is recorded `ongoing` *before* the evacuate call, so a worker killed
at any point leaves evidence; `resume_action` then decides from Nova's own records whether
the call was accepted, and an instance is never evacuated twice.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta

from receiver.domain.evacuation import MoveVerdict, ResumeAction, judge_move, resume_action
from receiver.domain.model import Migration, Server
from receiver.domain.record import MoveStatus, VMove, iso
from receiver.errors import ComputeError, ComputeRejected, NotFound
from receiver.ports import Compute
from receiver.settings import EvacuationSettings
from receiver.workflow.context import LeaseLost, RecoveryContext
from receiver.workflow.retry import retry_transient

log = logging.getLogger(__name__)

EVACUATE_ATTEMPTS = 3


def plan_moves(servers: list[Server], source_host: str) -> list[VMove]:
    """One pending move per instance on the host, remembering its power state to restore."""
    return [
        VMove(
            instance_uuid=s.id,
            instance_name=s.name,
            source_host=source_host,
            prior_status="SHUTOFF" if s.status.upper() == "SHUTOFF" else "ACTIVE",
        )
        for s in servers
    ]


def run_moves(
    ctx: RecoveryContext, compute: Compute, policy: EvacuationSettings, source_host: str
) -> list[VMove]:
    """Drive every unfinished move to an end, `concurrency` at a time."""
    record = ctx.record()
    todo = [m for m in record.vmoves if m.status in (MoveStatus.PENDING, MoveStatus.ONGOING)]
    migrations: list[Migration] | None = None
    if any(m.status is MoveStatus.ONGOING for m in todo):
        migrations = retry_transient(lambda: compute.evacuations(source_host))
    with ThreadPoolExecutor(max_workers=policy.concurrency, thread_name_prefix="evacuate") as pool:
        futures = [pool.submit(_drive, ctx, compute, policy, move, migrations or []) for move in todo]
        for future in futures:
            future.result()  # re-raises LeaseLost and programming errors
    return list(ctx.record().vmoves)


def _drive(
    ctx: RecoveryContext,
    compute: Compute,
    policy: EvacuationSettings,
    move: VMove,
    migrations: list[Migration],
) -> None:
    try:
        server = retry_transient(lambda: compute.server(move.instance_uuid))
    except NotFound:
        _end(ctx, move, MoveStatus.IGNORED, None, "instance no longer exists")
        return
    except ComputeError as exc:
        _end(ctx, move, MoveStatus.FAILED, None, f"cannot read instance: {_describe(exc)}")
        return
    action = resume_action(move, server, migrations)
    if action is ResumeAction.SKIP:
        return
    started = ctx.clock.now()
    if action is ResumeAction.EVACUATE:
        move = replace(move, status=MoveStatus.ONGOING, start_time=iso(started))
        ctx.update(lambda r: r.with_vmove(move, started))
        ctx.checkpoint()
        try:
            _evacuate_once(compute, move)
        except ComputeError as exc:
            _end(ctx, move, MoveStatus.FAILED, None, f"evacuate refused: {_describe(exc)}")
            return
        ctx.step(
            "evacuate",
            "started",
            f"evacuating {move.instance_name} ({move.instance_uuid}) from {move.source_host}",
            instance=move.instance_uuid,
        )
    else:
        ctx.step(
            "evacuate",
            "started",
            f"resuming watch of {move.instance_uuid}: Nova already has the evacuation",
            instance=move.instance_uuid,
        )
    _watch(ctx, compute, policy, move)


def _watch(ctx: RecoveryContext, compute: Compute, policy: EvacuationSettings, move: VMove) -> None:
    begun = datetime.fromisoformat(move.start_time) if move.start_time else ctx.clock.now()
    deadline = max(begun, ctx.clock.now() - timedelta(seconds=1)) + timedelta(seconds=policy.timeout_s)
    started_it = False
    while True:
        try:
            server = retry_transient(lambda: compute.server(move.instance_uuid))
        except ComputeError as exc:
            _end(ctx, move, MoveStatus.FAILED, None, f"lost sight of the instance: {_describe(exc)}")
            return
        judgement = judge_move(move, server, ctx.clock.now(), deadline)
        if judgement.verdict is MoveVerdict.DONE:
            _end(ctx, move, MoveStatus.SUCCEEDED, server.host, judgement.message)
            return
        if judgement.verdict is MoveVerdict.FAILED:
            _end(ctx, move, MoveStatus.FAILED, server.host, judgement.message)
            return
        if judgement.verdict is MoveVerdict.NEEDS_START and not started_it:
            ctx.checkpoint()
            try:
                retry_transient(lambda: compute.start(move.instance_uuid))
            except ComputeError as exc:
                # 409: already started (a retried start whose first try went through); keep watching.
                if not (isinstance(exc, ComputeRejected) and exc.status == 409):
                    message = f"start after evacuation failed: {_describe(exc)}"
                    _end(ctx, move, MoveStatus.FAILED, server.host, message)
                    return
            started_it = True
            ctx.step(
                "evacuate",
                "progress",
                f"{move.instance_uuid} {judgement.message}",
                instance=move.instance_uuid,
            )
        ctx.clock.sleep(policy.poll_interval_s)


def _evacuate_once(compute: Compute, move: VMove) -> None:
    """Send the evacuation; after a transient error, ask Nova whether it took it before resending.

    A timeout may hide an accepted request: sending it again would be a second evacuation.
    """
    for attempt in range(1, EVACUATE_ATTEMPTS + 1):
        try:
            compute.evacuate(move.instance_uuid)
            return
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
                return


def _end(ctx: RecoveryContext, move: VMove, status: MoveStatus, dest: str | None, message: str) -> None:
    now = ctx.clock.now()
    final = replace(move, status=status, dest_host=dest, end_time=iso(now), message=message)
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


def _describe(exc: ComputeError) -> str:
    parts = [exc.message]
    if exc.request_id and exc.request_id not in exc.message:
        parts.append(f"request {exc.request_id}")
    return "; ".join(parts)


__all__ = ["LeaseLost", "plan_moves", "run_moves"]
