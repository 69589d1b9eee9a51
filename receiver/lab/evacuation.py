"""Evacuation as Nova 34 does it, in three stages, each with Nova's own outcome on failure.

1. API (`evacuate`): checks in Nova's order; any task_state is accepted (Nova 34's
   check_instance_state(task_state=None) and save(expected_task_state=None)), so a second
   evacuate while the first is still rebuilding is accepted too. Sets task_state `rebuilding`
   and creates an `accepted` migration record (dest_compute = the requested host, if any).
2. Conductor (next tick): takes the instance's *first* `accepted` migration record, which for a
   duplicate request is the first request's record, and asks the scheduler for a destination.
   No valid host: migration `error`, server ERROR on its source host (conductor/manager.py),
   its power_state untouched; for a requested host that is disabled, down or without room
   too (Nova's scheduler checks a requested host like any other). Seen on the test bed.
3. Destination compute (`evacuate_delay` later, carried out only while that host is RUNNING):
   claims the record (dest_compute, `pre-migrating`) and rebuilds. If the server's task_state
   is no longer `rebuilding` (another rebuild of it finished first) or the injected fault is
   set, the rebuild fails: migration `failed`, server ERROR with task_state None, still on the
   host it was on (compute/manager.py rebuild_instance). Otherwise the server moves, the
   record is `done`, and the server is ACTIVE, or SHUTOFF if it was SHUTOFF before or the
   request used microversion >= 2.95 (unless it was in ERROR).

On the real test bed (Nova 34, fake driver) a duplicate evacuate ended like this in 13 of 14
runs: the first rebuild landed, the second then failed on the same destination, leaving the
server ERROR there, the first record `failed` (overwritten after `done`) and the second record
`accepted` until the source's nova-compute restarted (then `completed`).
"""

from __future__ import annotations

from receiver.lab import model
from receiver.lab.action_log import InstanceAction, Requester, lab_admin
from receiver.lab.model import Instance, MigrationRecord, NovaError
from receiver.lab.scheduler import choose_host
from receiver.lab.state import CloudState
from receiver.lab.usage import demand

REBUILDING = "rebuilding"
CONDUCTOR_HOST = "controller"  # where nova-conductor runs (the lab's os-services says so too)


class Evacuations(CloudState):
    """The evacuate action and what Nova's conductor and destination compute do with it."""

    def evacuate(
        self,
        server_id: str,
        target: str | None,
        microversion: tuple[int, int],
        requester: Requester | None = None,
    ) -> MigrationRecord:
        """Accept an evacuation as Nova's API does; the rest happens in `tick()`."""
        with self.lock:
            server = self.server(server_id)
            if target is not None and target not in self.hosts:
                raise NovaError(404, f"Compute host {target} not found.")
            if server.host is not None and server.host == target:
                raise NovaError(400, "The target host can't be the same one.")
            if server.vm_state not in ("active", "stopped", "error"):
                raise NovaError(409, _invalid_state(server, "vm_state", server.vm_state))
            if server.launched_at is None:
                raise NovaError(409, _invalid_state(server, "launched_at", None))
            source = self._host(server.host) if server.host else None
            now = self.clock()
            if source is not None and self.is_up(source, now):
                raise NovaError(400, f"Compute service of {source.name} is still in use.")
            # Nova >= 2.95 leaves the evacuated server stopped, except one evacuated from ERROR.
            stay_stopped = server.vm_state == "stopped" or (
                microversion >= (2, 95) and server.vm_state != "error"
            )
            server.task_state, server.updated = REBUILDING, now
            migration = MigrationRecord(
                id=len(self.migrations) + 1,
                uuid=model.new_uuid(),
                instance_uuid=server.id,
                migration_type="evacuation",
                source_compute=server.host,
                dest_compute=target,
                status="accepted",
                created_at=now,
                updated_at=now,
                project_id=server.project_id,
                user_id=server.user_id,
                flavor_id=server.flavor.id,
            )
            self._add_migration(migration)
            action = self.actions.start(server.id, "evacuate", requester or lab_admin(), now)
            self._schedule(
                0.0, lambda when: self._conduct_evacuation(server, target, stay_stopped, action, when)
            )
            return migration

    def fail_evacuation(
        self, server_id: str | None = None, fail: bool = True, *, target: str | None = None
    ) -> None:
        """The injected fault: rebuilds of this server (on any destination), of any server on
        `target`, or of this server on `target`, fail there as a failed rebuild does in Nova
        (stage 3 above: ERROR on the host it was on, migration `failed`, the destination's
        allocation dropped); a later evacuation to another host can succeed."""
        with self.lock:
            if server_id is None and target is None:
                raise ValueError("name a server, a target host, or both")
            if server_id is not None:
                self.server(server_id)
            if target is not None:
                self._host(target)
                faults: set[tuple[str, str | None]] = self.faults.evacuate_fails_on
                (faults.add if fail else faults.discard)((target, server_id))
            elif server_id is not None:
                (self.faults.evacuate_fails.add if fail else self.faults.evacuate_fails.discard)(server_id)

    def _rebuild_fails(self, server: Instance, destination: str) -> bool:
        faults = self.faults
        return server.id in faults.evacuate_fails or bool(
            {(destination, None), (destination, server.id)} & faults.evacuate_fails_on
        )

    def _conduct_evacuation(
        self, server: Instance, target: str | None, stay_stopped: bool, action: InstanceAction, now: float
    ) -> None:
        migration = next(
            (m for m in self.migrations_by_instance.get(server.id, ()) if m.status == "accepted"), None
        )
        if server.id not in self.servers:
            if migration is not None:
                migration.status, migration.updated_at = "error", now  # deleted meanwhile
            return
        needs = demand(server)
        # Placement keeps one allocation per server: a duplicate request's choice replaces the
        # first's, so the first's claim does not count against it (both pick the same host).
        earlier = self._release_claim(server)
        destination = choose_host(
            self._candidates(now, only=target), needs, exclude=server.host, ratios=self.settings.ratios
        )
        if destination is None:
            if earlier is not None:
                self._claim(server, earlier)
            if migration is not None:
                migration.status, migration.updated_at = "error", now
            message = self._no_valid_host(needs, target)
            self.actions.event(action, "rebuild_server", CONDUCTOR_HOST, now, error=message)
            self._error(server, message, now)
            return
        self.actions.event(action, "rebuild_server", CONDUCTOR_HOST, now)
        self._claim(server, destination)  # so the next choice sees this host's room taken
        self._cast(
            destination,
            self.settings.evacuate_delay,
            lambda when: self._rebuild(server, migration, destination, stay_stopped, action=action, now=when),
        )

    def _rebuild(
        self,
        server: Instance,
        migration: MigrationRecord | None,
        destination: str,
        stay_stopped: bool,
        *,
        action: InstanceAction,
        now: float,
    ) -> None:
        if migration is not None:
            self._set_destination(migration, destination)
            migration.status, migration.updated_at = "pre-migrating", now
        failure: str | None = None
        if server.id not in self.servers:
            failure = "deleted"
        elif server.task_state != REBUILDING:
            failure = (
                f"Conflict updating instance {server.id}. Expected: {{'task_state': ['{REBUILDING}']}}. "
                f"Actual: {{'task_state': {server.task_state!r}}}"
            )
        elif self._rebuild_fails(server, destination):
            failure = f"Injected lab fault: evacuation of {server.id} failed."
        self.actions.event(action, "compute_rebuild_instance", destination, now, error=failure)
        if failure is not None:
            self._release_claim(server)
            if migration is not None:
                migration.status, migration.updated_at = "failed", now
            if server.id in self.servers:
                self._error(server, failure, now)
            return
        self._place(server, destination)
        server.vm_state = "stopped" if stay_stopped else "active"
        server.record_power_state(model.SHUTDOWN if stay_stopped else model.RUNNING)
        server.task_state, server.fault, server.updated = None, None, now
        self._recount(destination)
        if migration is not None:
            migration.status, migration.updated_at = "done", now

    @staticmethod
    def _error(server: Instance, message: str, now: float) -> None:
        server.vm_state, server.task_state, server.updated = "error", None, now
        server.fault = {"code": 500, "message": message, "created": now}


def _invalid_state(server: Instance, attribute: str, state: object) -> str:
    """Nova's message for InstanceInvalidState (common.raise_http_conflict_for_instance_invalid_state)."""
    return f"Cannot 'evacuate' instance {server.id} while it is in {attribute} {state}"
