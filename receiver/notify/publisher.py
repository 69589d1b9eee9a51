"""The `EventPublisher` that fans events out: route, build one message, queue one job per notifier.

Only Redis writes happen here (a sequence number, the jobs, "queued" on the record's
delivery list): no HTTP, so a slow Slack never slows a recovery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from receiver.domain.events import EventKind
from receiver.domain.record import Notification, iso
from receiver.notify.config import NotifierConfig
from receiver.notify.ledger import DeliveryEntry, DeliveryLedger
from receiver.notify.message import build_message, record_url
from receiver.notify.queue import Attempt, NotifyQueue

log = logging.getLogger(__name__)


class NotifyPublisher:
    def __init__(
        self,
        notifiers: Sequence[NotifierConfig],
        queue: NotifyQueue,
        ledger: DeliveryLedger,
        *,
        segment_of: Callable[[Notification], str | None],
        public_url: str,
        now: Callable[[], datetime],
    ) -> None:
        self.notifiers = list(notifiers)
        self.queue = queue
        self.ledger = ledger
        self.segment_of = segment_of
        self.public_url = public_url
        self.now = now

    def publish(self, kind: EventKind, record: Notification) -> None:
        uuid = record.notification_uuid
        segment = self.segment_of(record)
        targets = [n for n in self.notifiers if n.wants(kind, segment)]
        if not targets:
            log.debug(
                "no notifier wants this event", extra={"notification_uuid": uuid, "event_kind": kind.value}
            )
            return
        seq = self.ledger.next_seq(uuid)
        message = build_message(
            kind, record, seq=seq, segment=segment, record_url=record_url(self.public_url, uuid)
        ).to_dict()
        first = Attempt(1, iso(self.now()))
        for notifier in targets:
            # "queued" first: a fast worker's "delivered" (same seq) must be able to replace it.
            self.ledger.record(
                uuid,
                DeliveryEntry(notifier.name, notifier.type, kind.value, seq, "queued", 0, iso(self.now())),
            )
            job = self.queue.enqueue(notifier.name, message, first)
            log.info(
                "notification queued",
                extra={
                    "notification_uuid": uuid,
                    "event_kind": kind.value,
                    "notifier": notifier.name,
                    "job_id": job,
                },
            )
