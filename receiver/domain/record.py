"""The recovery record ("notification", shaped like Masakari's) and its state machine.

Status machine (Masakari's vocabulary)::

    new ──► running ──► finished | failed
     │         └──────► ignored  (a gate said no; nothing was touched)
     └──────► ignored            (recorded at intake, never acts)
    any open ──► error           (a bug or an unexpected exception at the job boundary)

`phase` is our resumable pointer inside `running`: a restarted worker continues from the
recorded phase and never repeats a step whose effect is already proven.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from receiver.domain.alerts import NotificationType
from receiver.domain.reasons import Reason


class Status(enum.StrEnum):
    NEW = "new"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    IGNORED = "ignored"
    ERROR = "error"

    @property
    def is_open(self) -> bool:
        return self in (Status.NEW, Status.RUNNING)


_ALLOWED: dict[Status, frozenset[Status]] = {
    Status.NEW: frozenset({Status.RUNNING, Status.IGNORED, Status.FAILED, Status.ERROR}),
    Status.RUNNING: frozenset({Status.RUNNING, Status.FINISHED, Status.FAILED, Status.IGNORED, Status.ERROR}),
    Status.ERROR: frozenset({Status.RUNNING}),
    Status.FINISHED: frozenset(),
    Status.FAILED: frozenset(),
    Status.IGNORED: frozenset(),
}


class Phase(enum.StrEnum):
    """Where a recovery stands; each phase's effect is proven before the next starts.

    One linear order serves the three kinds: each kind uses its own phases, in this order.
    """

    PENDING = "pending"
    CHECKED = "checked"  # gates passed
    PLANNED = "planned"  # host recovery: the capacity plan is on the record (before fencing)
    # host recovery
    FENCED = "fenced"  # BMC read back OFF (safety rule 1)
    NOVA_FORCED_DOWN = "nova_forced_down"  # safety rule 2: told before asked
    NOVA_DISABLED = "nova_disabled"
    EVACUATING = "evacuating"
    # process recovery
    SERVICE_DISABLED = "service_disabled"  # nothing new is scheduled on the host
    # instance recovery
    INSTANCE_STOPPED = "instance_stopped"
    INSTANCE_STARTED = "instance_started"
    DONE = "done"


PHASE_ORDER = list(Phase)
STOPPED = Reason.RECOVERY_STOPPED.value  # a move the ended recovery never attempted


class MoveStatus(enum.StrEnum):
    """Masakari's vmove statuses."""

    PENDING = "pending"
    ONGOING = "ongoing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    IGNORED = "ignored"


class InvalidTransition(Exception):
    """A programming error: the state machine forbids this move."""


@dataclass(frozen=True)
class Step:
    """One line of the step log (Masakari's recovery_workflow_details)."""

    name: str
    state: str  # "started" | "succeeded" | "failed" | "skipped"
    at: str
    message: str


@dataclass(frozen=True)
class VMove:
    """One instance's move off the failed host."""

    instance_uuid: str
    instance_name: str
    source_host: str
    prior_status: str  # ACTIVE or SHUTOFF: what it must be again after the move
    status: MoveStatus = MoveStatus.PENDING
    dest_host: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    message: str = ""
    type: str = "evacuation"
    target_host: str | None = None  # the planned target; None: Nova's scheduler chooses
    route: str = "auto"  # the recovery method's route for this instance: auto | reserved_host
    attempts: int = 0  # evacuations sent (a failed move may be retried on another target)
    tried_hosts: tuple[str, ...] = ()  # targets of the failed attempts
    reason: str | None = None  # why it was skipped or failed (a Reason value)
    locked_by_us: bool = False  # we locked it for the move and must unlock it
    request_id: str | None = None  # Nova's id of the last evacuate request (its logs, by this id)


@dataclass(frozen=True)
class FenceAttempt:
    """Evidence that the host is off, as the BMC answered it."""

    method: str
    bmc: str  # address:port, never credentials
    power_before: str
    power_after: str
    started_at: str
    ended_at: str
    outcome: str  # "off_confirmed" | a Reason value
    message: str = ""


@dataclass(frozen=True)
class Notification:
    notification_uuid: str
    type: NotificationType
    hostname: str | None
    generated_time: str
    payload: dict[str, Any]
    status: Status
    created_at: str
    updated_at: str
    reason: str | None = None
    message: str = ""
    phase: Phase = Phase.PENDING
    failover_segment_uuid: str | None = None
    source_host_uuid: str | None = None
    steps: tuple[Step, ...] = ()
    vmoves: tuple[VMove, ...] = ()
    fencing: tuple[FenceAttempt, ...] = ()
    attempt: int = 0
    wake_at: str | None = None  # an open record waiting for the world (e.g. a service to come back)
    marks: dict[str, str] = field(
        default_factory=dict
    )  # facts a resumed run needs (when it disabled a service)
    plan: dict[str, Any] | None = None  # host recovery: the capacity plan (domain.placement.Plan.to_dict)
    diagnosis: dict[str, Any] | None = None  # why a host recovery did not move everything

    def transition(
        self, status: Status, now: datetime, *, reason: str | None = None, message: str = ""
    ) -> Notification:
        if status not in _ALLOWED[self.status]:
            raise InvalidTransition(f"{self.notification_uuid}: {self.status} -> {status}")
        return replace(
            self,
            status=status,
            reason=reason if reason is not None else self.reason,
            message=message or self.message,
            updated_at=iso(now),
        )

    def reopen(self, now: datetime, message: str) -> Notification:
        """An operator's retry of a failed recovery: back to running, failed moves pending again."""
        if self.status is not Status.FAILED:
            raise InvalidTransition(f"{self.notification_uuid}: only a failed recovery can be retried")
        moves = tuple(
            replace(
                m,
                status=MoveStatus.PENDING,
                dest_host=None,
                start_time=None,
                end_time=None,
                message="",
                attempts=0,
                reason=None,
            )
            if m.status is MoveStatus.FAILED or m.reason == STOPPED
            else m
            for m in self.vmoves
        )
        return replace(
            self,
            status=Status.RUNNING,
            vmoves=moves,
            attempt=self.attempt + 1,
            reason=None,
            message=message,
            updated_at=iso(now),
        )

    def stop_pending(self, why: str, now: datetime) -> Notification:
        """The recovery ended before these planned moves were attempted: say so on each."""
        moves = tuple(
            replace(
                m,
                status=MoveStatus.IGNORED,
                reason=STOPPED,
                message=f"not attempted: the recovery ended ({why})",
            )
            if m.status is MoveStatus.PENDING
            else m
            for m in self.vmoves
        )
        return replace(self, vmoves=moves, updated_at=iso(now))

    def advance(self, phase: Phase, now: datetime) -> Notification:
        """Move the resumable pointer forward; never backwards."""
        if PHASE_ORDER.index(phase) < PHASE_ORDER.index(self.phase):
            raise InvalidTransition(f"{self.notification_uuid}: phase {self.phase} -> {phase}")
        return replace(self, phase=phase, updated_at=iso(now))

    def reached(self, phase: Phase) -> bool:
        return PHASE_ORDER.index(self.phase) >= PHASE_ORDER.index(phase)

    def log(self, name: str, state: str, message: str, now: datetime) -> Notification:
        return replace(self, steps=(*self.steps, Step(name, state, iso(now), message)), updated_at=iso(now))

    def with_vmove(self, move: VMove, now: datetime) -> Notification:
        others = tuple(m for m in self.vmoves if m.instance_uuid != move.instance_uuid)
        ordered = [*others, move]
        order = {m.instance_uuid: i for i, m in enumerate(self.vmoves)}
        ordered.sort(key=lambda m: order.get(m.instance_uuid, len(order)))
        return replace(self, vmoves=tuple(ordered), updated_at=iso(now))

    def vmove(self, instance_uuid: str) -> VMove | None:
        return next((m for m in self.vmoves if m.instance_uuid == instance_uuid), None)

    def with_reason(self, reason: str, message: str, now: datetime) -> Notification:
        """Why an open record is where it is (e.g. waiting for approval), without a transition."""
        return replace(self, reason=reason, message=message, updated_at=iso(now))

    def mark(self, name: str, value: str, now: datetime) -> Notification:
        return replace(self, marks={**self.marks, name: value}, updated_at=iso(now))

    def unmark(self, name: str, now: datetime) -> Notification:
        if name not in self.marks:
            return self
        return replace(self, marks={k: v for k, v in self.marks.items() if k != name}, updated_at=iso(now))

    def sleep_until(self, moment: datetime | None, now: datetime) -> Notification:
        return replace(self, wake_at=iso(moment) if moment else None, updated_at=iso(now))

    def with_fence_attempt(self, attempt: FenceAttempt, now: datetime) -> Notification:
        return replace(self, fencing=(*self.fencing, attempt), updated_at=iso(now))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Notification:
        return cls(
            notification_uuid=data["notification_uuid"],
            type=NotificationType(data["type"]),
            hostname=data.get("hostname"),
            generated_time=data["generated_time"],
            payload=dict(data.get("payload") or {}),
            status=Status(data["status"]),
            created_at=data["created_at"],
            updated_at=data["updated_at"],
            reason=data.get("reason"),
            message=data.get("message", ""),
            phase=Phase(data.get("phase", Phase.PENDING)),
            failover_segment_uuid=data.get("failover_segment_uuid"),
            source_host_uuid=data.get("source_host_uuid"),
            steps=tuple(Step(**s) for s in data.get("steps", ())),
            vmoves=tuple(_vmove(m) for m in data.get("vmoves", ())),
            fencing=tuple(FenceAttempt(**f) for f in data.get("fencing", ())),
            attempt=int(data.get("attempt", 0)),
            wake_at=data.get("wake_at"),
            marks=dict(data.get("marks") or {}),
            plan=data.get("plan"),
            diagnosis=data.get("diagnosis"),
        )

    def with_plan(self, plan: dict[str, Any], now: datetime) -> Notification:
        return replace(self, plan=plan, updated_at=iso(now))

    def with_diagnosis(self, diagnosis: dict[str, Any] | None, now: datetime) -> Notification:
        return replace(self, diagnosis=diagnosis, updated_at=iso(now))


def _vmove(data: dict[str, Any]) -> VMove:
    return VMove(
        **{**data, "status": MoveStatus(data["status"]), "tried_hosts": tuple(data.get("tried_hosts", ()))}
    )


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


@dataclass(frozen=True)
class AlertEvent:
    """An alert as linked to a record: enough to trace it back to Alertmanager."""

    fingerprint: str
    starts_at: str
    status: str
    alertname: str
    received_at: str
    outcome: str
    external_url: str = ""
    labels: dict[str, str] = field(default_factory=dict)
