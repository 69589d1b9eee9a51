"""Free reserved spares per segment, as a scrape and `lazarus segment show` see them.

A spare is *claimed* while an open host recovery holds it: the failed host itself (its host
claim), or a spare listed in an open record's plan (`plan["spares_used"]`). The workflow
un-reserves a used spare once it takes instances; until then the plan's claim keeps a second
recovery, and this report, from counting it as free.

`claims_of` and `segment_spares` are pure; `read_claims` and `all_segment_spares` read Redis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from receiver.adapters.redis_inventory import HostView, InventoryStore
from receiver.adapters.redis_store import RecordStore
from receiver.domain.alerts import NotificationType
from receiver.domain.diagnosis import SegmentHost, SpareVerdict, spares_left
from receiver.domain.record import Notification, Status
from receiver.errors import NotFound
from receiver.inventory import SegmentSpec
from receiver.monitoring.spare_readiness import ReadinessStore

# An errored record stays in the open set, holding its host and spares, until it is retried.
_HOLDING = frozenset({Status.NEW, Status.RUNNING, Status.ERROR})


@dataclass(frozen=True)
class SegmentSpares:
    segment: SegmentSpec
    verdict: SpareVerdict

    @property
    def needed(self) -> bool:
        """The segment would take a spare now: its method uses spares and it is enabled (a
        disabled segment records its recoveries as ignored)."""
        return self.verdict.needed and self.segment.enabled

    @property
    def short(self) -> bool:
        """Needed and none free: the next host failure here has nowhere reserved to go."""
        return self.needed and not self.verdict.free


def claims_of(records: Iterable[Notification]) -> dict[str, str]:
    """Host name -> the open host recovery that holds it (the failed host, the spares its plan took)."""
    claims: dict[str, str] = {}
    for record in records:
        if record.type is not NotificationType.COMPUTE_HOST or record.status not in _HOLDING:
            continue
        if record.hostname:
            claims.setdefault(record.hostname, record.notification_uuid)
        for spare in (record.plan or {}).get("spares_used", ()):
            claims.setdefault(str(spare), record.notification_uuid)
    return claims


def segment_spares(
    segment: SegmentSpec,
    hosts: Sequence[HostView],
    claims: Mapping[str, str],
    unready: Mapping[str, str] | None = None,
) -> SegmentSpares:
    """`hosts` are the segment's, with their runtime state; a host claim (`HostView.recovery`)
    counts as held even when its record could not be read. `unready`: spare -> why it could
    not take instances (spare_readiness)."""
    held = {**{h.spec.name: h.recovery for h in hosts if h.recovery}, **claims}
    why = unready or {}
    members = [
        SegmentHost(h.spec.name, h.spec.reserved, h.on_maintenance, why.get(h.spec.name)) for h in hosts
    ]
    verdict = spares_left(segment.name, segment.recovery_method, members, held)
    return SegmentSpares(segment, verdict)


def read_claims(records: RecordStore) -> dict[str, str]:
    """The claims of the open records (a record that ended meanwhile is skipped)."""
    found = []
    for uuid in records.open_uuids():
        try:
            found.append(records.get(uuid))
        except NotFound:
            continue
    return claims_of(found)


def all_segment_spares(
    inventory: InventoryStore, records: RecordStore, readiness: ReadinessStore
) -> list[SegmentSpares]:
    """Every segment's spare verdict, in inventory order. Raises StoreUnavailable or ConfigError."""
    claims = read_claims(records)
    unready = readiness.unready()
    hosts = inventory.hosts()
    by_segment: dict[str, list[HostView]] = {}
    for view in hosts:
        by_segment.setdefault(view.segment.uuid, []).append(view)
    return [
        segment_spares(segment, by_segment.get(segment.uuid, []), claims, unready)
        for segment in inventory.load().segments
    ]
