"""`lazarus inventory apply`: the declarative edit. The file becomes the whole inventory.

Objects keep their identity across applies: a segment or host of the file is the stored one
with the same name, else the stored one with the uuid the file gives (a rename), else a new
one. The result is one `Edit`, with a line per change for the operator, and it obeys the
same rules as the API: a segment under recovery is not changed (the whole apply is refused,
nothing is written), and a host a recovery fenced stays on maintenance.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from receiver.inventory import HostSpec, Inventory, InventoryConflict, SegmentSpec
from receiver.inventory_edits import (
    Catalog,
    Edit,
    HostState,
    Runtime,
    declared_state,
    fresh_uuid,
    removed_states,
    stamp_created,
    stamp_updated,
)

Spec = TypeVar("Spec", SegmentSpec, HostSpec)


def apply_inventory(catalog: Catalog, runtime: Runtime, wanted: Inventory, now: datetime) -> Edit:
    old = catalog.inventory
    new = _with_stored_ids(old, wanted)
    _guard(old, new, runtime)
    created, updated, lines = _segment_changes(old, new)
    host_created, host_updated, host_lines, states = _host_changes(old, new, runtime)
    after = dict(runtime.states)
    for name, moved in states.items():
        if moved is None:
            after.pop(name, None)
        else:
            after[name] = moved
    for host in sorted((h for s in new.segments for h in s.hosts), key=lambda h: h.name):
        state, notes = declared_state(
            Runtime(after, runtime.claims), host.name, host.on_maintenance, "inventory", now
        )
        host_lines += notes
        if state is not None:
            states[host.name] = state
    result = stamp_created(Catalog(new, catalog.meta, catalog.seq), created + host_created, now)
    result = stamp_updated(result, updated + host_updated, now)
    return Edit(result, states, tuple(lines + host_lines))


def _segment_changes(old: Inventory, new: Inventory) -> tuple[list[str], list[str], list[str]]:
    before = {s.uuid: s for s in old.segments}
    created: list[str] = []
    updated: list[str] = []
    lines: list[str] = []
    for segment in sorted(new.segments, key=lambda s: s.name):
        previous = before.get(segment.uuid)
        if previous is None:
            created.append(segment.uuid)
            lines.append(f"segment {segment.name}: created")
        elif _fields(previous) != _fields(segment):
            updated.append(segment.uuid)
            lines.append(f"segment {segment.name}: updated{_was(previous.name, segment.name)}")
    kept = {s.uuid for s in new.segments}
    lines += [
        f"segment {s.name}: removed" for s in sorted(old.segments, key=lambda s: s.name) if s.uuid not in kept
    ]
    return created, updated, lines


def _host_changes(
    old: Inventory, new: Inventory, runtime: Runtime
) -> tuple[list[str], list[str], list[str], dict[str, HostState | None]]:
    before = {h.uuid: (s, h) for s in old.segments for h in s.hosts}
    created: list[str] = []
    updated: list[str] = []
    lines: list[str] = []
    states: dict[str, HostState | None] = {}
    after = sorted(((s, h) for s in new.segments for h in s.hosts), key=lambda pair: pair[1].name)
    for segment, host in after:
        if host.uuid not in before:
            created.append(host.uuid)
            lines.append(f"host {host.name}: created in segment {segment.name}")
            continue
        previous_segment, previous = before[host.uuid]
        if previous.name != host.name and previous.name in runtime.states:
            states[previous.name] = None  # the runtime state follows the host
            states[host.name] = runtime.states[previous.name]
        if previous != host:
            updated.append(host.uuid)
            lines.append(f"host {host.name}: updated{_was(previous.name, host.name)}")
        if previous_segment.uuid != segment.uuid:
            updated.append(host.uuid)
            lines.append(f"host {host.name}: moved from segment {previous_segment.name} to {segment.name}")
    present = {h.uuid for _, h in after}
    gone = sorted((h for _, h in before.values() if h.uuid not in present), key=lambda h: h.name)
    lines += [f"host {h.name}: removed" for h in gone]
    states.update(removed_states(runtime, gone))
    return created, updated, lines, states


def _was(old_name: str, new_name: str) -> str:
    return f" (was {old_name})" if old_name != new_name else ""


def _with_stored_ids(old: Inventory, wanted: Inventory) -> Inventory:
    segment_ids = _match(old.segments, wanted.segments)
    host_ids = _match(
        [h for s in old.segments for h in s.hosts], [h for s in wanted.segments for h in s.hosts]
    )
    segments = [
        segment.model_copy(
            update={
                "uuid": segment_ids[segment.name],
                "hosts": [h.model_copy(update={"uuid": host_ids[h.name]}) for h in segment.hosts],
            }
        )
        for segment in wanted.segments
    ]
    return wanted.model_copy(update={"segments": segments})


def _match(old: Sequence[Spec], wanted: Sequence[Spec]) -> dict[str, str]:
    """name in the file -> uuid: the stored one of that name, else the stored one the file's uuid
    names (a rename), else the file's uuid (derived from the name) unless taken."""
    by_name = {item.name: item.uuid for item in old}
    by_uuid = {item.uuid for item in old}
    ids: dict[str, str] = {}
    used: set[str] = set()
    for item in wanted:
        if item.name in by_name:
            ids[item.name] = by_name[item.name]
            used.add(by_name[item.name])
    for item in wanted:
        if item.name in ids:
            continue
        if item.uuid in by_uuid and item.uuid not in used:
            ids[item.name] = item.uuid
        elif item.uuid in by_uuid or item.uuid in used:
            ids[item.name] = fresh_uuid()
        else:
            ids[item.name] = item.uuid
        used.add(ids[item.name])
    return ids


def _guard(old: Inventory, new: Inventory, runtime: Runtime) -> None:
    """Refuse the whole apply if it would change a segment with a host under recovery."""
    after = {s.uuid: s for s in new.segments}
    for segment in old.segments:
        busy = [(h.name, runtime.claims[h.name]) for h in segment.hosts if h.name in runtime.claims]
        if busy and after.get(segment.uuid) != segment:
            detail = ", ".join(f"host {name} is under recovery {record}" for name, record in busy)
            raise InventoryConflict(
                f"segment {segment.name} can't be changed while it processes a recovery ({detail}); "
                "nothing was applied"
            )


def _fields(segment: SegmentSpec) -> dict[str, object]:
    return segment.model_dump(exclude={"hosts"})
