"""Segments and hosts in Redis, plus each host's runtime state (maintenance).

Keys (``P`` = settings.key_prefix)::

    P:inventory            the catalog, JSON: segments with their hosts, ids and times
    P:hoststate:<name>     a host's runtime maintenance state, JSON
    P:claim:host:<name>    (written by the record store) the open recovery of that host

The inventory is stored as validated JSON: BMC password *references* only, never values.
Every write (API, CLI, `inventory apply`) is one optimistic transaction that WATCHes the
catalog, the touched hosts' states and their recovery claims: a concurrent writer, or a
recovery that starts or fences meanwhile, makes the edit run again on fresh data, so no
write is lost and no rule is checked against stale state.
Maintenance is runtime state owned by recoveries and operators; no edit clears a
maintenance that a recovery set (a fenced host returns only through an explicit, gated
step: safety rule 5).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from receiver.adapters.redis_store import translate_errors
from receiver.domain.record import iso
from receiver.inventory import HostSpec, Inventory, SegmentSpec
from receiver.inventory_apply import apply_inventory
from receiver.inventory_edits import (
    Catalog,
    Edit,
    HostState,
    Meta,
    Runtime,
    create_host,
    create_segment,
    delete_host,
    delete_segment,
    fresh_uuid,
    unreserve_host,
    update_host,
    update_segment,
)

__all__ = ["HostState", "HostView", "InventoryStore", "SegmentView"]
NO_META = Meta(0, None)


@dataclass(frozen=True)
class SegmentView:
    spec: SegmentSpec
    meta: Meta


@dataclass(frozen=True)
class HostView:
    """A host as the workflows and the API see it: spec, segment and runtime state."""

    spec: HostSpec
    segment: SegmentSpec
    state: HostState
    meta: Meta = NO_META
    segment_meta: Meta = NO_META
    recovery: str | None = None  # the open recovery of this host, if any

    @property
    def on_maintenance(self) -> bool:
        return self.state.on_maintenance


@dataclass(frozen=True)
class _Snapshot:
    catalog: Catalog
    runtime: Runtime


class InventoryStore:
    def __init__(self, client: redis.Redis, prefix: str = "lazarus") -> None:
        self.redis = client
        self.prefix = prefix

    @property
    def _key(self) -> str:
        return f"{self.prefix}:inventory"

    def _state_key(self, host: str) -> str:
        return f"{self.prefix}:hoststate:{host}"

    def _claim_key(self, host: str) -> str:
        # The record store's key of a host's open recovery (redis_store: P:claim:host:<name>).
        return f"{self.prefix}:claim:host:{host}"

    # -- reading ---------------------------------------------------------------------------
    def load(self) -> Inventory:
        return self.catalog().inventory

    def catalog(self) -> Catalog:
        with translate_errors():
            raw = self.redis.get(self._key)
        return _parse(raw)

    def segments(self) -> list[SegmentView]:
        catalog = self.catalog()
        return [SegmentView(s, catalog.meta_of(s.uuid)) for s in catalog.inventory.segments]

    def segment(self, ref: str) -> SegmentView:
        catalog = self.catalog()
        spec = catalog.segment(ref)
        return SegmentView(spec, catalog.meta_of(spec.uuid))

    def segment_hosts(self, ref: str) -> tuple[SegmentView, list[HostView]]:
        snapshot = self._read()
        spec = snapshot.catalog.segment(ref)
        views = [v for v in _views(snapshot) if v.segment.uuid == spec.uuid]
        return SegmentView(spec, snapshot.catalog.meta_of(spec.uuid)), views

    def host_in(self, segment_ref: str | None, ref: str) -> HostView:
        """A host by uuid, id or name; within a segment, or anywhere when `segment_ref` is None."""
        snapshot = self._read()
        _, spec = snapshot.catalog.host(segment_ref, ref)
        return next(v for v in _views(snapshot, [spec.name]) if v.spec.uuid == spec.uuid)

    def host(self, name: str) -> HostView | None:
        snapshot = self._read(names=[name])
        views = _views(snapshot, [name])
        return views[0] if views else None

    def hosts(self) -> list[HostView]:
        return _views(self._read())

    # -- writing ---------------------------------------------------------------------------
    def apply(self, inventory: Inventory, now: datetime) -> list[str]:
        """Replace the stored inventory; returns a line per change, for the operator."""
        edit = self._transact(
            lambda s: apply_inventory(s.catalog, s.runtime, inventory, now), everything=True
        )
        return list(edit.changes)

    def create_segment(self, fields: dict[str, Any], now: datetime) -> SegmentView:
        edit = self._transact(lambda s: create_segment(s.catalog, fields, now, fresh_uuid()))
        return self._segment_of(edit)

    def update_segment(self, ref: str, changes: dict[str, Any], now: datetime) -> SegmentView:
        edit = self._transact(lambda s: update_segment(s.catalog, s.runtime, ref, changes, now), segment=ref)
        return self._segment_of(edit)

    def delete_segment(self, ref: str) -> list[str]:
        edit = self._transact(lambda s: delete_segment(s.catalog, s.runtime, ref), segment=ref)
        return list(edit.changes)

    def create_host(self, segment_ref: str, fields: dict[str, Any], now: datetime, source: str) -> HostView:
        name = str(fields.get("name", ""))
        edit = self._transact(
            lambda s: create_host(
                s.catalog, s.runtime, segment_ref, fields, now=now, new_uuid=fresh_uuid(), source=source
            ),
            segment=segment_ref,
            names=[name],
        )
        return self._host_of(edit)

    def update_host(
        self, segment_ref: str | None, ref: str, changes: dict[str, Any], now: datetime, source: str
    ) -> HostView:
        new_name = changes.get("name")
        edit = self._transact(
            lambda s: update_host(s.catalog, s.runtime, segment_ref, ref, changes, now=now, source=source),
            segment=segment_ref,
            host=ref,
            names=[new_name] if isinstance(new_name, str) else [],
        )
        return self._host_of(edit)

    def delete_host(self, segment_ref: str | None, ref: str) -> list[str]:
        edit = self._transact(
            lambda s: delete_host(s.catalog, s.runtime, segment_ref, ref), segment=segment_ref, host=ref
        )
        return list(edit.changes)

    def clear_maintenance(self, host: str, now: datetime) -> None:
        """The end of an explicit reinstate; nothing else calls this."""
        with translate_errors():
            self._write_state(self.redis, host, HostState(False, "reinstated", None, iso(now)))

    def unreserve(self, host: str, now: datetime) -> bool:
        """A reserved spare taken into service by a recovery stops being reserved (Masakari).

        The workflow's own edit: not refused while the segment is under recovery, as an
        operator's edit is. Returns whether the host was reserved."""
        edit = self._transact(lambda s: unreserve_host(s.catalog, host, now), host=host)
        return bool(edit.changes)

    def set_maintenance(self, host: str, reason: str, notification_uuid: str | None, now: datetime) -> None:
        with translate_errors():
            self._write_state(self.redis, host, HostState(True, reason, notification_uuid, iso(now)))

    # -- internals -------------------------------------------------------------------------
    def _transact(
        self,
        edit: Callable[[_Snapshot], Edit],
        *,
        everything: bool = False,
        segment: str | None = None,
        host: str | None = None,
        names: Iterable[str] = (),
    ) -> Edit:
        """Run `edit` on a snapshot and write its result atomically; again if anything it read
        (the catalog, the concerned hosts' states and claims) changed in between."""
        with translate_errors():
            while True:
                with self.redis.pipeline() as pipe:
                    try:
                        pipe.watch(self._key)
                        catalog = _parse(pipe.get(self._key))
                        concerned = {*names, *_concerned(catalog, everything, segment, host)}
                        keys = [
                            k for n in sorted(concerned) for k in (self._state_key(n), self._claim_key(n))
                        ]
                        if keys:
                            pipe.watch(*keys)
                        result = edit(_Snapshot(catalog, self._runtime(pipe, sorted(concerned))))
                        pipe.multi()
                        if result.catalog is not catalog:
                            pipe.set(self._key, json.dumps(result.catalog.to_stored()))
                        for name, state in result.states.items():
                            if state is None:
                                pipe.delete(self._state_key(name))
                            else:
                                self._write_state(pipe, name, state)
                        pipe.execute()
                        return result
                    except redis.WatchError:
                        continue

    def _read(self, names: list[str] | None = None) -> _Snapshot:
        with translate_errors():
            catalog = _parse(self.redis.get(self._key))
            wanted = (
                names if names is not None else [h.name for s in catalog.inventory.segments for h in s.hosts]
            )
            return _Snapshot(catalog, self._runtime(self.redis, wanted))

    def _runtime(self, client: Any, names: list[str]) -> Runtime:
        if not names:
            return Runtime()
        states = client.mget([self._state_key(n) for n in names])
        claims = client.mget([self._claim_key(n) for n in names])
        return Runtime(
            {
                n: HostState(**json.loads(raw))
                for n, raw in zip(names, states, strict=True)
                if raw is not None
            },
            {n: _text(raw) for n, raw in zip(names, claims, strict=True) if raw is not None},
        )

    def _write_state(self, client: Any, host: str, state: HostState) -> None:
        client.set(self._state_key(host), json.dumps(state.__dict__))

    def _segment_of(self, edit: Edit) -> SegmentView:
        assert edit.subject is not None
        spec = edit.catalog.segment(edit.subject)
        return SegmentView(spec, edit.catalog.meta_of(spec.uuid))

    def _host_of(self, edit: Edit) -> HostView:
        assert edit.subject is not None
        return self.host_in(None, edit.subject)


def _parse(raw: bytes | str | None) -> Catalog:
    from pydantic import ValidationError

    from receiver.errors import ConfigError

    try:
        return Catalog.from_stored(json.loads(raw) if raw else None)
    except ValidationError as exc:
        raise ConfigError(f"stored inventory is invalid: {exc.error_count()} problems") from None


def _concerned(catalog: Catalog, everything: bool, segment: str | None, host: str | None) -> set[str]:
    """Host names whose state and claim gate the edit: all, a segment's, or one host's segment's."""
    if everything:
        return {h.name for s in catalog.inventory.segments for h in s.hosts}
    found: list[SegmentSpec] = []
    for ref, finder in ((segment, _segment_or_none), (host, _host_segment_or_none)):
        if ref is not None:
            match = finder(catalog, ref, segment)
            if match is not None:
                found.append(match)
    return {h.name for s in found for h in s.hosts}


def _segment_or_none(catalog: Catalog, ref: str, _: str | None) -> SegmentSpec | None:
    from receiver.errors import NotFound

    try:
        return catalog.segment(ref)
    except NotFound:
        return None  # the edit itself reports it


def _host_segment_or_none(catalog: Catalog, ref: str, segment: str | None) -> SegmentSpec | None:
    from receiver.errors import NotFound

    try:
        return catalog.host(segment, ref)[0]
    except NotFound:
        return None


def _views(snapshot: _Snapshot, names: list[str] | None = None) -> list[HostView]:
    catalog, runtime = snapshot.catalog, snapshot.runtime
    views = []
    for segment in catalog.inventory.segments:
        for host in segment.hosts:
            if names is not None and host.name not in names:
                continue
            views.append(
                HostView(
                    host,
                    segment,
                    runtime.states.get(host.name) or HostState(host.on_maintenance),
                    catalog.meta_of(host.uuid),
                    catalog.meta_of(segment.uuid),
                    runtime.claims.get(host.name),
                )
            )
    return views


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
