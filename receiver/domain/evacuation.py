"""Judging an instance's move off a dead host from what Nova reports. Pure functions.

A move is done when the instance runs on another host in the power state it had before
(ACTIVE stays ACTIVE, SHUTOFF stays SHUTOFF). Nova >= 2.95 leaves evacuated servers
stopped: an ACTIVE instance that arrives SHUTOFF needs a start, not a verdict of failure.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from receiver.domain.model import Migration, Server
from receiver.domain.record import MoveStatus, VMove


class MoveVerdict(enum.StrEnum):
    WAIT = "wait"
    DONE = "done"
    NEEDS_START = "needs_start"
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
        return MoveJudgement(MoveVerdict.FAILED, f"instance went to ERROR {where}")
    if moved and not busy:
        if status == move.prior_status:
            return MoveJudgement(MoveVerdict.DONE, f"{status} on {server.host}")
        if status == "SHUTOFF" and move.prior_status == "ACTIVE":
            return MoveJudgement(MoveVerdict.NEEDS_START, f"arrived SHUTOFF on {server.host}; starting it")
        if status == "ACTIVE" and move.prior_status == "SHUTOFF":
            # Older microversions may start a stopped instance; it runs, which loses no data.
            return MoveJudgement(MoveVerdict.DONE, f"ACTIVE on {server.host} (was SHUTOFF before)")
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
