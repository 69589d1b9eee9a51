"""Segments and hosts in Redis, plus each host's runtime state (maintenance).

The inventory is stored as validated JSON: BMC password *references* only, never values.
Maintenance is runtime state owned by recoveries and operators; re-applying a file never
clears a maintenance that a recovery set (a fenced host returns only through an explicit,
gated step: safety rule 5).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from receiver.adapters.redis_store import translate_errors
from receiver.domain.record import iso
from receiver.inventory import HostSpec, Inventory, SegmentSpec, parse_inventory


@dataclass(frozen=True)
class HostState:
    on_maintenance: bool
    reason: str = ""
    notification_uuid: str | None = None
    since: str | None = None


@dataclass(frozen=True)
class HostView:
    """A host as the workflows and the API see it: spec, segment and runtime state."""

    spec: HostSpec
    segment: SegmentSpec
    state: HostState

    @property
    def on_maintenance(self) -> bool:
        return self.state.on_maintenance


class InventoryStore:
    def __init__(self, client: redis.Redis, prefix: str = "lazarus") -> None:
        self.redis = client
        self.prefix = prefix

    @property
    def _key(self) -> str:
        return f"{self.prefix}:inventory"

    def _state_key(self, host: str) -> str:
        return f"{self.prefix}:hoststate:{host}"

    def load(self) -> Inventory:
        with translate_errors():
            raw = self.redis.get(self._key)
        return parse_inventory(json.loads(raw) if raw else {}, source="stored inventory")

    def apply(self, inventory: Inventory, now: datetime) -> list[str]:
        """Replace the stored inventory; returns a line per change, for the operator."""
        changes: list[str] = []
        with translate_errors():
            while True:
                with self.redis.pipeline() as pipe:
                    try:
                        pipe.watch(self._key)
                        raw = pipe.get(self._key)
                        old = parse_inventory(json.loads(raw) if raw else {}, source="stored inventory")
                        changes = _diff(old, inventory)
                        states = {h.name: self._read_state(pipe, h.name) for _, h in _hosts(inventory)}
                        pipe.multi()
                        pipe.set(self._key, inventory.model_dump_json())
                        for _, host in _hosts(inventory):
                            state = states[host.name]
                            if state is None:
                                self._write_state(
                                    pipe,
                                    host.name,
                                    HostState(host.on_maintenance, "inventory", None, iso(now)),
                                )
                            elif state.on_maintenance and not host.on_maintenance and state.notification_uuid:
                                changes.append(
                                    f"host {host.name}: kept on maintenance (set by recovery "
                                    f"{state.notification_uuid}; reinstate it explicitly)"
                                )
                            elif state.on_maintenance != host.on_maintenance:
                                self._write_state(
                                    pipe,
                                    host.name,
                                    HostState(host.on_maintenance, "inventory", None, iso(now)),
                                )
                        pipe.execute()
                        return changes
                    except redis.WatchError:
                        continue

    def host(self, name: str) -> HostView | None:
        inventory = self.load()
        for segment, host in _hosts(inventory):
            if host.name == name:
                with translate_errors():
                    state = self._read_state(self.redis, name)
                return HostView(host, segment, state or HostState(host.on_maintenance))
        return None

    def hosts(self) -> list[HostView]:
        inventory = self.load()
        views = []
        with translate_errors():
            for segment, host in _hosts(inventory):
                state = self._read_state(self.redis, host.name)
                views.append(HostView(host, segment, state or HostState(host.on_maintenance)))
        return views

    def set_maintenance(self, host: str, reason: str, notification_uuid: str | None, now: datetime) -> None:
        with translate_errors():
            self._write_state(self.redis, host, HostState(True, reason, notification_uuid, iso(now)))

    def _read_state(self, client: Any, host: str) -> HostState | None:
        raw = client.get(self._state_key(host))
        if raw is None:
            return None
        data = json.loads(raw)
        return HostState(**data)

    def _write_state(self, client: Any, host: str, state: HostState) -> None:
        client.set(self._state_key(host), json.dumps(state.__dict__))


def _hosts(inventory: Inventory) -> list[tuple[SegmentSpec, HostSpec]]:
    return [(segment, host) for segment in inventory.segments for host in segment.hosts]


def _diff(old: Inventory, new: Inventory) -> list[str]:
    changes = []
    old_segments = {s.name: s for s in old.segments}
    new_segments = {s.name: s for s in new.segments}
    for name in sorted(new_segments.keys() - old_segments.keys()):
        changes.append(f"segment {name}: created")
    for name in sorted(old_segments.keys() - new_segments.keys()):
        changes.append(f"segment {name}: removed")
    for name in sorted(new_segments.keys() & old_segments.keys()):
        if new_segments[name].model_dump(exclude={"hosts"}) != old_segments[name].model_dump(
            exclude={"hosts"}
        ):
            changes.append(f"segment {name}: updated")
    old_hosts = {h.name: h for _, h in _hosts(old)}
    new_hosts = {h.name: (s, h) for s, h in _hosts(new)}
    for name in sorted(new_hosts.keys() - old_hosts.keys()):
        changes.append(f"host {name}: created in segment {new_hosts[name][0].name}")
    for name in sorted(old_hosts.keys() - new_hosts.keys()):
        changes.append(f"host {name}: removed")
    for name in sorted(new_hosts.keys() & old_hosts.keys()):
        if new_hosts[name][1] != old_hosts[name]:
            changes.append(f"host {name}: updated")
    return changes
