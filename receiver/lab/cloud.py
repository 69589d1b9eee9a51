"""The lab cloud: its state (`receiver.lab.state`) plus Nova's rules for what the API asks:
boot and delete, service updates, start / stop / reboot / lock, and evacuation.

Each method checks what real Nova checks, in Nova's order and with Nova's messages, then
either changes the state at once (as Nova's API does) or queues the change for `tick()`
(as Nova's conductor and computes do later)."""

from __future__ import annotations

from collections.abc import Iterable

from receiver.lab import model
from receiver.lab.model import Host, Instance, MigrationRecord, NovaError
from receiver.lab.scheduler import Demand, choose_host
from receiver.lab.state import Clock, CloudSettings, CloudState, Faults

__all__ = ["Clock", "Cloud", "CloudSettings", "Faults"]


class Cloud(CloudState):
    """One lab's cloud; the simulated API and the BMCs drive it, tests read it."""

    def boot_server(
        self,
        name: str,
        flavor_id: str,
        *,
        host: str | None,
        metadata: dict[str, str],
        project_id: str,
        user_id: str,
    ) -> Instance:
        """`POST /servers`: BUILD now, ACTIVE after `action_delay`. A named host (admin's
        `availability_zone=nova:HOST`) bypasses the scheduler's filters, as in Nova."""
        with self.lock:
            try:
                flavor = self._flavor(flavor_id)
            except NovaError as error:
                raise NovaError(400, "Invalid flavorRef provided.") from error
            now = self.clock()
            if host is not None:
                self._host(host)
                destination: str | None = host
            else:
                demand = Demand(flavor.vcpus, flavor.ram, flavor.disk + flavor.ephemeral)
                destination = choose_host(
                    self._candidates(now), demand, exclude=None, ratios=self.settings.ratios
                )
            server = Instance(
                id=model.new_uuid(),
                name=name,
                project_id=project_id,
                user_id=user_id,
                flavor=flavor,
                host=None,
                vm_state="building",
                power_state=model.NOSTATE,
                created=now,
                updated=now,
                task_state="spawning",
                metadata=dict(metadata),
            )
            self.servers[server.id] = server
            self._order = None
            if destination is None:
                server.vm_state, server.task_state = "error", None
                server.fault = {"code": 500, "message": "No valid host was found. ", "created": now}
                return server
            self._place(server, destination)

            def spawned(when: float) -> None:
                if server.id in self.servers and server.vm_state == "building":
                    server.vm_state, server.task_state, server.power_state = "active", None, model.RUNNING
                    server.updated = when
                    self._recount(server.host)

            self._schedule(self.settings.action_delay, spawned)
            return server

    def delete_server(self, server_id: str) -> None:
        """`DELETE /servers/{id}`: gone at once (Nova's local delete, as for a down host)."""
        with self.lock:
            server = self.server(server_id)
            if server.host is not None:
                self.servers_by_host[server.host].pop(server.id, None)
                self._add_usage(self.hosts[server.host], server.flavor, -1)
                self._recount(server.host)
            del self.servers[server_id]
            self.faults.evacuate_fails.discard(server_id)
            self._order = None

    def update_service(
        self,
        service_id: str,
        *,
        forced_down: bool | None = None,
        status: str | None = None,
        disabled_reason: str | None = None,
    ) -> Host:
        with self.lock:
            host = self.services.get(service_id)
            if host is None:
                raise NovaError(404, f"Service {service_id} could not be found.")
            if status is None and forced_down is None:
                raise NovaError(
                    400, "No updates were requested. Fields 'status' or 'forced_down' should be specified."
                )
            if status == "enabled" and disabled_reason is not None:
                raise NovaError(400, "Specifying 'disabled_reason' with status 'enabled' is invalid.")
            if forced_down is False and host.forced_down and self._done_evacuations_from(host.name):
                raise NovaError(
                    400,
                    f"Unable to force up host {host.name} as `done` evacuation migration records remain "
                    "associated with the host. Ensure the compute service has been restarted, allowing "
                    "these records to move to `completed` before retrying this request.",
                )
            if status is not None:
                host.disabled = status == "disabled"
                host.disabled_reason = disabled_reason if host.disabled else None
            if forced_down is not None:
                host.forced_down = forced_down
            return host

    def lock_server(self, server_id: str, locked: bool, reason: str | None = None) -> None:
        with self.lock:
            server = self.server(server_id)
            server.locked, server.locked_reason = locked, (reason if locked else None)
            server.updated = self.clock()

    def start_server(self, server_id: str) -> None:
        self._power_action(server_id, "start", allowed=("stopped",), task="powering-on", vm_state="active")

    def stop_server(self, server_id: str) -> None:
        self._power_action(
            server_id, "stop", allowed=("active", "error"), task="powering-off", vm_state="stopped"
        )

    def reboot_server(self, server_id: str, hard: bool) -> None:
        task = "reboot_started_hard" if hard else "rebooting"
        allowed = ("active", "stopped", "error") if hard else ("active",)
        self._power_action(server_id, "reboot", allowed=allowed, task=task, vm_state="active")

    def _power_action(
        self, server_id: str, action: str, *, allowed: Iterable[str], task: str, vm_state: str
    ) -> None:
        with self.lock:
            server = self.server(server_id)
            self._check_state(server, action, allowed)
            if server.host is None or not self.is_up(self._host(server.host), self.clock()):
                raise NovaError(409, "Service is unavailable at this time.")
            server.task_state, server.updated = task, self.clock()

            def finish(now: float) -> None:
                if server.id not in self.servers:
                    return  # deleted meanwhile
                server.vm_state, server.task_state, server.updated = vm_state, None, now
                server.power_state = model.RUNNING if vm_state == "active" else model.SHUTDOWN
                self._recount(server.host)

            self._schedule(self.settings.action_delay, finish)

    # -- evacuation -----------------------------------------------------------------------------
    def evacuate(self, server_id: str, target: str | None, microversion: tuple[int, int]) -> MigrationRecord:
        """Accept an evacuation as Nova's API does; the move itself happens `evacuate_delay` later."""
        with self.lock:
            if target is not None and target not in self.hosts:
                raise NovaError(404, f"Compute host {target} not found.")
            server = self.server(server_id)
            if server.host is not None and server.host == target:
                raise NovaError(400, "The target host can't be the same one.")
            self._check_state(server, "evacuate", ("active", "stopped", "error"))
            source = self._host(server.host) if server.host else None
            now = self.clock()
            if source is not None and self.is_up(source, now):
                raise NovaError(400, f"Compute service of {source.name} is still in use.")
            # Nova >= 2.95 leaves the evacuated server stopped; so does a server stopped before.
            stay_stopped = server.vm_state == "stopped" or microversion >= (2, 95)
            server.task_state, server.updated = "rebuilding", now
            migration = MigrationRecord(
                id=len(self.migrations) + 1,
                uuid=model.new_uuid(),
                instance_uuid=server.id,
                migration_type="evacuation",
                source_compute=server.host,
                dest_compute=None,
                status="accepted",
                created_at=now,
                updated_at=now,
                project_id=server.project_id,
                user_id=server.user_id,
                flavor_id=server.flavor.id,
            )
            self.migrations.append(migration)
            self._schedule(
                self.settings.evacuate_delay,
                lambda when: self._finish_evacuation(server, migration, target, stay_stopped, when),
            )
            return migration

    def _finish_evacuation(
        self, server: Instance, migration: MigrationRecord, target: str | None, stay_stopped: bool, now: float
    ) -> None:
        if server.id not in self.servers:
            migration.status, migration.updated_at = "error", now  # deleted meanwhile
            return
        destination: str | None = None
        if server.id in self.faults.evacuate_fails:
            reason = f"Injected lab fault: evacuation of {server.id} failed."
        else:
            demand = Demand(
                server.flavor.vcpus, server.flavor.ram, server.flavor.disk + server.flavor.ephemeral
            )
            destination = choose_host(
                self._candidates(now), demand, exclude=server.host, only=target, ratios=self.settings.ratios
            )
            reason = "No valid host was found. There are not enough hosts available."
        migration.updated_at = server.updated = now
        server.task_state = None
        if destination is None:
            server.vm_state = "error"
            server.fault = {"code": 500, "message": reason, "created": now}
            migration.status = "error"
            return
        self._place(server, destination)
        server.vm_state = "stopped" if stay_stopped else "active"
        server.power_state = model.SHUTDOWN if stay_stopped else model.RUNNING
        server.fault = None
        migration.dest_compute, migration.status = destination, "done"
        self._recount(destination)

    # -- faults ---------------------------------------------------------------------------------
    def fail_evacuation(self, server_id: str, fail: bool = True) -> None:
        with self.lock:
            self.server(server_id)
            (self.faults.evacuate_fails.add if fail else self.faults.evacuate_fails.discard)(server_id)
