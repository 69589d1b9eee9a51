"""Judging an instance's move off a dead host from what Nova reports. Pure functions.

A move is done when the instance runs on another host in the power state it had before
(ACTIVE stays ACTIVE, SHUTOFF stays SHUTOFF). Nova >= 2.95 leaves evacuated servers
stopped: an ACTIVE instance that arrives SHUTOFF needs a start, not a verdict of failure.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from receiver.domain.model import Migration, Server
from receiver.domain.placement import CAPACITY_REASONS
from receiver.domain.reasons import Reason
from receiver.domain.record import MoveStatus, Status, VMove
from receiver.domain.selection import LEFT_BY_POLICY, NON_EVACUABLE


class MoveVerdict(enum.StrEnum):
    WAIT = "wait"
    DONE = "done"
    NEEDS_START = "needs_start"
    NEEDS_STOP = "needs_stop"
    FAILED = "failed"


@dataclass(frozen=True)
class MoveJudgement:
    verdict: MoveVerdict
    message: str


def judge_move(move: VMove, server: Server, now: datetime, deadline: datetime) -> MoveJudgement:
    """Where an evacuation stands, given the server as Nova reports it now."""
    status = server.status.upper()
    busy = bool(server.task_state) or status in {"REBUILD", "BUILD", "MIGRATING"}
    moved = server.host is not None and server.host != move.source_host
    if status == "ERROR" and not busy:
        where = f"on {server.host}" if moved else f"still on {move.source_host}"
        fault = f": {server.fault}" if server.fault else ""
        request = f" (request {move.request_id})" if move.request_id else ""
        return MoveJudgement(MoveVerdict.FAILED, f"instance went to ERROR {where}{fault}{request}")
    if moved and not busy:
        if status == move.prior_status:
            return MoveJudgement(MoveVerdict.DONE, f"{status} on {server.host}")
        if status == "SHUTOFF" and move.prior_status == "ACTIVE":
            return MoveJudgement(MoveVerdict.NEEDS_START, f"arrived SHUTOFF on {server.host}; starting it")
        if status == "ACTIVE" and move.prior_status == "SHUTOFF":
            # Nova starts a stopped instance evacuated from ERROR (a retried move): its owner had
            # it stopped, so it is stopped again.
            return MoveJudgement(MoveVerdict.NEEDS_STOP, f"arrived ACTIVE on {server.host}; stopping it")
    if now >= deadline:
        state = f"{status}/{server.task_state or '-'} on {server.host}"
        return MoveJudgement(MoveVerdict.FAILED, f"timed out waiting for the move ({state})")
    return MoveJudgement(MoveVerdict.WAIT, f"{status}/{server.task_state or '-'} on {server.host}")


class ResumeAction(enum.StrEnum):
    EVACUATE = "evacuate"  # Nova never accepted an evacuation: (re)send it
    MONITOR = "monitor"  # Nova has it: watch, never send a second one
    SKIP = "skip"  # finished either way


def resume_action(move: VMove, server: Server, migrations: list[Migration]) -> ResumeAction:
    """What to do with a move found in the record when a (possibly restarted) worker gets to it.

    The move is marked `ongoing` *before* the evacuate call is sent, so a worker killed in
    between leaves `ongoing` with no trace in Nova. Nova's evacuation migration record, or
    the server having left the source or being mid-rebuild, proves the call was accepted;
    only without any such proof is it safe to send the call again.
    """
    if move.status in (MoveStatus.SUCCEEDED, MoveStatus.FAILED, MoveStatus.IGNORED):
        return ResumeAction.SKIP
    if move.status is MoveStatus.PENDING:
        return ResumeAction.EVACUATE
    # Only a rebuild proves that Nova took our evacuation: a server stuck in another task on the
    # dead host (say `powering-off`, which never finishes there) proves nothing.
    if server.host != move.source_host or (server.task_state or "").startswith("rebuild"):
        return ResumeAction.MONITOR
    sent = [m for m in migrations if m.instance_id == move.instance_uuid and _since_move(m, move)]
    return ResumeAction.MONITOR if sent else ResumeAction.EVACUATE


# Nova's clock and ours may disagree; a migration this much older than the move still counts.
CLOCK_SKEW = timedelta(minutes=5)


def _since_move(migration: Migration, move: VMove) -> bool:
    """Whether Nova's migration record can belong to this move (not to an older incident)."""
    if migration.created_at is None or move.start_time is None:
        return True
    started = datetime.fromisoformat(move.start_time)
    created = migration.created_at
    if created.tzinfo is None and started.tzinfo is not None:
        created = created.replace(tzinfo=started.tzinfo)
    return created >= started - CLOCK_SKEW


SCHEDULER = "scheduler"  # in `tried_hosts`: an attempt where Nova's scheduler chose


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    message: str
    target: str | None = None  # None: the scheduler chooses
    route: str = "auto"


def next_target(
    tried: Collection[str], routes: Sequence[str], spares: Sequence[str]
) -> tuple[str | None, str] | None:
    """The first target the method's routes offer that was not `tried` (a spare's name, or
    SCHEDULER for Nova's choice): (target, route), target None for the scheduler."""
    for route in routes:
        if route == "reserved_host":
            spare = next((s for s in spares if s not in tried), None)
            if spare is not None:
                return spare, route
        elif SCHEDULER not in tried:
            return None, route
    return None


def retry_target(
    move: VMove,
    server: Server,
    *,
    max_attempts: int,
    routes: tuple[str, ...],
    spares: tuple[str, ...],
) -> RetryDecision:
    """Whether a failed move may be sent again, and where: another target where the method allows.

    Only a server that Nova left on the dead host, idle, can be evacuated again: one that
    reached another host (even in ERROR) belongs to that live host now, and one Nova is
    still working on would get a second, racing rebuild. `routes` are the method's routes in
    order (auto, reserved_host); `spares` the reserved spares it may use, in order.
    """
    if move.attempts >= max_attempts:
        return RetryDecision(False, f"gave up after {move.attempts} attempts")
    if server.host != move.source_host:
        return RetryDecision(False, f"it is on {server.host} now ({server.status}); not sent again")
    if server.task_state:
        return RetryDecision(False, f"Nova is still working on it ({server.task_state}); not sent again")
    tried = {*move.tried_hosts, move.target_host or SCHEDULER}
    # When every target was tried, the scheduler may well choose another host this time.
    option = next_target(tried, routes, spares) or ((None, "auto") if "auto" in routes else None)
    if option is None:
        return RetryDecision(False, "no other target the recovery method allows")
    target, route = option
    where = f"spare {target}" if target else "a host of the scheduler's choice"
    return RetryDecision(
        True, f"retrying on {where} (attempt {move.attempts + 1} of {max_attempts})", target, route
    )


def judge_outcome(moves: Sequence[VMove], host: str) -> tuple[Status, Reason, str]:
    """How a host recovery ended, from its moves. Instances the policy leaves out (not
    HA-enabled, ERROR skipped) are no failure; one that could not be moved, or failed, is."""
    failed = [m for m in moves if m.status is MoveStatus.FAILED]
    stuck = [m for m in moves if m.status is MoveStatus.IGNORED and m.reason in UNRECOVERED]
    moved = [m for m in moves if m.status is MoveStatus.SUCCEEDED]
    by_policy = [m for m in moves if m.status is MoveStatus.IGNORED and m.reason in LEFT_BY_POLICY]
    tail = f"; {len(by_policy)} left by policy ({_policy_reasons(by_policy)})" if by_policy else ""
    if failed:
        detail = "; ".join(f"{m.instance_name}: {m.message}" for m in failed)
        count = len(failed) + len(stuck)
        return (
            Status.FAILED,
            Reason.EVACUATION_FAILED,
            (f"{count} of {len(moves) - len(by_policy)} instances not recovered: {detail}{tail}"),
        )
    if stuck:
        detail = "; ".join(f"{m.instance_name}: {m.reason}" for m in stuck)
        return (
            Status.FAILED,
            Reason(str(stuck[0].reason)),
            (
                f"{len(stuck)} instances could not be moved off {host} ({detail}); "
                f"{len(moved)} recovered{tail}"
            ),
        )
    if not moved:
        return (
            Status.FINISHED,
            Reason.NO_INSTANCES,
            f"no instances to evacuate on {host}; host stays fenced{tail}",
        )
    return Status.FINISHED, Reason.COMPLETED, f"{len(moved)} instances recovered off {host}{tail}"


_POLICY_WORDS = {
    Reason.NOT_HA_ENABLED: "not HA-enabled",
    Reason.INSTANCE_IN_ERROR: "ERROR skipped",
    Reason.EXCLUDED_PROJECT: "excluded project",
}


def _policy_reasons(moves: Sequence[VMove]) -> str:
    """Which policies left them out, in a fixed order: 'not HA-enabled, excluded project'."""
    found = {m.reason for m in moves}
    return ", ".join(words for reason, words in _POLICY_WORDS.items() if reason.value in found)


# What a human must look at: instances that cannot move at all, or found no room.
UNRECOVERED = NON_EVACUABLE | CAPACITY_REASONS
