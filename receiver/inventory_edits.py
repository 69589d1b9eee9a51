"""Changes to the stored inventory as pure functions: what each edit does and what it may not.

Each edit takes the `Catalog` (the stored inventory with its Masakari bookkeeping: integer
ids, creation and update times) and the `Runtime` facts that gate changes (each host's
maintenance state, the open host recoveries), and returns an `Edit`: the new catalog, the
host states to write and a line per change for the operator. The store runs an edit inside
one optimistic transaction, so a concurrent writer makes it run again on fresh data.

Rules kept here, for the API, the CLI and `inventory apply` alike:
- names are unique (segments among segments, hosts across all segments);
- nothing in a segment changes while one of its hosts is under recovery (Masakari's 409);
- a host that a recovery fenced stays on maintenance: only the explicit reinstate step
  clears it (safety rule 5), never an edit.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from receiver.domain.record import iso
from receiver.errors import InputError, NotFound
from receiver.inventory import HostSpec, Inventory, InventoryConflict, SegmentSpec

FORMAT = 2
_HIDDEN = ("bmc", "fencing")  # values under these keys are never echoed (a password typed by mistake)


@dataclass(frozen=True)
class HostState:
    """Runtime maintenance of a host; `notification_uuid` set: a recovery fenced it."""

    on_maintenance: bool
    reason: str = ""
    notification_uuid: str | None = None
    since: str | None = None


@dataclass(frozen=True)
class Meta:
    id: int
    created_at: str | None
    updated_at: str | None = None


@dataclass(frozen=True)
class Catalog:
    inventory: Inventory
    meta: Mapping[str, Meta]  # by uuid
    seq: int  # the last integer id handed out

    @classmethod
    def from_stored(cls, data: Mapping[str, Any] | None) -> Catalog:
        """The stored document; a document from before ids were stored gets them in order."""
        data = dict(data or {})
        raw_meta = data.pop("meta", {})
        seq = int(data.pop("seq", 0))
        data.pop("format", None)
        inventory = Inventory.model_validate(data)
        meta = {key: Meta(*value) for key, value in raw_meta.items()}
        for uid in _uuids(inventory):
            if uid not in meta:
                seq += 1
                meta[uid] = Meta(seq, None)
        return cls(inventory, meta, seq)

    def to_stored(self) -> dict[str, Any]:
        live = set(_uuids(self.inventory))
        return {
            "format": FORMAT,
            **self.inventory.model_dump(mode="json"),
            "meta": {k: [m.id, m.created_at, m.updated_at] for k, m in self.meta.items() if k in live},
            "seq": self.seq,
        }

    def meta_of(self, uid: str) -> Meta:
        return self.meta.get(uid) or Meta(0, None)

    def segment(self, ref: str) -> SegmentSpec:
        """By uuid, integer id (openstacksdk sends it back as a marker or in paths) or name."""
        for match in (
            lambda s: s.uuid == ref,
            lambda s: ref.isdigit() and self.meta_of(s.uuid).id == int(ref),
            lambda s: s.name == ref,
        ):
            found = [s for s in self.inventory.segments if match(s)]
            if found:
                return found[0]
        raise NotFound(f"No failover segment with id {ref}.")

    def host(self, segment_ref: str | None, ref: str) -> tuple[SegmentSpec, HostSpec]:
        """A host of a segment (any segment when `segment_ref` is None) by uuid, id or name."""
        segments = self.inventory.segments if segment_ref is None else [self.segment(segment_ref)]
        pairs = [(s, h) for s in segments for h in s.hosts]
        for match in (
            lambda h: h.uuid == ref,
            lambda h: ref.isdigit() and self.meta_of(h.uuid).id == int(ref),
            lambda h: h.name == ref,
        ):
            found = [(s, h) for s, h in pairs if match(h)]
            if found:
                return found[0]
        if segment_ref is not None:
            raise NotFound(f"Host '{ref}' under failover_segment '{segment_ref}' could not be found.")
        raise NotFound(f"No host with id {ref}.")

    def host_named(self, name: str) -> tuple[SegmentSpec, HostSpec] | None:
        for segment in self.inventory.segments:
            for host in segment.hosts:
                if host.name == name:
                    return segment, host
        return None


@dataclass(frozen=True)
class Runtime:
    states: Mapping[str, HostState] = field(default_factory=dict)  # by host name
    claims: Mapping[str, str] = field(default_factory=dict)  # host name -> its open recovery


@dataclass(frozen=True)
class Edit:
    catalog: Catalog
    states: Mapping[str, HostState | None]  # to write; None deletes
    changes: tuple[str, ...]
    subject: str | None = None  # uuid of what was created or updated


# -- segments ----------------------------------------------------------------------------


def create_segment(catalog: Catalog, fields: Mapping[str, Any], now: datetime, new_uuid: str) -> Edit:
    spec = validated(SegmentSpec, {**fields, "uuid": new_uuid, "hosts": []})
    _unique_segment_name(catalog, spec.name)
    inventory = catalog.inventory.model_copy(update={"segments": [*catalog.inventory.segments, spec]})
    return Edit(
        stamp_created(replace(catalog, inventory=inventory), [spec.uuid], now),
        {},
        (f"segment {spec.name}: created",),
        spec.uuid,
    )


def update_segment(
    catalog: Catalog, runtime: Runtime, ref: str, changes: Mapping[str, Any], now: datetime
) -> Edit:
    old = catalog.segment(ref)
    _guard_segment(old, runtime, "Failover segment", old.uuid)
    new = validated(SegmentSpec, {**old.model_dump(), **changes, "uuid": old.uuid, "hosts": old.hosts})
    if new.name != old.name:
        _unique_segment_name(catalog, new.name)
    if new == old:
        return Edit(catalog, {}, (), old.uuid)
    inventory = _replace_segment(catalog.inventory, old.uuid, new)
    line = f"segment {new.name}: updated" + (f" (was {old.name})" if new.name != old.name else "")
    return Edit(stamp_updated(replace(catalog, inventory=inventory), [old.uuid], now), {}, (line,), old.uuid)


def delete_segment(catalog: Catalog, runtime: Runtime, ref: str) -> Edit:
    old = catalog.segment(ref)
    _guard_segment(old, runtime, "Failover segment", old.uuid)
    segments = [s for s in catalog.inventory.segments if s.uuid != old.uuid]
    states = removed_states(runtime, old.hosts)
    lines = [f"segment {old.name}: removed", *(f"host {h.name}: removed" for h in old.hosts)]
    inventory = catalog.inventory.model_copy(update={"segments": segments})
    return Edit(replace(catalog, inventory=inventory), states, tuple(lines))


# -- hosts -------------------------------------------------------------------------------


def create_host(
    catalog: Catalog,
    runtime: Runtime,
    segment_ref: str,
    fields: Mapping[str, Any],
    *,
    now: datetime,
    new_uuid: str,
    source: str,
) -> Edit:
    segment = catalog.segment(segment_ref)
    spec = validated(HostSpec, {**fields, "uuid": new_uuid})
    if catalog.host_named(spec.name) is not None:
        raise InventoryConflict(f"Host with name {spec.name} already exists.")
    state, kept = declared_state(runtime, spec.name, spec.on_maintenance, source, now)
    inventory = _replace_segment(
        catalog.inventory, segment.uuid, segment.model_copy(update={"hosts": [*segment.hosts, spec]})
    )
    lines = [f"host {spec.name}: created in segment {segment.name}", *kept]
    states = {spec.name: state} if state is not None else {}
    return Edit(
        stamp_created(replace(catalog, inventory=inventory), [spec.uuid], now),
        states,
        tuple(lines),
        spec.uuid,
    )


def update_host(
    catalog: Catalog,
    runtime: Runtime,
    segment_ref: str | None,
    ref: str,
    changes: Mapping[str, Any],
    *,
    now: datetime,
    source: str,
) -> Edit:
    segment, old = catalog.host(segment_ref, ref)
    _guard_segment(segment, runtime, "Host", old.uuid)
    merged = dict(changes)
    if isinstance(changes.get("bmc"), dict) and old.bmc is not None:  # a partial fencing block
        merged["bmc"] = {**old.bmc.model_dump(mode="json"), **changes["bmc"]}
    new = validated(HostSpec, {**old.model_dump(), **merged, "uuid": old.uuid})
    if new.name != old.name and catalog.host_named(new.name) is not None:
        raise InventoryConflict(f"Host with name {new.name} already exists.")
    current = runtime.states.get(old.name)
    asked = "on_maintenance" in changes
    if asked and _fenced(current) and not new.on_maintenance:
        assert current is not None
        raise InventoryConflict(
            f"Host {old.uuid} ({old.name}) was fenced by recovery {current.notification_uuid} and stays "
            "on maintenance until it is reinstated explicitly; on_maintenance cannot be cleared here."
        )
    states: dict[str, HostState | None] = {}
    if new.name != old.name:  # the runtime state follows the host: a fenced host stays fenced
        states[old.name] = None
        if current is not None:
            states[new.name] = current
    if current is None or (asked and current.on_maintenance != new.on_maintenance):
        states[new.name] = HostState(new.on_maintenance, source, None, iso(now))
    if new == old and not states:
        return Edit(catalog, {}, (), old.uuid)
    hosts = [new if h.uuid == old.uuid else h for h in segment.hosts]
    inventory = _replace_segment(catalog.inventory, segment.uuid, segment.model_copy(update={"hosts": hosts}))
    line = f"host {new.name}: updated" + (f" (was {old.name})" if new.name != old.name else "")
    return Edit(
        stamp_updated(replace(catalog, inventory=inventory), [old.uuid], now), states, (line,), old.uuid
    )


def unreserve_host(catalog: Catalog, name: str, now: datetime) -> Edit:
    """A recovery took this reserved spare into service; no segment guard (it is the recovery)."""
    segment, old = catalog.host(None, name)
    if not old.reserved:
        return Edit(catalog, {}, (), old.uuid)
    new = old.model_copy(update={"reserved": False})
    hosts = [new if h.uuid == old.uuid else h for h in segment.hosts]
    inventory = _replace_segment(catalog.inventory, segment.uuid, segment.model_copy(update={"hosts": hosts}))
    line = f"host {name}: no longer reserved (taken into service by a recovery)"
    return Edit(stamp_updated(replace(catalog, inventory=inventory), [old.uuid], now), {}, (line,), old.uuid)


def delete_host(catalog: Catalog, runtime: Runtime, segment_ref: str | None, ref: str) -> Edit:
    segment, old = catalog.host(segment_ref, ref)
    _guard_segment(segment, runtime, "Host", old.uuid)
    hosts = [h for h in segment.hosts if h.uuid != old.uuid]
    inventory = _replace_segment(catalog.inventory, segment.uuid, segment.model_copy(update={"hosts": hosts}))
    states = removed_states(runtime, [old])
    return Edit(replace(catalog, inventory=inventory), states, (f"host {old.name}: removed",))


# -- rules -------------------------------------------------------------------------------


def validated(model: type[Any], data: Mapping[str, Any]) -> Any:
    """Validate with pydantic; the error names the field, and never shows a fencing value."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"]]
        name = ".".join(loc) or model.__name__
        hidden = any(part in _HIDDEN for part in loc)
        shown = "(not shown)" if hidden else first.get("input")
        raise InputError(name, f"Value: {shown}. {first['msg']}") from None


def _unique_segment_name(catalog: Catalog, name: str) -> None:
    if any(s.name == name for s in catalog.inventory.segments):
        raise InventoryConflict(f"Failover segment with name {name} already exists.")


def _guard_segment(segment: SegmentSpec, runtime: Runtime, what: str, uid: str) -> None:
    """Masakari's rule: nothing in a segment changes while it is processing a recovery."""
    busy = [(h.name, runtime.claims[h.name]) for h in segment.hosts if h.name in runtime.claims]
    if busy:
        detail = ", ".join(f"host {name} is under recovery {record}" for name, record in busy)
        raise InventoryConflict(
            f"{what} {uid} can't be updated as it is in-use to process notifications: {detail}."
        )


def declared_state(
    runtime: Runtime, name: str, on_maintenance: bool, source: str, now: datetime
) -> tuple[HostState | None, list[str]]:
    """The state to write for a declared maintenance flag; a fenced host is never released."""
    current = runtime.states.get(name)
    if _fenced(current) and not on_maintenance:
        assert current is not None
        return None, [
            f"host {name}: kept on maintenance (set by recovery {current.notification_uuid}; "
            "reinstate it explicitly)"
        ]
    if current is None or current.on_maintenance != on_maintenance:
        return HostState(on_maintenance, source, None, iso(now)), []
    return None, []


def _fenced(state: HostState | None) -> bool:
    return state is not None and state.on_maintenance and state.notification_uuid is not None


def removed_states(runtime: Runtime, hosts: list[HostSpec]) -> dict[str, HostState | None]:
    # A fenced host keeps its state: added back, it is still out of service (rule 5).
    return {h.name: None for h in hosts if not _fenced(runtime.states.get(h.name))}


def _replace_segment(inventory: Inventory, uid: str, new: SegmentSpec) -> Inventory:
    segments = [new if s.uuid == uid else s for s in inventory.segments]
    return inventory.model_copy(update={"segments": segments})


def stamp_created(catalog: Catalog, uids: list[str], now: datetime) -> Catalog:
    """New integer ids (never reused, as Masakari's) and creation times for `uids`."""
    meta = dict(catalog.meta)
    seq = catalog.seq
    for uid in uids:
        seq += 1
        meta[uid] = Meta(seq, stamp(now))
    return Catalog(catalog.inventory, meta, seq)


def stamp_updated(catalog: Catalog, uids: list[str], now: datetime) -> Catalog:
    meta = dict(catalog.meta)
    for uid in uids:
        meta[uid] = replace(catalog.meta_of(uid), updated_at=stamp(now))
    return Catalog(catalog.inventory, meta, catalog.seq)


def stamp(now: datetime) -> str:
    """Masakari's timestamp form: UTC without an offset."""
    return now.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def _uuids(inventory: Inventory) -> list[str]:
    return [s.uuid for s in inventory.segments] + [h.uuid for s in inventory.segments for h in s.hosts]


def fresh_uuid() -> str:
    return str(uuid.uuid4())
