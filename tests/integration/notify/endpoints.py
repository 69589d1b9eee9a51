"""Local HTTP servers that follow the Slack incoming-webhook and PagerDuty Events v2 APIs.

Each one validates requests the way the real service does (alerting.md §3), records them, and
answers from a script of behaviours: "ok", "400", "429:<retry-after>", "500", "hang"
(no answer until the server stops), then "ok" once the script is used up.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SLACK_PATH = "/services/TLAZ4RUS0/BLAZ4RUS1/s3cr3tSl4ckT0k3nXyZ0123456789"
WEBHOOK_PATH = "/hooks/itsm/w3bh00kS3cr3t-0123456789abcdef"
PAGERDUTY_KEY = "R0UT1NGk3yLAZARUS0123456789abcde"  # 32 characters, like a real integration key
PD_SEVERITIES = {"critical", "error", "warning", "info"}


@dataclass
class Received:
    at: float  # time.monotonic() when the request arrived
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Endpoint:
    """One fake service: its requests, its scripted answers, and (PagerDuty) its incidents."""

    kind: str
    server: ThreadingHTTPServer | None = None
    received: list[Received] = field(default_factory=list)
    script: list[str] = field(default_factory=list)
    incidents: dict[str, list[str]] = field(default_factory=dict)  # dedup_key -> actions applied
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url(self) -> str:
        """The URL a notifier is configured with (Slack and webhook: the secret one)."""
        path = {"slack": SLACK_PATH, "webhook": WEBHOOK_PATH, "pagerduty": "/v2/enqueue"}[self.kind]
        return self.base + path

    def then(self, *behaviours: str) -> Endpoint:
        with self.lock:
            self.script.extend(behaviours)
        return self

    def next_behaviour(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else "ok"

    def bodies(self) -> list[Any]:
        with self.lock:
            return [r.body for r in self.received]

    def open_incidents(self) -> list[str]:
        with self.lock:
            return [key for key, actions in self.incidents.items() if actions and actions[-1] == "trigger"]


class _Handler(BaseHTTPRequestHandler):
    endpoint: Endpoint

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        ep = self.endpoint
        with ep.lock:
            ep.received.append(Received(time.monotonic(), self.path, dict(self.headers.items()), body))
        behaviour = ep.next_behaviour()
        if behaviour == "hang":
            ep.stopping.wait(60)
            return
        if behaviour.startswith("429"):
            retry_after = behaviour.partition(":")[2]
            headers = {"Retry-After": retry_after} if retry_after else {}
            self._answer(429, *self._error(429, "rate_limited"), headers)
            return
        if behaviour in ("400", "500"):
            status = int(behaviour)
            self._answer(status, *self._error(status, "invalid_payload" if status == 400 else "rollup_error"))
            return
        {"slack": self._slack, "pagerduty": self._pagerduty, "webhook": self._webhook}[ep.kind](body)

    # -- each API's rules --------------------------------------------------------------
    def _slack(self, body: Any) -> None:
        if self.path != SLACK_PATH:
            self._answer(404, "text/plain", "no_service")
            return
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
            self._answer(400, "text/plain", "invalid_payload")
            return
        blocks = body.get("blocks") or []
        too_long = any(
            (b.get("type") == "header" and len(b["text"]["text"]) > 150)
            or (b.get("type") == "section" and len((b.get("text") or {}).get("text", "")) > 3000)
            for b in blocks
        )
        if len(blocks) > 50 or too_long:
            self._answer(400, "text/plain", "invalid_blocks")
            return
        self._answer(200, "text/plain", "ok")

    def _pagerduty(self, body: Any) -> None:
        problems = _pagerduty_problems(body)
        if problems:
            self._answer(
                400,
                "application/json",
                json.dumps(
                    {"status": "invalid event", "message": "Event object is invalid", "errors": problems}
                ),
            )
            return
        key, action = body["dedup_key"], body["event_action"]
        with self.endpoint.lock:
            actions = self.endpoint.incidents.setdefault(key, [])
            open_now = bool(actions) and actions[-1] == "trigger"
            # PagerDuty drops a resolve for an incident that is not open.
            if action == "trigger" or open_now:
                actions.append(action)
        reply = {"status": "success", "message": "Event processed", "dedup_key": key}
        self._answer(202, "application/json", json.dumps(reply))

    def _webhook(self, body: Any) -> None:
        if self.path != WEBHOOK_PATH:
            self._answer(404, "application/json", "{}")
            return
        self._answer(200 if isinstance(body, dict) else 400, "application/json", "{}")

    # -- plumbing ------------------------------------------------------------------------
    def _error(self, status: int, code: str) -> tuple[str, str]:
        if self.endpoint.kind == "pagerduty":
            message = {429: "Rate limit exceeded", 400: "Event object is invalid"}.get(status, "Server error")
            return "application/json", json.dumps({"status": "error", "message": message, "errors": [code]})
        return "text/plain", code

    def _answer(self, status: int, ctype: str, text: str, headers: dict[str, str] | None = None) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _pagerduty_problems(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["Event object is not JSON"]
    problems = []
    if body.get("routing_key") != PAGERDUTY_KEY:
        problems.append("Invalid routing key")
    if body.get("event_action") not in ("trigger", "acknowledge", "resolve"):
        problems.append("'event_action' is invalid")
    if not body.get("dedup_key") or len(str(body.get("dedup_key"))) > 255:
        problems.append("'dedup_key' is missing or longer than 255 characters")
    if body.get("event_action") == "trigger":
        payload = body.get("payload") or {}
        if not payload.get("summary") or len(payload["summary"]) > 1024:
            problems.append("'payload.summary' is missing or too long")
        if not payload.get("source"):
            problems.append("'payload.source' is missing")
        if payload.get("severity") not in PD_SEVERITIES:
            problems.append("'payload.severity' is invalid")
    if len(json.dumps(body)) > 512_000:
        problems.append("Event is larger than 512 KB")
    return problems


@contextmanager
def serving(kind: str) -> Iterator[Endpoint]:
    endpoint = Endpoint(kind)
    handler = type(f"{kind.title()}Handler", (_Handler,), {"endpoint": endpoint})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    endpoint.server = server
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"fake-{kind}", daemon=True
    )
    thread.start()
    try:
        yield endpoint
    finally:
        endpoint.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
