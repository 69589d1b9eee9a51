"""The `notifiers` and `notify` settings sections (validated with the rest of `Settings`).

    notify:                                  # delivery, shared by every notifier
      queue_name: lazarus-notify             # default: <queue_name>-notify
      backoff_s: [5, 15, 60, 120, 300]       # wait before retry n (the last one repeats)
      max_attempts: 8
      max_age_s: 3600                        # give up on a message older than this
    notifiers:
      - name: ops-slack
        type: slack
        url: {env: LAZARUS_SLACK_OPS_URL}    # or {file: /etc/lazarus/slack-ops}; never inline
        events: [recovery_failed, refused_by_gate, needs_approval, recovery_finished]
        segments: [rack-a]                   # empty (default): every segment
        finished: summary                    # or full
      - name: oncall
        type: pagerduty
        routing_key: {file: /etc/lazarus/pd-routing-key}
      - name: itsm
        type: webhook
        url: {env: ITSM_WEBHOOK_URL}

Secrets are only references; their values are read when a message is sent.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from receiver.domain.events import EventKind
from receiver.secret_ref import SecretRef

# What PagerDuty acts on: a trigger when a human is needed, a resolve when it is over.
PAGERDUTY_EVENTS = frozenset(
    {EventKind.FAILED, EventKind.REFUSED, EventKind.NEEDS_APPROVAL, EventKind.FINISHED}
)
PAGERDUTY_ENDPOINT = "https://events.pagerduty.com/v2/enqueue"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Notifier(_Model):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    events: tuple[EventKind, ...] = tuple(EventKind)
    segments: tuple[str, ...] = ()
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    # Slack: one message per second per webhook; PagerDuty: ~120 events per minute per key.
    min_interval_s: float = Field(default=0.0, ge=0, le=60)

    def wants(self, kind: EventKind, segment: str | None) -> bool:
        """Routing: this event, in this segment (None: unknown), goes to this notifier."""
        if kind not in self.events:
            return False
        return not self.segments or segment in self.segments

    @abstractmethod
    def secret_ref(self) -> SecretRef:
        """Where this notifier's secret (webhook URL, routing key) lives."""

    def secret_parts(self, value: str) -> list[str]:
        """The pieces of a resolved secret that must never be shown (for the log scrubber)."""
        return [value]


class SlackNotifierConfig(_Notifier):
    type: Literal["slack"]
    url: SecretRef
    min_interval_s: float = Field(default=1.0, ge=0, le=60)
    finished: Literal["summary", "full"] = "summary"

    def secret_ref(self) -> SecretRef:
        return self.url

    def secret_parts(self, value: str) -> list[str]:
        return url_secret_parts(value)


class PagerDutyNotifierConfig(_Notifier):
    type: Literal["pagerduty"]
    routing_key: SecretRef
    endpoint: str = PAGERDUTY_ENDPOINT  # the Events API v2 URL itself is not secret
    events: tuple[EventKind, ...] = tuple(k for k in EventKind if k in PAGERDUTY_EVENTS)
    min_interval_s: float = Field(default=0.5, ge=0, le=60)

    @model_validator(mode="after")
    def _only_actionable(self) -> PagerDutyNotifierConfig:
        extra = [k.value for k in self.events if k not in PAGERDUTY_EVENTS]
        if extra:
            allowed = ", ".join(sorted(k.value for k in PAGERDUTY_EVENTS))
            raise ValueError(f"pagerduty acts only on {allowed}; remove {', '.join(extra)}")
        return self

    def secret_ref(self) -> SecretRef:
        return self.routing_key


class WebhookNotifierConfig(_Notifier):
    type: Literal["webhook"]
    url: SecretRef

    def secret_ref(self) -> SecretRef:
        return self.url

    def secret_parts(self, value: str) -> list[str]:
        return url_secret_parts(value)


NotifierConfig = Annotated[
    SlackNotifierConfig | PagerDutyNotifierConfig | WebhookNotifierConfig, Field(discriminator="type")
]


def _unique_names(notifiers: list[NotifierConfig]) -> list[NotifierConfig]:
    names = [n.name for n in notifiers]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"notifier names must be unique: {', '.join(twice)}")
    return notifiers


Notifiers = Annotated[list[NotifierConfig], AfterValidator(_unique_names)]


class NotifySettings(_Model):
    """How delivery jobs run and retry (5xx, 429, timeouts; never other 4xx)."""

    queue_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]+$")
    backoff_s: tuple[float, ...] = Field(default=(5.0, 15.0, 60.0, 120.0, 300.0), min_length=1)
    max_attempts: int = Field(default=8, ge=1, le=50)
    max_age_s: float = Field(default=3600.0, gt=0)

    def queue(self, recovery_queue: str) -> str:
        return self.queue_name or f"{recovery_queue}-notify"


def url_secret_parts(url: str) -> list[str]:
    """Everything after the host is a webhook URL's secret (Slack: /services/T…/B…/<token>):
    the path, the query, and each token-like path segment on its own."""
    parts = urlsplit(url)
    tokens = [p for p in parts.path.split("/") if len(p) >= 16]
    pieces = [url, parts.path + (f"?{parts.query}" if parts.query else ""), parts.path, parts.query, *tokens]
    return [p for p in dict.fromkeys(pieces) if p and p != "/"]
