"""Delivery state in Redis, beside (never inside) the record the workflow writes.

Keys (``P`` = settings.key_prefix)::

    P:n:<uuid>:events        INCR: sequence number of the record's events, in publish order
    P:n:<uuid>:deliveries    HASH notifier -> last delivery result (JSON); a newer event wins
    P:n:<uuid>:delivered     HASH notifier -> highest event sequence delivered
    P:notify:slot:<name>     when the notifier may send next (ms, Redis clock)
    P:notify:lock:<name>:<uuid>  one delivery at a time per notifier and record (ordering)

Times that several workers compare come from Redis's own clock, not each host's.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass

import redis

from receiver.adapters.redis_store import translate_errors

# KEYS: 1 deliveries hash; ARGV: 1 notifier, 2 entry json, 3 entry seq
_RECORD = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local ok, old = pcall(cjson.decode, current)
  if ok and type(old) == 'table' and tonumber(old['seq']) and tonumber(old['seq']) > tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# KEYS: 1 slot key; ARGV: 1 interval ms, 2 longest wait ms we accept now
# Reserves the next send slot unless it is further away than ARGV[2]; returns {reserved, wait ms}.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local at = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local wait = at - now
if wait > tonumber(ARGV[2]) then return {0, wait} end
redis.call('SET', KEYS[1], at + tonumber(ARGV[1]), 'PX', wait + tonumber(ARGV[1]) + 1000)
return {1, wait}
"""

# KEYS: 1 slot key; ARGV: 1 ms from now. The endpoint said "not before": nobody sends earlier.
_DEFER = """
local t = redis.call('TIME')
local want = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
if want > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], want, 'PX', tonumber(ARGV[1]) + 1000)
end
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class DeliveryEntry:
    """The last thing that happened to a record's messages for one notifier."""

    notifier: str
    type: str
    event: str
    seq: int
    outcome: str  # queued | delivered | retrying | failed | superseded | not_queued
    attempts: int
    at: str
    status: int | None = None
    reason: str | None = None
    detail: str = ""
    latency_s: float | None = None
    next_try_in_s: float | None = None

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeliveryEntry:
        return cls(**json.loads(raw))


class DeliveryLedger:
    def __init__(self, client: redis.Redis, prefix: str = "lazarus") -> None:
        self.redis = client
        self.prefix = prefix
        self._record = client.register_script(_RECORD)
        self._reserve = client.register_script(_RESERVE)
        self._defer = client.register_script(_DEFER)
        self._release = client.register_script(_RELEASE)

    def _key(self, uuid: str, what: str) -> str:
        return f"{self.prefix}:n:{uuid}:{what}"

    def next_seq(self, uuid: str) -> int:
        with translate_errors():
            return int(self.redis.incr(self._key(uuid, "events")))

    def record(self, uuid: str, entry: DeliveryEntry) -> bool:
        """Keep `entry` as the notifier's last result unless a newer event's result is there."""
        data = json.dumps(asdict(entry), separators=(",", ":"), sort_keys=True)
        with translate_errors():
            return bool(
                self._record(keys=[self._key(uuid, "deliveries")], args=[entry.notifier, data, entry.seq])
            )

    def deliveries(self, uuid: str) -> list[DeliveryEntry]:
        with translate_errors():
            raw = self.redis.hgetall(self._key(uuid, "deliveries"))
        return sorted((DeliveryEntry.from_json(v) for v in raw.values()), key=lambda e: e.notifier)

    def delivered_seq(self, uuid: str, notifier: str) -> int:
        with translate_errors():
            value = self.redis.hget(self._key(uuid, "delivered"), notifier)
        return int(value or 0)

    def mark_delivered(self, uuid: str, notifier: str, seq: int) -> None:
        # Called under the (notifier, record) lock: read-compare-write cannot interleave.
        if seq > self.delivered_seq(uuid, notifier):
            with translate_errors():
                self.redis.hset(self._key(uuid, "delivered"), notifier, seq)

    # -- pacing: one send per interval per notifier, across all workers -----------------
    def reserve_slot(self, notifier: str, interval_s: float, max_wait_s: float) -> tuple[bool, float]:
        """(reserved, seconds until the slot). Not reserved when the slot is further than max_wait_s."""
        with translate_errors():
            reserved, wait_ms = self._reserve(
                keys=[f"{self.prefix}:notify:slot:{notifier}"],
                args=[int(interval_s * 1000), int(max_wait_s * 1000)],
            )
        return bool(reserved), int(wait_ms) / 1000

    def defer_slot(self, notifier: str, seconds: float) -> None:
        with translate_errors():
            self._defer(keys=[f"{self.prefix}:notify:slot:{notifier}"], args=[int(seconds * 1000)])

    # -- ordering: one delivery per notifier and record at a time ---------------------------
    def lock(self, notifier: str, uuid: str, ttl_s: float) -> str | None:
        token = secrets.token_hex(8)
        with translate_errors():
            taken = self.redis.set(
                f"{self.prefix}:notify:lock:{notifier}:{uuid}", token, nx=True, px=int(ttl_s * 1000)
            )
        return token if taken else None

    def unlock(self, notifier: str, uuid: str, token: str) -> None:
        with translate_errors():
            self._release(keys=[f"{self.prefix}:notify:lock:{notifier}:{uuid}"], args=[token])
