"""Fixtures shared by every tier: a private redis-server, settings, and wired services."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from receiver.bootstrap import Services, build
from receiver.settings import Settings
from tests.redis_server import RedisServer

TEST_TOKEN = "test-webhook-token-0123456789"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()  # our own private server: safe
    yield client
    client.close()


@pytest.fixture
def make_settings(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    for var in ("LAZARUS_CONFIG", "OS_CLOUD"):
        monkeypatch.delenv(var, raising=False)

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "redis_url": redis_server.url,
            "queue_name": f"q{uuid.uuid4().hex[:8]}",
            "webhook": {"bearer_tokens": [TEST_TOKEN]},
            "fencing": {"power_off_timeout_s": 10, "poll_interval_s": 0.2, "bmc_timeout_s": 3},
            "evacuation": {"poll_interval_s": 0.1, "timeout_s": 60},
            "worker": {"lease_ttl_s": 4, "reconcile_interval_s": 1},
            "verify": {"poll_interval_s": 0.2, "wait_s": 30},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(values.get(key), dict):
                values[key] = {**values[key], **value}
            else:
                values[key] = value
        return Settings(**values)

    return make


@pytest.fixture
def services(make_settings: Callable[..., Settings], redis_client: redis.Redis) -> Services:
    return build(make_settings())


@pytest.fixture
def fixtures_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "shared" / "fixtures"
