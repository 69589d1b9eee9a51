"""The recovery record's state machine and its JSON round trip."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from receiver.domain.alerts import NotificationType
from receiver.domain.record import (
    FenceAttempt,
    InvalidTransition,
    MoveStatus,
    Notification,
    Phase,
    Status,
    VMove,
)

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def record(status: Status = Status.NEW) -> Notification:
    return Notification("u", NotificationType.COMPUTE_HOST, "node-01", "t", {}, status, "c", "c")


@pytest.mark.parametrize(
    ("start", "end", "allowed"),
    [
        (Status.NEW, Status.RUNNING, True),
        (Status.NEW, Status.FINISHED, False),
        (Status.RUNNING, Status.FINISHED, True),
        (Status.RUNNING, Status.IGNORED, True),
        (Status.FINISHED, Status.RUNNING, False),
        (Status.FAILED, Status.RUNNING, False),
        (Status.IGNORED, Status.RUNNING, False),
        (Status.ERROR, Status.RUNNING, True),
    ],
)
def test_transitions(start: Status, end: Status, allowed: bool) -> None:
    if allowed:
        assert record(start).transition(end, NOW, reason="r").status is end
    else:
        with pytest.raises(InvalidTransition):
            record(start).transition(end, NOW)


def test_phase_never_goes_back() -> None:
    fenced = record().advance(Phase.FENCED, NOW)
    assert fenced.reached(Phase.CHECKED) and fenced.reached(Phase.FENCED)
    assert not fenced.reached(Phase.NOVA_FORCED_DOWN)
    with pytest.raises(InvalidTransition):
        fenced.advance(Phase.CHECKED, NOW)


def test_vmoves_keep_their_order_when_updated() -> None:
    r = record()
    for name in ("a", "b", "c"):
        r = r.with_vmove(VMove(name, name, "node-01", "ACTIVE"), NOW)
    r = r.with_vmove(VMove("b", "b", "node-01", "ACTIVE", MoveStatus.SUCCEEDED, "node-02"), NOW)
    assert [m.instance_uuid for m in r.vmoves] == ["a", "b", "c"]
    assert r.vmove("b") is not None and r.vmove("b").status is MoveStatus.SUCCEEDED  # type: ignore[union-attr]


def test_round_trip() -> None:
    r = (
        record()
        .transition(Status.RUNNING, NOW)
        .log("fence", "succeeded", "off", NOW)
        .with_fence_attempt(
            FenceAttempt("ipmi", "127.0.0.1:623", "on", "off", "s", "e", "off_confirmed"), NOW
        )
        .with_vmove(VMove("a", "vm-a", "node-01", "SHUTOFF", MoveStatus.ONGOING, start_time="s"), NOW)
        .advance(Phase.EVACUATING, NOW)
    )
    assert Notification.from_dict(r.to_dict()) == r


def test_moves_a_stopped_recovery_never_attempted_say_so_and_come_back_on_retry() -> None:
    planned = VMove("i-1", "vm", "node-01", "ACTIVE", target_host="spare-01", route="reserved_host")
    left = VMove("i-2", "vm2", "node-01", "ACTIVE", status=MoveStatus.IGNORED, reason="pci_passthrough")
    failed = (
        record(Status.RUNNING).with_vmove(planned, NOW).with_vmove(left, NOW).stop_pending("bmc_refused", NOW)
    )
    stopped = failed.vmove("i-1")
    assert stopped is not None
    assert (stopped.status, stopped.reason) == (MoveStatus.IGNORED, "recovery_stopped")
    assert "recovery ended (bmc_refused)" in stopped.message
    assert failed.vmove("i-2") == left
    again = failed.transition(Status.FAILED, NOW).reopen(NOW, "retry")
    back = again.vmove("i-1")
    assert back is not None and (back.status, back.reason, back.target_host) == (
        MoveStatus.PENDING,
        None,
        "spare-01",
    )
    assert again.vmove("i-2") == left  # cannot be evacuated: stays left out
    assert Notification.from_dict(again.to_dict()) == again
