"""The delivery job: one attempt to send one message through one notifier, then decide.

    lock (PagerDuty: one delivery per incident at a time, newest event wins)
    -> pace (the notifier's send slot: Slack's one message per second per webhook)
    -> notify -> NotifyResult -> delivered | retry later (new scheduled job) | give up
    -> metrics, log line, and the result kept on the record's delivery list

A wait longer than a moment is never slept inside the job: the job is rescheduled, so a
worker stays free for recoveries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from receiver.domain.record import iso
from receiver.errors import ConfigError
from receiver.metrics import Metrics
from receiver.notify.config import NotifierConfig, NotifySettings
from receiver.notify.ledger import DeliveryEntry, DeliveryLedger
from receiver.notify.message import Message
from receiver.notify.queue import Attempt, NotifyQueue
from receiver.notify.result import FailureReason, Notifier, NotifyResult
from receiver.notify.retry import Decision, RetryPolicy, Verdict, decide

log = logging.getLogger(__name__)

MAX_INLINE_WAIT_S = 2.0  # a send slot this close is waited for in the job; further: rescheduled
BUSY_RETRY_S = 1.0  # another delivery for the same incident holds the lock: come back shortly
LOCK_MARGIN_S = 10.0

# PagerDuty applies events to one incident in arrival order: a trigger retried after the resolve
# went out would reopen a finished recovery's incident. Those notifiers deliver in order.
ORDERED_TYPES = frozenset({"pagerduty"})


@dataclass(frozen=True)
class Outcome:
    result: NotifyResult
    latency_s: float | None  # None: no request was made
    decision: Decision


@dataclass
class Dispatcher:
    notifiers: dict[str, NotifierConfig]
    build: Callable[[NotifierConfig], Notifier]  # resolves the secret; ConfigError if it cannot
    ledger: DeliveryLedger
    queue: NotifyQueue
    metrics: Metrics
    policy: RetryPolicy
    now: Callable[[], datetime]
    sleep: Callable[[float], None] = field(default=time.sleep)

    @classmethod
    def from_settings(
        cls,
        notifiers: list[NotifierConfig],
        settings: NotifySettings,
        *,
        build: Callable[[NotifierConfig], Notifier],
        ledger: DeliveryLedger,
        queue: NotifyQueue,
        metrics: Metrics,
        now: Callable[[], datetime],
    ) -> Dispatcher:
        policy = RetryPolicy(settings.backoff_s, settings.max_attempts, settings.max_age_s)
        return cls({n.name: n for n in notifiers}, build, ledger, queue, metrics, policy, now)

    def deliver(self, name: str, message: Message, attempt: Attempt) -> str:
        """Returns what happened: delivered | retrying | failed | superseded | paced | waiting | dropped."""
        config = self.notifiers.get(name)
        context: dict[str, object] = {
            "notification_uuid": message.notification_uuid,
            "notifier": name,
            "event_kind": message.event.value,
        }
        if config is None:
            log.warning("notifier no longer configured; message dropped", extra=context)
            return "dropped"
        token = None
        if config.type in ORDERED_TYPES:
            token = self.ledger.lock(
                name, message.notification_uuid, config.timeout_s + MAX_INLINE_WAIT_S + LOCK_MARGIN_S
            )
            if token is None:
                self.queue.enqueue(name, message.to_dict(), attempt, delay_s=BUSY_RETRY_S)
                return "waiting"
        try:
            return self._deliver(config, message, attempt, context)
        finally:
            if token is not None:
                self.ledger.unlock(name, message.notification_uuid, token)

    def _deliver(
        self, config: NotifierConfig, message: Message, attempt: Attempt, context: dict[str, object]
    ) -> str:
        name, uuid = config.name, message.notification_uuid
        entry = DeliveryEntry(
            name, config.type, message.event.value, message.seq, "", attempt.number, iso(self.now())
        )
        if config.type in ORDERED_TYPES and self.ledger.delivered_seq(uuid, name) > message.seq:
            log.info("a newer event was already delivered; this one is superseded", extra=context)
            self.ledger.record(uuid, replace(entry, outcome="superseded"))
            return "superseded"
        if config.min_interval_s > 0:
            reserved, wait = self.ledger.reserve_slot(name, config.min_interval_s, MAX_INLINE_WAIT_S)
            if not reserved:
                self.queue.enqueue(name, message.to_dict(), attempt, delay_s=wait)
                return "paced"
            if wait > 0:
                self.sleep(wait)  # until our reserved slot, at most MAX_INLINE_WAIT_S
        result, latency = self._send(config, message)
        age = (self.now() - datetime.fromisoformat(attempt.published_at)).total_seconds()
        decision = decide(self.policy, result, attempt.number, age)
        self._account(config, message, attempt, Outcome(result, latency, decision))
        self.ledger.record(
            uuid,
            replace(
                entry,
                outcome=decision.verdict.value,
                at=iso(self.now()),
                status=result.status,
                reason=result.reason,
                detail="; ".join(p for p in (result.detail, decision.why) if p),
                latency_s=round(latency, 3) if latency is not None else None,
                next_try_in_s=decision.delay_s if decision.verdict is Verdict.RETRY else None,
            ),
        )
        return decision.verdict.value

    def _send(self, config: NotifierConfig, message: Message) -> tuple[NotifyResult, float | None]:
        try:
            notifier = self.build(config)
        except ConfigError as exc:
            # The message names the notifier and the reference (env var or file), never a value.
            return NotifyResult.failed(FailureReason.CONFIG_ERROR, exc.message), None
        started = time.monotonic()
        result = notifier.notify(message)
        return result, time.monotonic() - started

    def _account(self, config: NotifierConfig, message: Message, attempt: Attempt, outcome: Outcome) -> None:
        """Metrics, the log line, the next attempt if any."""
        result, latency, decision = outcome.result, outcome.latency_s, outcome.decision
        name, uuid = config.name, message.notification_uuid
        fields = {
            "notification_uuid": uuid,
            "notifier": name,
            "event_kind": message.event.value,
            "attempt": attempt.number,
            "status_code": result.status,
            "reason": result.reason,
            "detail": result.detail,
            "latency_s": round(latency, 3) if latency is not None else None,
        }
        if result.ok:
            self.metrics.notification_sent(name, latency or 0.0)
            if config.type in ORDERED_TYPES:
                self.ledger.mark_delivered(uuid, name, message.seq)
            log.info("notification delivered", extra=fields)
            return
        self.metrics.notification_failed(name, result.reason, latency)
        if result.reason == FailureReason.RATE_LIMITED and result.retry_after_s:
            # The endpoint's limit holds for every message to it, not only this one.
            self.ledger.defer_slot(name, result.retry_after_s)
        if decision.verdict is Verdict.RETRY:
            self.queue.enqueue(name, message.to_dict(), attempt.next(), delay_s=decision.delay_s)
            log.warning("notification failed; will retry", extra={**fields, "retry_in_s": decision.delay_s})
            return
        self.metrics.notification_dropped(name, result.reason)
        log.error("notification given up", extra={**fields, "why": decision.why})


# Set by `lazarus worker` before it starts working, inherited by forked work-horses.
_dispatcher: Dispatcher | None = None


def configure(dispatcher: Dispatcher) -> None:
    global _dispatcher  # noqa: PLW0603 - the worker process's delivery runtime
    _dispatcher = dispatcher


def _current() -> Dispatcher:
    global _dispatcher  # noqa: PLW0603
    if _dispatcher is None:
        from receiver.bootstrap import build, dispatcher_for
        from receiver.settings import load_settings

        _dispatcher = dispatcher_for(build(load_settings()))
    return _dispatcher


def deliver(notifier: str, message: dict[str, object], attempt: int, published_at: str) -> str:
    """RQ entry point: the job boundary. Never raises: RQ would store the traceback in Redis,
    and a library's exception text may quote a URL."""
    try:
        return _current().deliver(notifier, Message.from_dict(message), Attempt(attempt, published_at))
    except Exception as exc:  # the job boundary
        log.exception(
            "notification job crashed",
            extra={
                "notifier": notifier,
                "notification_uuid": message.get("notification_uuid"),
                "error": type(exc).__name__,
            },
        )
        if _dispatcher is not None:
            _dispatcher.metrics.notification_failed(notifier, "internal_error", None)
        return "error"
