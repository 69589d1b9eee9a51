"""The reconciler: orphaned open records are queued again; ended ones expire after retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from receiver.bootstrap import Services
from receiver.domain.alerts import parse_webhook
from receiver.domain.record import Status
from receiver.reconcile import reconcile_all
from tests.integration.core.helpers import host_alert, webhook

pytestmark = pytest.mark.integration


def accept(services: Services, alert: dict[str, object]) -> str:
    [result] = services.intake().accept(parse_webhook(webhook(alert)))
    return result.notification_uuid


def test_an_open_record_whose_job_vanished_is_queued_again(services: Services) -> None:
    uuid = accept(services, host_alert("node-01"))
    services.queue.queue.empty()  # the job is lost (say, Redis lost its queue on failover)
    assert services.queue.depth() == 0
    queued = reconcile_all(services.store, services.queue, lease_ttl_s=4)
    assert queued == [f"recovery-{uuid}-0"]
    assert services.queue.depth() == 1
    assert reconcile_all(services.store, services.queue, lease_ttl_s=4) == []  # queued once only


def test_ended_records_expire_after_retention_and_open_ones_never(services: Services) -> None:
    ignored = accept(services, host_alert("node-01", labels={"recovery": "rack"}))
    open_one = accept(services, host_alert("node-02"))
    assert services.store.get(ignored).status is Status.IGNORED
    assert reconcile_all(services.store, services.queue, 4, retention_s=3600) is not None
    assert {r.notification_uuid for r in services.store.recent()} == {ignored, open_one}
    # a retention of zero: everything ended is past it
    reconcile_all(services.store, services.queue, 4, retention_s=1e-6)
    assert [r.notification_uuid for r in services.store.recent()] == [open_one]
    assert not services.redis.exists(f"{services.settings.key_prefix}:n:{ignored}")
    assert not services.redis.exists(f"{services.settings.key_prefix}:n:{ignored}:alerts")
    assert services.store.expire_ended(datetime.now(UTC) + timedelta(days=1)) == 0
