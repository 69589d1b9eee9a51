"""The composition root: the only place where settings become connected adapters.

Nothing here runs at import. Each process (gunicorn worker, RQ work-horse, CLI) calls
`build(settings)` once; tests call it with their own settings, or assemble `Services` by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import redis

from receiver.adapters.queue import RecoveryQueue
from receiver.adapters.redis_inventory import InventoryStore
from receiver.adapters.redis_store import RecordStore, connect
from receiver.domain.alerts import LabelNames
from receiver.intake import Intake
from receiver.metrics import Metrics
from receiver.ports import Compute, EventPublisher, NullPublisher, PowerController
from receiver.settings import Settings
from receiver.workflow.context import Clock

if TYPE_CHECKING:
    from receiver.domain.record import Notification
    from receiver.notify.delivery import Dispatcher
    from receiver.notify.queue import NotifyQueue


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    redis: redis.Redis
    store: RecordStore
    inventory: InventoryStore
    metrics: Metrics
    queue: RecoveryQueue
    clock: Clock = field(default_factory=lambda: Clock(utc_now))
    events: EventPublisher = field(default_factory=NullPublisher)
    _compute: Compute | None = None
    _power: dict[str, PowerController] = field(default_factory=dict)

    def intake(self) -> Intake:
        hook = self.settings.webhook
        return Intake(
            store=self.store,
            queue=self.queue,
            metrics=self.metrics,
            labels=LabelNames(hook.recovery_label, hook.host_label, hook.instance_label, hook.process_label),
            dedup_ttl_s=self.settings.alert_dedup_ttl_s,
            lease_ttl_s=self.settings.worker.lease_ttl_s,
            clock=self.clock.now,
        )

    def compute(self) -> Compute:
        """Nova, connected on first use (only workers need it)."""
        if self._compute is None:
            from receiver.adapters.nova import NovaCompute

            nova = self.settings.nova
            self._compute = NovaCompute.from_cloud(
                nova.cloud, compute_api_version=nova.compute_api_version, timeout_s=nova.timeout_s
            )
        return self._compute

    def forget_connections(self) -> None:
        """Drop the Nova connection (a forked child's: its pooled keep-alive sockets are the
        parent's too, and two processes on one socket garble each other's requests)."""
        self._compute = None

    def power(self, driver: str) -> PowerController:
        """The fence driver by name; each is built on first use (a worker may never need Redfish)."""
        if driver not in self._power:
            timeout_s = self.settings.fencing.bmc_timeout_s
            if driver == "ipmi":
                from receiver.adapters.ipmi import IpmiPower

                self._power[driver] = IpmiPower(timeout_s=timeout_s)
            elif driver == "redfish":
                from receiver.adapters.redfish import RedfishPower

                ca_file = self.settings.fencing.redfish_ca_file
                self._power[driver] = RedfishPower(
                    timeout_s=timeout_s, ca_file=str(ca_file) if ca_file else None
                )
            else:
                from receiver.errors import ConfigError

                raise ConfigError(f"bmc.driver: unknown fence driver {driver!r}")
        return self._power[driver]


def build(settings: Settings) -> Services:
    client = connect(
        settings.redis_url.get_secret_value(),
        sentinels=settings.redis_sentinels,
        master=settings.redis_sentinel_master,
        socket_timeout=settings.redis_socket_timeout_s,
    )
    prefix = settings.key_prefix
    services = Services(
        settings=settings,
        redis=client,
        store=RecordStore(client, prefix),
        inventory=InventoryStore(client, prefix),
        metrics=Metrics(client, prefix),
        queue=RecoveryQueue(client, settings.queue_name, settings.worker.job_timeout_s),
    )
    if settings.notifiers:
        services.events = publisher_for(services)
    return services


# -- notifications (receiver/notify): built only when notifiers are configured -------------


def notify_queue(services: Services) -> NotifyQueue:
    from receiver.notify.queue import NotifyQueue

    settings = services.settings
    return NotifyQueue(services.redis, settings.notify.queue(settings.queue_name))


def publisher_for(services: Services) -> EventPublisher:
    from receiver.notify.ledger import DeliveryLedger
    from receiver.notify.publisher import NotifyPublisher

    def segment_of(record: Notification) -> str | None:
        host = services.inventory.host(record.hostname) if record.hostname else None
        return host.segment.name if host is not None else None

    settings = services.settings
    return NotifyPublisher(
        settings.notifiers,
        notify_queue(services),
        DeliveryLedger(services.redis, settings.key_prefix),
        segment_of=segment_of,
        public_url=settings.public_url,
        now=services.clock.now,
    )


def dispatcher_for(services: Services) -> Dispatcher:
    from receiver.adapters.notifiers.factory import build_notifier
    from receiver.adapters.notifiers.http import JsonPoster
    from receiver.notify.delivery import Dispatcher
    from receiver.notify.ledger import DeliveryLedger

    settings = services.settings
    http = JsonPoster()
    return Dispatcher.from_settings(
        settings.notifiers,
        settings.notify,
        build=lambda config: build_notifier(config, http, utc_now),
        ledger=DeliveryLedger(services.redis, settings.key_prefix),
        queue=notify_queue(services),
        metrics=services.metrics,
        now=utc_now,
    )
