"""Recovery records in Redis: atomic intake, optimistic updates, budgets, retention.

Keys (``P`` = settings.key_prefix)::

    P:n:<uuid>            the record, JSON               P:notifications  ZSET uuid by created time
    P:n:<uuid>:alerts     alerts linked to it (capped)   P:n:<uuid>:dups  duplicate deliveries counted
    P:alert:<dedup key>   uuid of the record an alert    P:resolved:<dedup key>  that alert was resolved
                          (fingerprint+startsAt) made
    P:claim:host:<name>   uuid of the open recovery of a host (one at a time: safety rule 3)
    P:open                SET of open record uuids       P:lease:<uuid>  the worker running it now
    P:spare:<name>        uuid of the open recovery whose plan takes this reserved spare

Every write that makes a record visible happens in one script or one MULTI, so a crash
or a lost connection never leaves half a record (safety rule 4).

`RecordStore` inherits its spare claims and worker leases (``P:spare:``, ``P:lease:``) from
redis_claims. `connect` and `translate_errors` are redis_client's, importable from here too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import redis

from receiver.adapters.redis_claims import SpareClaimsAndLeases
from receiver.adapters.redis_client import as_text, connect, translate_errors
from receiver.domain.intake import claim_key_for
from receiver.domain.record import AlertEvent, Notification
from receiver.errors import NotFound

__all__ = ["ALERTS_KEPT", "IntakeResult", "RecordStore", "StoredNotification", "connect", "translate_errors"]

ALERTS_KEPT = 50
_ENDED = frozenset({"finished", "failed", "ignored"})
_RECORD_SUFFIXES = ("alerts", "dups", "deliveries")  # keys that live beside a record

# KEYS: 1 alert key, 2 resolved key, 3 claim key ("" = record only), 4 new record key,
#       5 index zset, 6 open set, 7 parent claim key ("" = none: an open recovery of it absorbs this alert)
# ARGV: 1 new uuid, 2 record json, 3 ttl seconds, 4 created score, 5 "1" firing / "0" resolved,
#       6 alert event json, 7 key prefix, 8 alerts kept
_INTAKE = """
local function link(uuid, event)
  local base = ARGV[7] .. ':n:' .. uuid
  redis.call('RPUSH', base .. ':alerts', event)
  redis.call('LTRIM', base .. ':alerts', -tonumber(ARGV[8]), -1)
  redis.call('INCR', base .. ':dups')
end
local firing = ARGV[5] == '1'
local was_resolved = redis.call('EXISTS', KEYS[2]) == 1
if not firing then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
end
local existing = redis.call('GET', KEYS[1])
if existing then
  link(existing, ARGV[6])
  if firing and was_resolved then return {'firing_after_resolved', existing} end
  if firing then return {'duplicate', existing} end
  return {'recorded_resolved', existing}
end
if KEYS[7] ~= '' then
  local parent = redis.call('GET', KEYS[7])
  if parent then
    redis.call('SET', KEYS[1], parent, 'EX', ARGV[3])
    link(parent, ARGV[6])
    return {'linked_to_open', parent}
  end
end
if KEYS[3] ~= '' then
  local open = redis.call('GET', KEYS[3])
  if open then
    redis.call('SET', KEYS[1], open, 'EX', ARGV[3])
    link(open, ARGV[6])
    return {'linked_to_open', open}
  end
  redis.call('SET', KEYS[3], ARGV[1])
  redis.call('SADD', KEYS[6], ARGV[1])
end
redis.call('SET', KEYS[4], ARGV[2])
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[1])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('RPUSH', KEYS[4] .. ':alerts', ARGV[6])
return {'created', ARGV[1]}
"""

# KEYS: 1 budget zset; ARGV: 1 uuid, 2 now, 3 window start, 4 limit
# Reserves a slot for `uuid` unless `limit` others were taken in the window. Idempotent per uuid.
_RESERVE_SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {1, redis.call('ZCARD', KEYS[1]) - 1} end
local others = redis.call('ZCARD', KEYS[1])
if others >= tonumber(ARGV[4]) then return {0, others} end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return {1, others}
"""


@dataclass(frozen=True)
class IntakeResult:
    outcome: str  # created | duplicate | linked_to_open | recorded_resolved | firing_after_resolved
    notification_uuid: str


@dataclass(frozen=True)
class StoredNotification:
    """A record with what the receiver linked to it."""

    record: Notification
    alerts: tuple[AlertEvent, ...]
    duplicates: int


class RecordStore(SpareClaimsAndLeases):
    """The durable ledger of recoveries, with its spare claims and worker leases (inherited)."""

    def __init__(self, client: redis.Redis, prefix: str = "lazarus") -> None:
        super().__init__(client, prefix)
        self._intake = client.register_script(_INTAKE)
        self._reserve_slot = client.register_script(_RESERVE_SLOT)

    # -- keys ---------------------------------------------------------------------------
    def _record_key(self, uuid: str) -> str:
        return f"{self.prefix}:n:{uuid}"

    def claim_key(self, claim: str) -> str:
        return f"{self.prefix}:claim:{claim}"

    @property
    def _index(self) -> str:
        return f"{self.prefix}:notifications"

    # -- intake -------------------------------------------------------------------------
    def intake(
        self,
        *,
        dedup_key: str,
        claim: str | None,
        parent_claim: str | None = None,
        record: Notification,
        firing: bool,
        event: AlertEvent,
        ttl_s: int,
        now: datetime,
    ) -> IntakeResult:
        """Atomically: a known alert is linked, an open claim is joined, else `record` is stored."""
        keys = [
            f"{self.prefix}:alert:{dedup_key}",
            f"{self.prefix}:resolved:{dedup_key}",
            self.claim_key(claim) if claim else "",
            self._record_key(record.notification_uuid),
            self._index,
            self._open,
            self.claim_key(parent_claim) if parent_claim else "",
        ]
        args = [
            record.notification_uuid,
            _dumps(record.to_dict()),
            ttl_s,
            now.timestamp(),
            "1" if firing else "0",
            _dumps(asdict(event)),
            self.prefix,
            ALERTS_KEPT,
        ]
        with translate_errors():
            outcome, uuid = self._intake(keys=keys, args=args)
        return IntakeResult(as_text(outcome), as_text(uuid))

    # -- reading ------------------------------------------------------------------------
    def get(self, uuid: str) -> Notification:
        with translate_errors():
            raw = self.redis.get(self._record_key(uuid))
        if raw is None:
            raise NotFound(f"notification {uuid} not found")
        return Notification.from_dict(json.loads(raw))

    def get_full(self, uuid: str) -> StoredNotification:
        key = self._record_key(uuid)
        with translate_errors():
            pipe = self.redis.pipeline(transaction=False)
            pipe.get(key)
            pipe.lrange(f"{key}:alerts", 0, -1)
            pipe.get(f"{key}:dups")
            raw, alerts, dups = pipe.execute()
        if raw is None:
            raise NotFound(f"notification {uuid} not found")
        return StoredNotification(
            record=Notification.from_dict(json.loads(raw)),
            alerts=tuple(AlertEvent(**json.loads(a)) for a in alerts),
            duplicates=int(dups or 0),
        )

    def recent(self, *, limit: int = 100, offset: int = 0) -> list[Notification]:
        """Newest first."""
        with translate_errors():
            uuids = self.redis.zrevrange(self._index, offset, offset + limit - 1)
            if not uuids:
                return []
            raws = self.redis.mget([self._record_key(as_text(u)) for u in uuids])
        return [Notification.from_dict(json.loads(r)) for r in raws if r is not None]

    def open_uuids(self) -> list[str]:
        with translate_errors():
            return sorted(as_text(u) for u in self.redis.smembers(self._open))

    def count_open(self) -> int:
        with translate_errors():
            return int(self.redis.scard(self._open))

    # -- updating -----------------------------------------------------------------------
    def update(self, uuid: str, change: Callable[[Notification], Notification]) -> Notification:
        """Apply `change` with optimistic locking; a terminal status releases the host claim."""
        key = self._record_key(uuid)
        with translate_errors():
            while True:
                with self.redis.pipeline() as pipe:
                    try:
                        pipe.watch(key)
                        raw = pipe.get(key)
                        if raw is None:
                            raise NotFound(f"notification {uuid} not found")
                        current = Notification.from_dict(json.loads(raw))
                        changed = change(current)
                        claim_name = claim_key_for(changed)
                        claim = self.claim_key(claim_name) if claim_name else None
                        holder = pipe.get(claim) if claim else None
                        pipe.multi()
                        pipe.set(key, _dumps(changed.to_dict()))
                        if not changed.status.is_open and changed.status.value != "error":
                            pipe.srem(self._open, uuid)
                            if claim and holder is not None and as_text(holder) == uuid:
                                pipe.delete(claim)
                        pipe.execute()
                        return changed
                    except redis.WatchError:
                        continue

    # -- budgets: fences (storm guard), restarts of one instance (crash-loop guard) ------
    def reserve_slot(
        self, budget: str, uuid: str, now: datetime, window_s: float, limit: int
    ) -> tuple[bool, int]:
        """(reserved, slots taken by others in the window), atomically across workers.

        Idempotent per record: a resumed run finds its own slot still reserved."""
        start = now.timestamp() - window_s
        with translate_errors():
            ok, others = self._reserve_slot(
                keys=[f"{self.prefix}:budget:{budget}"], args=[uuid, now.timestamp(), start, limit]
            )
        return bool(ok), int(others)

    # -- retention ---------------------------------------------------------------------------
    def expire_ended(self, created_before: datetime, limit: int = 500) -> int:
        """Delete ended records created before the cut-off (open ones are never expired)."""
        removed = 0
        with translate_errors():
            uuids = self.redis.zrangebyscore(
                self._index, "-inf", created_before.timestamp(), start=0, num=limit
            )
            for raw_uuid in uuids:
                uuid = as_text(raw_uuid)
                key = self._record_key(uuid)
                raw = self.redis.get(key)
                if raw is not None and Notification.from_dict(json.loads(raw)).status.value in _ENDED:
                    self.redis.delete(key, *(f"{key}:{suffix}" for suffix in _RECORD_SUFFIXES))
                    self.redis.zrem(self._index, uuid)
                    removed += 1
                elif raw is None:
                    self.redis.zrem(self._index, uuid)
        return removed

    # -- the storm guard's hold ------------------------------------------------------------
    def hold_storm(self, until: datetime) -> None:
        """Refuse every fence until `until` (extends, never shortens, a hold)."""
        with translate_errors():
            current = self.storm_hold()
            if current is None or until > current:
                self.redis.set(f"{self.prefix}:storm:hold", until.isoformat())

    def storm_hold(self) -> datetime | None:
        with translate_errors():
            raw = self.redis.get(f"{self.prefix}:storm:hold")
        return None if raw is None else datetime.fromisoformat(as_text(raw))

    # -- operator control -----------------------------------------------------------------
    def request_abort(self, uuid: str, by: str, at: str) -> None:
        with translate_errors():
            self.redis.set(f"{self.prefix}:abort:{uuid}", _dumps({"by": by, "at": at}))

    def abort_requested(self, uuid: str) -> dict[str, str] | None:
        with translate_errors():
            raw = self.redis.get(f"{self.prefix}:abort:{uuid}")
        return None if raw is None else dict(json.loads(raw))

    def reclaim(self, uuid: str, claim: str) -> str | None:
        """Take `claim` for a record being reopened; returns the holder if someone else has it."""
        with translate_errors():
            ok = self.redis.set(self.claim_key(claim), uuid, nx=True)
            if ok:
                self.redis.sadd(self._open, uuid)
                return None
            holder = self.redis.get(self.claim_key(claim))
        return (
            None if holder is not None and as_text(holder) == uuid else (as_text(holder) if holder else None)
        )

    def ping(self) -> None:
        with translate_errors():
            self.redis.ping()


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
