"""The small interfaces between the workflows and the outside world, in our vocabulary.

One Protocol per external system. Adapters (receiver/adapters) implement them and
translate their library's exceptions into `receiver.errors`.
"""

from __future__ import annotations

from typing import Protocol

from receiver.domain.capacity import HypervisorReport
from receiver.domain.events import EventKind
from receiver.domain.model import (
    Aggregate,
    BmcTarget,
    ComputeService,
    Migration,
    PowerState,
    Server,
    ServerAction,
)
from receiver.domain.record import Notification


class PowerController(Protocol):
    """A host's power, through its BMC.

    Errors: BmcUnreachable (no answer in time), BmcRefused (login or command refused).
    Neither method ever includes the password in an error or a log line.
    """

    def power_off(self, target: BmcTarget) -> None:
        """Ask for a hard power-off. Returns once the BMC accepted the command;
        it proves nothing: read `power_state` back."""
        ...

    def power_on(self, target: BmcTarget) -> None: ...

    def power_state(self, target: BmcTarget) -> PowerState: ...


class Compute(Protocol):
    """Nova's compute API, as the recoveries need it.

    Errors: ComputeUnavailable (retryable), ComputeRejected (4xx, with request id), NotFound.
    """

    def service(self, host: str) -> ComputeService:
        """The `nova-compute` service of `host`; NotFound when Nova has none."""
        ...

    def compute_services(self) -> list[ComputeService]:
        """Every `nova-compute` service Nova has (one listing)."""
        ...

    def force_down(self, service: ComputeService) -> ComputeService: ...

    def disable(self, service: ComputeService, reason: str) -> ComputeService: ...

    def force_up(self, service: ComputeService) -> ComputeService:
        """Clear forced_down; Nova refuses while `done` evacuation records remain on the host."""
        ...

    def enable(self, service: ComputeService) -> ComputeService: ...

    def servers_on(self, host: str) -> list[Server]:
        """Every instance whose `OS-EXT-SRV-ATTR:host` is `host`, all projects."""
        ...

    def server(self, server_id: str) -> Server: ...

    def evacuate(self, server_id: str, target_host: str | None = None) -> str | None:
        """Ask Nova to rebuild the server elsewhere; the scheduler chooses when no target.
        Returns Nova's request id: an asynchronous failure is found in its logs under it."""
        ...

    def start(self, server_id: str) -> None: ...

    def last_power_action(self, server_id: str) -> ServerAction | None:
        """Nova's newest stop/start/reboot: tells a user's stop from Nova's own power sync."""
        ...

    def stop(self, server_id: str) -> None: ...

    def reboot(self, server_id: str, hard: bool = True) -> None: ...

    def evacuations(self, source_host: str, server_id: str | None = None) -> list[Migration]:
        """Nova's evacuation records from `source_host` (optionally of one server)."""
        ...

    def lock(self, server_id: str, reason: str) -> None:
        """Lock the server with a reason (2.73+); locking a locked server is not an error."""
        ...

    def unlock(self, server_id: str) -> None: ...

    def hypervisors(self) -> list[HypervisorReport]:
        """Every compute host's resources (os-hypervisors at 2.87, the last that reports them)."""
        ...

    def aggregates(self) -> list[Aggregate]: ...

    def add_to_aggregate(self, aggregate_id: str, host: str) -> None:
        """Add `host` to the aggregate; a host already in it is not an error."""
        ...


class EventPublisher(Protocol):
    """Tells humans what happened to a recovery. Must never raise into, block or fail a recovery:
    delivery happens elsewhere (its own jobs), so `publish` only records the intent."""

    def publish(self, kind: EventKind, record: Notification) -> None: ...


class NullPublisher:
    """No notifiers configured: events are only logged by the workflow."""

    def publish(self, kind: EventKind, record: Notification) -> None:
        return None
