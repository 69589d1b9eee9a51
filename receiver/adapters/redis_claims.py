"""Who holds what in Redis: a recovery's claim on a reserved spare, a worker's lease on a record.

Keys (``P`` = settings.key_prefix)::

    P:spare:<name>   uuid of the open recovery whose plan takes this reserved spare
    P:lease:<uuid>   token of the worker running that record now (expires unless renewed)
    P:open           SET of open record uuids (kept by RecordStore; read here)

`RecordStore` (redis_store) inherits these methods; callers use them through the store.
"""

from __future__ import annotations

import secrets

import redis

from receiver.adapters.redis_client import as_text, translate_errors

# A reserved spare goes to one recovery's plan at a time: taken when free, or when its holder
# has ended (a claim never needs cleaning up). KEYS: 1 claim, 2 open set. ARGV: 1 uuid.
_CLAIM_SPARE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] and redis.call('SISMEMBER', KEYS[2], holder) == 1 then
  return holder
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""

# KEYS: 1 lease key; ARGV: 1 token, 2 ttl ms. Renews only a lease we still hold.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SpareClaimsAndLeases:
    """Spare claims and worker leases over one Redis client and key prefix."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.redis = client
        self.prefix = prefix
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._claim_spare = client.register_script(_CLAIM_SPARE)

    @property
    def _open(self) -> str:
        return f"{self.prefix}:open"

    # -- spare claims: which recovery's plan takes a reserved spare ----------------------
    def claim_spare(self, name: str, uuid: str) -> str:
        """Take reserved spare `name` for recovery `uuid`; returns the holder (`uuid` when taken)."""
        with translate_errors():
            holder = self._claim_spare(keys=[f"{self.prefix}:spare:{name}", self._open], args=[uuid])
        return as_text(holder)

    def spare_holders(self, names: list[str]) -> dict[str, str]:
        """The open recoveries holding these spares (ended holders are not listed)."""
        if not names:
            return {}
        with translate_errors():
            raw = self.redis.mget([f"{self.prefix}:spare:{n}" for n in names])
            holders = {n: as_text(h) for n, h in zip(names, raw, strict=True) if h is not None}
            open_ids = {as_text(u) for u in self.redis.smembers(self._open)}
        return {n: h for n, h in holders.items() if h in open_ids}

    # -- leases: which worker runs a record now -----------------------------------------
    def acquire_lease(self, uuid: str, ttl_s: float) -> str | None:
        token = secrets.token_hex(16)
        with translate_errors():
            ok = self.redis.set(f"{self.prefix}:lease:{uuid}", token, nx=True, px=int(ttl_s * 1000))
        return token if ok else None

    def renew_lease(self, uuid: str, token: str, ttl_s: float) -> bool:
        with translate_errors():
            return bool(self._renew(keys=[f"{self.prefix}:lease:{uuid}"], args=[token, int(ttl_s * 1000)]))

    def release_lease(self, uuid: str, token: str) -> None:
        with translate_errors():
            self._release(keys=[f"{self.prefix}:lease:{uuid}"], args=[token])

    def lease_held(self, uuid: str) -> bool:
        with translate_errors():
            return bool(self.redis.exists(f"{self.prefix}:lease:{uuid}"))
