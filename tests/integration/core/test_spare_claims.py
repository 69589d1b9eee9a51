"""A reserved spare goes to one recovery's plan at a time, across workers (real Redis)."""

from __future__ import annotations

import threading

import pytest
import redis

from receiver.adapters.redis_store import RecordStore

pytestmark = pytest.mark.integration
PREFIX = "lazarus"


def test_one_plan_per_spare_and_an_ended_holder_lets_go(redis_client: redis.Redis) -> None:
    store = RecordStore(redis_client, PREFIX)
    redis_client.sadd(f"{PREFIX}:open", "rec-a", "rec-b")
    assert store.claim_spare("spare-01", "rec-a") == "rec-a"
    assert store.claim_spare("spare-01", "rec-a") == "rec-a"  # again: still ours (a resumed worker)
    assert store.claim_spare("spare-01", "rec-b") == "rec-a"  # held by an open recovery
    assert store.spare_holders(["spare-01", "spare-02"]) == {"spare-01": "rec-a"}
    redis_client.srem(f"{PREFIX}:open", "rec-a")  # rec-a ended: its claim is void, nothing to clean up
    assert store.spare_holders(["spare-01"]) == {}
    assert store.claim_spare("spare-01", "rec-b") == "rec-b"


def test_racing_recoveries_get_the_spare_exactly_once(redis_client: redis.Redis) -> None:
    contenders = [f"rec-{i}" for i in range(16)]
    redis_client.sadd(f"{PREFIX}:open", *contenders)
    barrier = threading.Barrier(len(contenders))
    won: list[str] = []

    def claim(uuid: str) -> None:
        store = RecordStore(redis.Redis(connection_pool=redis_client.connection_pool), PREFIX)
        barrier.wait()
        if store.claim_spare("spare-01", uuid) == uuid:
            won.append(uuid)

    threads = [threading.Thread(target=claim, args=(u,)) for u in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 1
    assert RecordStore(redis_client, PREFIX).spare_holders(["spare-01"]) == {"spare-01": won[0]}
