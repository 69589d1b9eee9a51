"""Nova's instance actions (`os-instance-actions`): who asked what of a server, and what the
computes did about it.

Nova's API records an action for each request it accepts (`create`, `stop`, `start`, `reboot`,
`evacuate`, `lock`, `unlock`, `delete`) with the caller's request id, user and project; the
conductor and computes add events (`compute_stop_instance`, ...) as they carry the work out.
Nova's own power-state sync calls the stop API with an admin context that has no user and no
project (nova.context.get_admin_context), so its `stop` has user_id and project_id null: the one
way to tell it from a user's stop. An event that fails marks its action's message "Error".
The records outlive their server, as Nova's do (listable for deleted servers from 2.21).
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field

NOVA_ITSELF = None  # the user and project of what Nova does on its own (periodic tasks)
LAB_USER = LAB_PROJECT = "admin"  # whom the lab's token stands for (the test bed's admin:admin)


@dataclass(frozen=True)
class Requester:
    """Who made a request: its request id, user and project (None for Nova itself)."""

    request_id: str
    user_id: str | None
    project_id: str | None

    @classmethod
    def user(cls, user_id: str, project_id: str, request_id: str | None = None) -> Requester:
        return cls(request_id or new_request_id(), user_id, project_id)

    @classmethod
    def nova(cls) -> Requester:
        """Nova's periodic tasks and event handlers (get_admin_context): no user, no project."""
        return cls(new_request_id(), NOVA_ITSELF, NOVA_ITSELF)


@dataclass
class ActionEvent:
    event: str  # compute_stop_instance, rebuild_server, ...
    start_time: float
    finish_time: float | None
    result: str | None  # "Success" / "Error"; None while running
    host: str
    traceback: str | None = None


@dataclass
class InstanceAction:
    id: int  # Nova's database id: newer actions have higher ids (the list's tie-breaker)
    action: str
    instance_uuid: str
    request_id: str
    user_id: str | None
    project_id: str | None
    start_time: float
    updated_at: float
    message: str | None = None
    events: list[ActionEvent] = field(default_factory=list)


def lab_admin(request_id: str | None = None) -> Requester:
    """The caller of the lab's compute API (and of the cloud's methods when none is given)."""
    return Requester.user(LAB_USER, LAB_PROJECT, request_id)


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


class ActionLog:
    """Every server's actions, oldest first. Call it under the cloud's lock."""

    def __init__(self) -> None:
        self._by_server: dict[str, list[InstanceAction]] = {}
        self._ids = itertools.count(1)

    def start(self, server_id: str, action: str, requester: Requester, now: float) -> InstanceAction:
        """Nova's _record_action_start: the API accepted `action` for the server."""
        record = InstanceAction(
            id=next(self._ids),
            action=action,
            instance_uuid=server_id,
            request_id=requester.request_id,
            user_id=requester.user_id,
            project_id=requester.project_id,
            start_time=now,
            updated_at=now,
        )
        self._by_server.setdefault(server_id, []).append(record)
        return record

    @staticmethod
    def event(record: InstanceAction, name: str, host: str, now: float, error: str | None = None) -> None:
        """A conductor or compute step of the action, finished at `now` (Success, or Error with `error`)."""
        record.events.append(
            ActionEvent(
                event=name,
                start_time=now,
                finish_time=now,
                result="Error" if error else "Success",
                host=host,
                traceback=None if error is None else f"Traceback (most recent call last):\n{error}\n",
            )
        )
        record.updated_at = now
        if error is not None:
            record.message = "Error"

    def known(self, server_id: str) -> bool:
        return server_id in self._by_server

    def of(self, server_id: str) -> list[InstanceAction]:
        """Newest first, as Nova lists them (created_at, then id, descending)."""
        return sorted(self._by_server.get(server_id, ()), key=lambda a: (a.start_time, a.id), reverse=True)

    def find(self, server_id: str, request_id: str) -> InstanceAction | None:
        return next((a for a in self._by_server.get(server_id, ()) if a.request_id == request_id), None)
