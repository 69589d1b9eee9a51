"""Judging a move from Nova's view, and what a restarted worker may do with a move in flight."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from receiver.domain.evacuation import MoveVerdict, ResumeAction, judge_move, resume_action
from receiver.domain.model import Migration, Server
from receiver.domain.record import MoveStatus, VMove

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=10)


def move(prior: str = "ACTIVE", status: MoveStatus = MoveStatus.ONGOING) -> VMove:
    return VMove("i-1", "vm", "node-01", prior, status, start_time=NOW.isoformat())


def server(host: str, status: str, task: str | None = None) -> Server:
    return Server("i-1", "vm", host, status, task_state=task)


@pytest.mark.parametrize(
    ("prior", "srv", "now", "verdict"),
    [
        ("ACTIVE", server("node-01", "ACTIVE"), NOW, MoveVerdict.WAIT),  # not picked up yet
        ("ACTIVE", server("node-02", "REBUILD", "rebuilding"), NOW, MoveVerdict.WAIT),
        ("ACTIVE", server("node-02", "ACTIVE"), NOW, MoveVerdict.DONE),
        ("SHUTOFF", server("node-02", "SHUTOFF"), NOW, MoveVerdict.DONE),
        ("ACTIVE", server("node-02", "SHUTOFF"), NOW, MoveVerdict.NEEDS_START),  # Nova >= 2.95
        ("SHUTOFF", server("node-02", "ACTIVE"), NOW, MoveVerdict.NEEDS_STOP),  # evacuated from ERROR
        ("ACTIVE", server("node-01", "ERROR"), NOW, MoveVerdict.FAILED),  # no valid host
        ("ACTIVE", server("node-02", "ERROR"), NOW, MoveVerdict.FAILED),
        ("ACTIVE", server("node-02", "REBUILD", "rebuilding"), LATER, MoveVerdict.FAILED),  # timed out
        ("ACTIVE", server("node-01", "ACTIVE"), LATER, MoveVerdict.FAILED),
    ],
)
def test_judge_move(prior: str, srv: Server, now: datetime, verdict: MoveVerdict) -> None:
    judgement = judge_move(move(prior), srv, now, NOW + timedelta(minutes=5))
    assert judgement.verdict is verdict
    assert judgement.message


def test_a_failure_names_novas_fault_and_the_evacuate_requests_id() -> None:
    """Nova's conductor refuses asynchronously: the server's fault says why, and the evacuate
    call's request id finds it in Nova's logs."""
    refused = replace(
        server("node-01", "ERROR"), fault="No valid host was found. There are not enough hosts available."
    )
    sent = replace(move(), request_id="req-0a1b")
    judgement = judge_move(sent, refused, NOW, LATER)
    assert judgement.verdict is MoveVerdict.FAILED
    assert judgement.message == (
        "instance went to ERROR still on node-01: No valid host was found. There are not enough hosts "
        "available. (request req-0a1b)"
    )


def migration(created: datetime | None = NOW, status: str = "done") -> Migration:
    return Migration("m", "i-1", "node-01", "node-02", status, "evacuation", created)


@pytest.mark.parametrize(
    ("mv", "srv", "migrations", "action"),
    [
        (move(status=MoveStatus.PENDING), server("node-01", "ACTIVE"), [], ResumeAction.EVACUATE),
        (move(status=MoveStatus.SUCCEEDED), server("node-02", "ACTIVE"), [], ResumeAction.SKIP),
        (move(status=MoveStatus.FAILED), server("node-01", "ERROR"), [], ResumeAction.SKIP),
        # killed after marking ongoing, before Nova got the call: safe to send it
        (move(), server("node-01", "ACTIVE"), [], ResumeAction.EVACUATE),
        # Nova has it: never a second evacuation
        (move(), server("node-01", "ACTIVE"), [migration(status="accepted")], ResumeAction.MONITOR),
        (move(), server("node-01", "ERROR"), [migration(status="error")], ResumeAction.MONITOR),
        (move(), server("node-02", "REBUILD", "rebuilding"), [], ResumeAction.MONITOR),
        (move(), server("node-01", "REBUILD", "rebuilding"), [], ResumeAction.MONITOR),
        # stuck in a task that will never finish on the dead host: not proof of our evacuation
        (move(), server("node-01", "ACTIVE", "powering-off"), [], ResumeAction.EVACUATE),
        # an evacuation from an older incident does not count as this move's
        (move(), server("node-01", "ACTIVE"), [migration(NOW - timedelta(days=2))], ResumeAction.EVACUATE),
    ],
)
def test_resume_action(mv: VMove, srv: Server, migrations: list[Migration], action: ResumeAction) -> None:
    assert resume_action(mv, srv, migrations) is action
