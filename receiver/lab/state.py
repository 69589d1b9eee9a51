"""The lab cloud's state: records, indexes, heartbeats, host conditions, the clock and the work queue.

Thread-safe through one re-entrant lock. Time comes from an injectable clock; asynchronous
work (evacuations, boots, start/stop, reboots) is queued with a due time and carried out by
`tick()`, which the runner's ticker thread calls, so no request ever waits for a state change.

Hosts are RUNNING, HUNG, COMPUTE_DEAD or OFF (`model.Condition`). Heartbeats are derived, not
stored: a RUNNING host heartbeats every `report_interval` seconds from `heartbeat_since`; any
other host keeps the last heartbeat it sent, so its service turns `down` once that is older
than `service_down_time`. Work sent to a host's nova-compute (Nova's RPC casts) waits, as in
its message queue, while the host is not RUNNING and is carried out once it runs again.
`receiver.lab.cloud.Cloud` adds Nova's rules for the API's requests on top.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from receiver.lab import model
from receiver.lab.action_log import ActionLog, Requester
from receiver.lab.model import Condition, Flavor, Host, Instance, MigrationRecord, NovaError
from receiver.lab.scheduler import AllocationRatios, Candidate, Demand, fits, no_valid_host_message
from receiver.lab.usage import ResourceTracking

Clock = Callable[[], float]
_Operation = Callable[[float], None]
EVACUATION_CLEANED_UP = ("accepted", "pre-migrating", "done")


@dataclass
class CloudSettings:
    service_down_time: float = 10.0  # seconds without heartbeat before a service is `down`
    report_interval: float = 1.0  # seconds between heartbeats of a powered-on host
    evacuate_delay: float = 1.0  # seconds from an accepted evacuate to ACTIVE on the target
    action_delay: float = 0.3  # seconds for start / stop / reboot to take effect
    ratios: AllocationRatios = field(default_factory=AllocationRatios)

    def __post_init__(self) -> None:
        if self.report_interval <= 0 or self.service_down_time <= self.report_interval:
            raise ValueError("service_down_time must be greater than report_interval (> 0)")
        if self.evacuate_delay < 0 or self.action_delay < 0:
            raise ValueError("evacuate_delay and action_delay must be >= 0")


@dataclass
class Faults:
    evacuate_fails: set[str] = field(default_factory=set)  # server ids whose evacuation ends in ERROR
    # (destination host, server id or None for any server): rebuilds there end in ERROR
    evacuate_fails_on: set[tuple[str, str | None]] = field(default_factory=set)
    api_delay_ms: int = 0  # added to every compute API response
    # Compute API path prefixes (under /v2.1) that Nova's policy refuses to our account: 403.
    forbidden: set[str] = field(default_factory=set)


class CloudState(ResourceTracking):
    """Hosts, services, servers, flavors and migrations of one lab; implements the BMC's HostPower."""

    def __init__(self, settings: CloudSettings | None = None, clock: Clock = time.time) -> None:
        self.settings = settings or CloudSettings()
        self.clock = clock
        self.lock = threading.RLock()
        self.faults = Faults()
        self.flavors: dict[str, Flavor] = {}
        self.hosts: dict[str, Host] = {}
        self.services: dict[str, Host] = {}  # by service id
        self.servers: dict[str, Instance] = {}
        self.servers_by_host: dict[str, dict[str, None]] = {}  # ordered sets of server ids
        self.migrations: list[MigrationRecord] = []  # in id order
        # Indexes, so a query about one server or host never scans every migration.
        self.migrations_by_instance: dict[str, list[MigrationRecord]] = {}
        self.migrations_by_host: dict[str, dict[int, MigrationRecord]] = {}  # as source or destination
        self._order: list[Instance] | None = None  # servers in Nova's default order, cached
        self._queue: list[tuple[float, int, _Operation]] = []
        self._seq = itertools.count()
        self._waiting: dict[str, list[_Operation]] = {}  # work cast to a host that is not RUNNING
        # Placement's allocation of an evacuating server on its destination, until it moves there.
        self._claims: dict[str, str] = {}  # server id -> destination host
        self.actions = ActionLog()  # os-instance-actions
        self.aggregates: dict[int, model.AggregateRecord] = {}  # os-aggregates, by id
        self.aggregate_ids = itertools.count(1)  # ids are never reused, as in Nova's database

    # -- building -----------------------------------------------------------------------------
    def add_flavor(self, flavor: Flavor) -> Flavor:
        with self.lock:
            self.flavors[flavor.id] = flavor
            return flavor

    def add_host(self, name: str, vcpus: int, memory_mb: int, local_gb: int) -> Host:
        with self.lock:
            if name in self.hosts:
                raise ValueError(f"host {name} already exists")
            host = Host(
                name=name, vcpus=vcpus, memory_mb=memory_mb, local_gb=local_gb, heartbeat_since=self.clock()
            )
            host.number = len(self.hosts) + 1
            self.hosts[name] = host
            self.services[host.service_id] = host
            self.servers_by_host[name] = {}
            return host

    def add_server(
        self,
        name: str,
        host: str,
        flavor_id: str,
        *,
        stopped: bool = False,
        metadata: dict[str, str] | None = None,
        project_id: str = "demo",
        user_id: str = "demo",
        server_id: str | None = None,
        boot_from_volume: bool = False,
        volumes: int = 0,
    ) -> Instance:
        """A server that has run on `host` for a while (no scheduler, no BUILD). Booted from a
        volume, its root disk is a volume (Nova shows `"image": ""` and lists it first among
        the attached volumes); `volumes` more data volumes are attached."""
        if volumes < 0:
            raise ValueError("volumes must be >= 0")
        with self.lock:
            flavor = self._flavor(flavor_id)
            self._host(host)
            now = self.clock()
            server = Instance(
                id=server_id or model.new_uuid(),
                name=name,
                project_id=project_id,
                user_id=user_id,
                flavor=flavor,
                host=None,
                vm_state="stopped" if stopped else "active",
                power_state=model.SHUTDOWN if stopped else model.RUNNING,
                created=now,
                updated=now,
                metadata=dict(metadata or {}),
                launched_at=now,
                root_volume=model.new_uuid() if boot_from_volume else None,
                volumes=[model.new_uuid() for _ in range(volumes)],
            )
            self.servers[server.id] = server
            self._place(server, host)
            self._order = None
            created = self.actions.start(server.id, "create", Requester.user(user_id, project_id), now)
            self.actions.event(created, "compute__do_build_and_run_instance", host, now)
            return server

    # -- HostPower (the BMC simulators read and set this) --------------------------------------
    def is_on(self, host: str) -> bool:
        with self.lock:
            return self._host(host).powered_on

    def set_power(self, host: str, on: bool) -> None:
        """Power off ends any condition (a hung host too); power on boots a healthy host whose
        nova-compute starts afresh. Powering on a host that is on changes nothing."""
        with self.lock:
            record = self._host(host)
            if not on:
                self._become(record, Condition.OFF)
            elif record.condition is Condition.OFF:
                self._become(record, Condition.RUNNING)
                self._compute_started(record)

    # -- host conditions (the control API sets these) -----------------------------------------
    def hang(self, host: str, hung: bool = True) -> None:
        """Freeze a powered-on host (its BMC still says ON), or let a hung one carry on where
        it stopped: the same nova-compute resumes, so nothing of a restart happens."""
        with self.lock:
            record = self._host(host)
            if hung and record.condition is Condition.OFF:
                raise NovaError(409, f"host {host} is powered off; only a powered-on host can hang")
            if hung and record.condition is not Condition.HUNG:
                record.hung_from = record.condition
                self._become(record, Condition.HUNG)
            elif not hung and record.condition is Condition.HUNG:
                self._become(record, record.hung_from)

    def set_compute_running(self, host: str, running: bool) -> None:
        """Kill nova-compute on a live host (guests keep running), or start it again, which
        runs its init_host. Starting a compute that runs changes nothing."""
        with self.lock:
            record = self._host(host)
            if record.condition in (Condition.OFF, Condition.HUNG):
                raise NovaError(409, f"host {host} is {record.condition}; its nova-compute cannot be changed")
            if not running:
                self._become(record, Condition.COMPUTE_DEAD)
            elif record.condition is Condition.COMPUTE_DEAD:
                self._become(record, Condition.RUNNING)
                self._compute_started(record)

    def _become(self, host: Host, condition: Condition) -> None:
        if condition is host.condition:
            return
        now = self.clock()
        if host.working:
            host.last_heartbeat_at = self.last_heartbeat(host, now)  # the heartbeat stops here
        host.condition = condition
        if host.working:
            host.heartbeat_since = now
            self._release_unreleased(host)
            self._deliver_waiting(host.name)

    # -- services -------------------------------------------------------------------------------
    def last_heartbeat(self, host: Host, now: float) -> float:
        if not host.working:
            return host.last_heartbeat_at
        interval = self.settings.report_interval
        return host.heartbeat_since + ((now - host.heartbeat_since) // interval) * interval

    def is_up(self, host: Host, now: float) -> bool:
        """Nova's servicegroup view: forced down, or no heartbeat for service_down_time, is down."""
        if host.forced_down:
            return False
        if host.condition is Condition.RUNNING:
            return True  # it heartbeats every report_interval, which is < service_down_time
        return now - host.last_heartbeat_at <= self.settings.service_down_time

    # -- servers --------------------------------------------------------------------------------
    def server(self, server_id: str) -> Instance:
        with self.lock:
            server = self.servers.get(server_id)
            if server is None:
                raise NovaError(404, f"Instance {server_id} could not be found.")
            return server

    def list_servers(self, host: str | None = None, project_id: str | None = None) -> list[Instance]:
        """Servers in Nova's default order (newest first, then id descending), optionally filtered."""
        with self.lock:
            if host is not None:
                ids = self.servers_by_host.get(host, {})
                chosen = [self.servers[i] for i in ids]
                chosen.sort(key=lambda s: (s.created, s.id), reverse=True)
            else:
                if self._order is None:
                    self._order = sorted(self.servers.values(), key=lambda s: (s.created, s.id), reverse=True)
                chosen = list(self._order)
            if project_id is not None:
                chosen = [s for s in chosen if s.project_id == project_id]
            return chosen

    def _candidates(self, now: float, only: str | None = None) -> list[Candidate]:
        """The hosts the scheduler may choose: enabled and up (Nova's ComputeFilter), or just
        `only` if it is. A single pass without building the hosts that cannot be chosen:
        at 1,000 hosts this runs for every evacuation."""
        return [_candidate(h) for h in self._named(only) if not h.disabled and self.is_up(h, now)]

    def _no_valid_host(self, demand: Demand, only: str | None) -> str:
        """Nova's fault message when the scheduler found nothing (`only`: the requested host)."""
        ratios = self.settings.ratios
        placeable = any(not h.disabled and fits(_candidate(h), demand, ratios) for h in self._named(only))
        return no_valid_host_message(placeable)

    def _named(self, only: str | None) -> Iterable[Host]:
        if only is None:
            return self.hosts.values()
        return [self.hosts[only]] if only in self.hosts else []

    # -- migrations -----------------------------------------------------------------------------
    def list_migrations(
        self, *, instance_uuid: str | None = None, source_compute: str | None = None, host: str | None = None
    ) -> list[MigrationRecord]:
        """Migration records in id order, filtered through the narrowest index that applies."""
        with self.lock:
            if instance_uuid is not None:
                found: list[MigrationRecord] = list(self.migrations_by_instance.get(instance_uuid, ()))
            elif source_compute is not None or host is not None:
                involved = self.migrations_by_host.get(source_compute or host or "", {})
                found = sorted(involved.values(), key=lambda m: m.id)
            else:
                found = list(self.migrations)
            return [
                m
                for m in found
                if (instance_uuid is None or m.instance_uuid == instance_uuid)
                and (source_compute is None or m.source_compute == source_compute)
                and (host is None or host in (m.source_compute, m.dest_compute))
            ]

    def _add_migration(self, migration: MigrationRecord) -> None:
        self.migrations.append(migration)
        self.migrations_by_instance.setdefault(migration.instance_uuid, []).append(migration)
        for name in (migration.source_compute, migration.dest_compute):
            if name is not None:
                self.migrations_by_host.setdefault(name, {})[migration.id] = migration

    def _set_destination(self, migration: MigrationRecord, destination: str) -> None:
        migration.dest_compute = destination
        self.migrations_by_host.setdefault(destination, {})[migration.id] = migration

    def set_api_delay(self, delay_ms: int) -> None:
        if delay_ms < 0:
            raise ValueError("delay_ms must be >= 0")
        with self.lock:
            self.faults.api_delay_ms = delay_ms

    # -- time -----------------------------------------------------------------------------------
    def tick(self) -> int:
        """Carry out every queued operation that is due; returns how many ran."""
        ran = 0
        now = self.clock()
        while True:
            # The lock is taken per operation, so API requests are answered between them.
            with self.lock:
                if not self._queue or self._queue[0][0] > now:
                    return ran
                _, _, operation = heapq.heappop(self._queue)
                operation(now)
            ran += 1

    def pending_operations(self) -> int:
        with self.lock:
            return len(self._queue)

    def waiting_operations(self) -> dict[str, int]:
        """Work cast to hosts that are not RUNNING, by host."""
        with self.lock:
            return {host: len(waiting) for host, waiting in self._waiting.items() if waiting}

    # -- internals ------------------------------------------------------------------------------
    def _schedule(self, delay: float, operation: _Operation) -> None:
        heapq.heappush(self._queue, (self.clock() + delay, next(self._seq), operation))

    def _cast(self, host: str, delay: float, operation: _Operation) -> None:
        """Send work to `host`'s nova-compute: carried out `delay` seconds from now if the host
        is RUNNING then, else kept (like the RPC message in its queue) until it runs again."""

        def attempt(now: float) -> None:
            if self.hosts[host].working:
                operation(now)
            else:
                self._waiting.setdefault(host, []).append(attempt)

        self._schedule(delay, attempt)

    def _deliver_waiting(self, host: str) -> None:
        for attempt in self._waiting.pop(host, []):
            self._schedule(0.0, attempt)

    def _host(self, name: str) -> Host:
        host = self.hosts.get(name)
        if host is None:
            raise NovaError(404, f"Compute host {name} not found.")
        return host

    def _flavor(self, flavor_id: str) -> Flavor:
        flavor = self.flavors.get(flavor_id) or next(
            (f for f in self.flavors.values() if f.name == flavor_id), None
        )
        if flavor is None:
            raise NovaError(404, f"Flavor {flavor_id} could not be found.")
        return flavor

    @staticmethod
    def _check_state(
        server: Instance, action: str, allowed: Iterable[str], allowed_tasks: Iterable[str | None] = (None,)
    ) -> None:
        """Nova's check_instance_state: vm_state first, then task_state, with Nova's message."""
        if server.vm_state not in allowed:
            raise NovaError(
                409, f"Cannot '{action}' instance {server.id} while it is in vm_state {server.vm_state}"
            )
        if server.task_state not in allowed_tasks:
            raise NovaError(
                409, f"Cannot '{action}' instance {server.id} while it is in task_state {server.task_state}"
            )

    def _evacuations_from(self, host: str, statuses: Iterable[str]) -> list[MigrationRecord]:
        wanted = set(statuses)
        return [
            m
            for m in sorted(self.migrations_by_host.get(host, {}).values(), key=lambda m: m.id)
            if m.source_compute == host and m.migration_type == "evacuation" and m.status in wanted
        ]

    def _compute_started(self, host: Host) -> None:
        """What a starting nova-compute's init_host does (nova/compute/manager.py,
        _destroy_evacuated_instances): the evacuations away from this host that are `accepted`,
        `pre-migrating` or `done` move to `completed`, one record per server (the newest)."""
        newest = {m.instance_uuid: m for m in self._evacuations_from(host.name, EVACUATION_CLEANED_UP)}
        now = self.clock()
        for migration in newest.values():
            migration.status, migration.updated_at = "completed", now


def _candidate(h: Host) -> Candidate:
    return Candidate(
        h.name, True, h.vcpus, h.memory_mb, h.local_gb, h.vcpus_used, h.memory_mb_used, h.local_gb_used
    )
