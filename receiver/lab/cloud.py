"""The lab cloud: its state (`receiver.lab.state`) plus Nova's rules for what the API asks:
boot and delete, service updates, start / stop / reboot / lock, and evacuation
(`receiver.lab.evacuation`); and guests that crash, with Nova's power-state sync.

Each method checks what real Nova checks, in Nova's order and with Nova's messages, then
either changes the state at once (as Nova's API does) or queues the change for `tick()`
(as Nova's conductor and computes do later). Work for a host's nova-compute waits while
that host is not RUNNING (hung, compute dead, powered off), as Nova's RPC casts do."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress

from receiver.lab import model
from receiver.lab.action_log import Requester, lab_admin
from receiver.lab.aggregates import HostAggregates
from receiver.lab.evacuation import Evacuations
from receiver.lab.model import Host, Instance, NovaError
from receiver.lab.scheduler import choose_host
from receiver.lab.state import Clock, CloudSettings, Faults
from receiver.lab.usage import demand

__all__ = ["Clock", "Cloud", "CloudSettings", "Faults"]

API_HOST = "controller"  # where nova-api runs: the host of the events the API reports itself

# task_states a hard reboot may interrupt (nova/compute/task_states.py, ALLOW_REBOOT).
ALLOW_HARD_REBOOT_TASKS = (
    None, "rebooting", "reboot_pending", "reboot_started", "resuming", "rebooting_hard",
    "unpausing", "pausing", "suspending",
)  # fmt: skip


class Cloud(Evacuations, HostAggregates):
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
        requester: Requester | None = None,
    ) -> Instance:
        """`POST /servers`: BUILD now, ACTIVE after `action_delay`. A named host (admin's
        `availability_zone=nova:HOST`) bypasses the scheduler's filters, as in Nova."""
        with self.lock:
            try:
                flavor = self._flavor(flavor_id)
            except NovaError as error:
                raise NovaError(400, "Invalid flavorRef provided.") from error
            now = self.clock()
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
            if host is not None:
                self._host(host)
                destination: str | None = host
            else:
                destination = choose_host(
                    self._candidates(now), demand(server), exclude=None, ratios=self.settings.ratios
                )
            self.servers[server.id] = server
            self._order = None
            action = self.actions.start(
                server.id, "create", requester or Requester.user(user_id, project_id), now
            )
            if destination is None:
                server.vm_state, server.task_state = "error", None
                message = self._no_valid_host(demand(server), None)
                server.fault = {"code": 500, "message": message, "created": now}
                return server
            self._place(server, destination)

            def spawned(when: float) -> None:
                if server.id in self.servers and server.vm_state == "building":
                    server.vm_state, server.task_state = "active", None
                    server.record_power_state(model.RUNNING)
                    server.updated = server.launched_at = when
                    self._recount(server.host)
                    self.actions.event(action, "compute__do_build_and_run_instance", destination, when)

            self._cast(destination, self.settings.action_delay, spawned)
            return server

    def delete_server(self, server_id: str, requester: Requester | None = None) -> None:
        """`DELETE /servers/{id}`: gone at once (Nova's local delete, as for a down host); its
        instance actions stay (Nova lists them for deleted servers from 2.21)."""
        with self.lock:
            server = self.server(server_id)
            self.actions.start(server.id, "delete", requester or lab_admin(), self.clock())
            self._remove(server)
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
            if status == "enabled" and disabled_reason:
                raise NovaError(400, "Specifying 'disabled_reason' with status 'enabled' is invalid.")
            # Nova checks this on every forced_down=false, not only when the service is forced down.
            if forced_down is False and self._evacuations_from(host.name, ("done",)):
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

    def lock_server(
        self, server_id: str, locked: bool, reason: str | None = None, requester: Requester | None = None
    ) -> None:
        """Nova's lock / unlock (compute/api.py): its owner locking a locked server changes and
        records nothing; otherwise an action whose one event the API itself reports (`api_lock`,
        `api_unlock`, on the API's host). A lock without a reason keeps the one it had."""
        requester = requester or lab_admin()
        with self.lock:
            server = self.server(server_id)
            if locked and server.locked and requester.project_id == server.project_id:
                return
            now, name = self.clock(), "lock" if locked else "unlock"
            action = self.actions.start(server.id, name, requester, now)
            server.locked = locked
            if not locked or reason:
                server.locked_reason = reason if locked else None
            server.updated = now
            self.actions.event(action, f"api_{name}", API_HOST, now)

    def start_server(self, server_id: str, requester: Requester | None = None) -> None:
        self._power_action(
            server_id, "start", requester, allowed=("stopped",), task="powering-on", vm_state="active"
        )

    def stop_server(self, server_id: str, requester: Requester | None = None) -> None:
        self._power_action(
            server_id, "stop", requester, allowed=("active", "error"), task="powering-off", vm_state="stopped"
        )

    def reboot_server(self, server_id: str, hard: bool, requester: Requester | None = None) -> None:
        if hard:
            self._power_action(
                server_id, "reboot", requester, allowed=("active", "stopped", "error"), task="rebooting_hard",
                vm_state="active", allowed_tasks=ALLOW_HARD_REBOOT_TASKS,
            )  # fmt: skip
        else:
            self._power_action(
                server_id, "reboot", requester, allowed=("active",), task="rebooting", vm_state="active"
            )

    def crash(
        self, server_id: str, power_state: int = model.SHUTDOWN, sync_after: float | None = None
    ) -> None:
        """The guest stops on its own: the hypervisor reports `power_state` (SHUTDOWN when its
        QEMU died or it panicked under libvirt's default on_crash=destroy; CRASHED when
        on_crash=preserve keeps it) while Nova's record still says active and RUNNING. Only
        nova-compute's power-state sync updates that record, and the same sync then stops
        the instance (Nova's _sync_instance_power_state). With `sync_after` it runs that many
        seconds later, once the host's nova-compute works: in Nova, libvirt's STOPPED
        lifecycle event is handled 15 s after the stop; a CRASHED guest raises no lifecycle
        event Nova maps, so only the periodic sync (sync_power_state_interval, 600 s) finds it.
        None: nothing syncs."""
        if power_state not in (model.SHUTDOWN, model.CRASHED):
            raise ValueError("a crashed guest is SHUTDOWN (4) or CRASHED (6)")
        if sync_after is not None and sync_after < 0:
            raise ValueError("sync_after must be >= 0")
        with self.lock:
            server = self.server(server_id)
            if server.host is None or not self.hosts[server.host].powered_on:
                raise NovaError(409, f"server {server.id} is on no powered-on host")
            if server.hypervisor_power_state != model.RUNNING:
                raise NovaError(409, f"server {server.id} is not running on its hypervisor")
            server.unsynced_power_state = power_state
            if sync_after is not None:
                host = server.host
                self._cast(host, sync_after, lambda now: self._sync_power_state(server, host, now))

    def _sync_power_state(self, server: Instance, host: str, now: float) -> None:
        """nova/compute/manager.py _sync_instance_power_state, for the states the lab has."""
        if server.id not in self.servers or server.host != host:
            return  # deleted, or evacuated: another compute owns it now
        if server.task_state is not None:
            # Nova skips it; whatever the task does records the guest's power state when it ends.
            return
        actual = server.hypervisor_power_state
        if actual != server.power_state:
            server.record_power_state(actual)
            server.updated = now
            self._recount(host)
        if server.vm_state == "active" and actual in (model.SHUTDOWN, model.CRASHED):
            # _stop_unexpected_shutdown_instance: "Instance shutdown by itself. Calling the stop
            # API." As admin, so a lock does not stop it; a refusal is only logged by Nova.
            with suppress(NovaError):
                self.stop_server(server.id, Requester.nova())  # an action with no user: Nova's own

    def _power_action(
        self,
        server_id: str,
        action: str,
        requester: Requester | None,
        *,
        allowed: Iterable[str],
        task: str,
        vm_state: str,
        allowed_tasks: Iterable[str | None] = (None,),
    ) -> None:
        """Nova's API accepts these whatever the host's service state (check_instance_host()
        without check_is_up): on a host that is not RUNNING the task_state stays set until the
        host's nova-compute runs again, and the action is dropped if the server left meanwhile."""
        with self.lock:
            server = self.server(server_id)
            if server.host is None:
                raise NovaError(409, f"Instance {server.id} is not ready")
            self._check_state(server, action, allowed, allowed_tasks)
            host = server.host
            server.task_state, server.updated = task, self.clock()
            record = self.actions.start(server.id, action, requester or lab_admin(), server.updated)

            def finish(now: float) -> None:
                if server.id not in self.servers or server.host != host or server.task_state != task:
                    return  # deleted, evacuated or re-tasked meanwhile
                server.vm_state, server.task_state, server.updated = vm_state, None, now
                # Powering off a crashed guest leaves it off; starting or rebooting one runs it.
                server.record_power_state(model.RUNNING if vm_state == "active" else model.SHUTDOWN)
                self._recount(server.host)
                self.actions.event(record, f"compute_{action}_instance", host, now)

            self._cast(host, self.settings.action_delay, finish)
