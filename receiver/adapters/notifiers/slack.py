"""Slack incoming webhook: a Block Kit message per event.

Success is HTTP 200 with body `ok`; errors are 400 `invalid_payload`, 403/404/410 for a gone
channel, 429 with Retry-After, 5xx. Limits kept: header 150 chars, section text 3000 chars,
the whole message well under the ~13k characters Slack really accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from receiver.adapters.notifiers.http import JsonPoster, TransportFailure
from receiver.domain.events import EventKind
from receiver.domain.model import Secret
from receiver.notify.message import Message, clip
from receiver.notify.result import FailureReason, NotifyResult, classify_status, redact_url

SECTION_MAX = 2900
INSTANCES_SHOWN = 20
_SLACK_ERROR = re.compile(r"^[a-z_]{1,64}$")  # Slack's error codes; anything else is not echoed
_EMOJI = {
    EventKind.STARTED: ":hourglass_flowing_sand:",
    EventKind.FINISHED: ":white_check_mark:",
    EventKind.FAILED: ":red_circle:",
    EventKind.REFUSED: ":no_entry:",
    EventKind.NEEDS_APPROVAL: ":raising_hand:",
    EventKind.REINSTATED: ":leftwards_arrow_with_hook:",
}
_MOVE_MARK = {"succeeded": ":white_check_mark:", "failed": ":x:", "ignored": ":heavy_minus_sign:"}


class SlackNotifier:
    def __init__(
        self,
        name: str,
        url: Secret,
        http: JsonPoster,
        *,
        timeout_s: float,
        now: Callable[[], datetime],
        finished: Literal["summary", "full"] = "summary",
    ) -> None:
        self.name = name
        self._url = url
        self._http = http
        self._timeout_s = timeout_s
        self._now = now
        self._finished = finished

    def notify(self, message: Message) -> NotifyResult:
        url = self._url.reveal()
        try:
            reply = self._http.post_json(url, render(message, self._finished), timeout_s=self._timeout_s)
        except TransportFailure as failure:
            return failure.result
        code = reply.body.strip()
        shown = code if _SLACK_ERROR.match(code) else "(unrecognised body)"
        detail = f"{redact_url(url)} answered HTTP {reply.status} {shown}"
        failed = classify_status(reply.status, reply.header("Retry-After"), self._now(), detail)
        if failed is not None:
            return failed
        if code == "ok" or code.replace(" ", "").startswith('{"ok":true'):
            return NotifyResult.delivered(reply.status)
        return NotifyResult.failed(FailureReason.BAD_RESPONSE, detail, status=reply.status)


def render(message: Message, finished: Literal["summary", "full"] = "summary") -> dict[str, Any]:
    """The webhook body: `text` for notifications and old clients, `blocks` for the message."""
    # A finish that left instances behind (it carries a diagnosis) is shown in full: someone must act.
    partial = message.event is EventKind.FINISHED and bool(message.diagnosis)
    emoji = ":warning:" if partial else _EMOJI[message.event]
    header = {
        "type": "header",
        "text": {"type": "plain_text", "text": clip(f"{emoji} {message.title}", 150)},
    }
    short = message.event is EventKind.STARTED or (
        message.event is EventKind.FINISHED and finished == "summary" and not partial
    )
    body = _short_blocks(message) if short else _full_blocks(message)
    return {"text": clip(message.summary, 3000), "blocks": [header, *body, _context(message)]}


def _short_blocks(message: Message) -> list[dict[str, Any]]:
    lines = [f"*What failed:* {_esc(message.failure)}"]
    if message.event is EventKind.FINISHED:
        fence = "; ".join(f"{f.method} {f.bmc}: power {f.power_after} ({f.outcome})" for f in message.fencing)
        lines += [f"*Instances:* {_esc(message.instances_note)}", f"*Fencing:* {_esc(fence or 'none')}"]
    if message.diagnosis:
        lines.append(f"*Diagnosis:* {_esc(message.diagnosis)}")
    return [_section("\n".join(lines))]


def _full_blocks(message: Message) -> list[dict[str, Any]]:
    status = message.status + (f" ({message.reason})" if message.reason else "")
    fields = [
        ("Host", message.host),
        ("Segment", message.segment or "unknown"),
        ("Status", status),
        ("Severity", message.severity.value),
    ]
    return [
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}:*\n{_esc(v)}"} for k, v in fields]},
        _section(
            f"*What failed*\n{_esc(message.failure)}\n*Outcome:* {_esc(message.outcome or status)}"
            + (f"\n*Diagnosis:* {_esc(message.diagnosis)}" if message.diagnosis else "")
        ),
        _section(
            "*What Lazarus did*\n" + ("\n".join(f"• {_esc(a)}" for a in message.actions) or "nothing yet")
        ),
        _section("*Fencing evidence*\n" + _fencing(message)),
        _section(f"*Instances:* {_esc(message.instances_note)}\n" + _instances(message)),
    ]


def _fencing(message: Message) -> str:
    if not message.fencing:
        return "no fence attempt: the host was never powered off by Lazarus"
    return "\n".join(
        f"• {f.method} `{f.bmc}`: power {f.power_before} → {f.power_after}, *{f.outcome}* "
        f"({f.started_at[11:19]} to {f.ended_at[11:19]})" + (f" {_esc(f.message)}" if f.message else "")
        for f in message.fencing
    )


def _instances(message: Message) -> str:
    lines = []
    for move in message.instances[:INSTANCES_SHOWN]:
        mark = _MOVE_MARK.get(move.status, ":hourglass:")
        where = f" → {move.dest_host}" if move.status == "succeeded" and move.dest_host else ""
        why = f": {_esc(move.message)}" if move.status != "succeeded" and move.message else ""
        lines.append(f"{mark} {_esc(move.name)} `{move.uuid}`{where}{why}")
    hidden = len(message.instances) - INSTANCES_SHOWN
    if hidden > 0:
        lines.append(f"…and {hidden} more (see the record)")
    return "\n".join(lines)


def _context(message: Message) -> dict[str, Any]:
    record = (
        f"<{message.record_url}|record {message.notification_uuid}>"
        if message.record_url
        else f"record `{message.notification_uuid}`"
    )
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": f"{record} · {message.event.value} · {message.at[:19]}Z"}],
    }


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_MAX)}}


def _esc(text: str) -> str:
    """Slack mrkdwn control characters (&, <, >) as entities, as Slack asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
