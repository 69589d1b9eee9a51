"""The Flask application factory: webhook, read API, health and metrics.

The HTTP boundary maps our error tree to status codes: InputError 400 (naming the field),
missing auth 401, body too large 413, NotFound 404, StoreUnavailable 503 (Alertmanager
retries 5xx, not 4xx: safety rule 4). Nothing is answered 2xx before the record is durable.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from receiver import watchdog
from receiver.bootstrap import Services, build
from receiver.domain.alerts import parse_webhook
from receiver.errors import InputError, NotFound, StoreUnavailable
from receiver.metrics import RedisStateCollector
from receiver.probe import BmcProbeCollector, ProbeStore
from receiver.settings import load_settings
from receiver.web import masakari_api, operator_api, views
from receiver.web.auth import Credentials

log = logging.getLogger(__name__)

MAX_LIST = 1000


def create_app(services: Services | None = None) -> Flask:
    if services is None:
        services = build(load_settings())
    settings = services.settings
    hook = settings.webhook
    credentials = Credentials(
        tokens=tuple(hook.all_tokens()),
        basic_users=tuple((u, p.get_secret_value()) for u, p in hook.basic_users.items()),
        allow_unauthenticated=hook.allow_unauthenticated,
    )
    if not credentials.configured:
        if not hook.allow_unauthenticated:
            from receiver.errors import ConfigError

            raise ConfigError(
                "webhook: no bearer_tokens, bearer_token_files or basic_users configured; "
                "set webhook.allow_unauthenticated=true to run without authentication"
            )
        log.warning("webhook authentication is DISABLED (webhook.allow_unauthenticated=true)")

    app = Flask("receiver")
    app.config["MAX_CONTENT_LENGTH"] = hook.max_body_bytes
    app.extensions["lazarus"] = services
    registry, requests_total = _request_metrics()
    heartbeat = watchdog.Heartbeat(services.redis, settings.key_prefix)
    _boundary(app, credentials, requests_total, hook.max_body_bytes)
    _webhook_routes(app, services, heartbeat)
    _read_routes(app, services)
    masakari_api.register(app, services)
    operator_api.register(app, services)
    _ops_routes(app, services, registry, heartbeat)
    return app


def answer(body: dict[str, Any], status: int, **headers: str) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers)
    return response


def error(status: int, message: str, **extra: Any) -> Response:
    headers = {"Retry-After": "5"} if status == 503 else {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="lazarus"'
    return answer({"error": {"code": status, "message": message, **extra}}, status, **headers)


def _boundary(app: Flask, credentials: Credentials, requests_total: Counter, max_body_bytes: int) -> None:
    """Authentication, request counting, and the mapping of errors to status codes."""

    @app.before_request
    def authenticate() -> Response | None:
        public = request.path in masakari_api.PUBLIC_PATHS  # version discovery comes before auth
        if (
            request.path.startswith("/v1")
            and not public
            and not credentials.allows(
                request.headers.get("Authorization"), request.headers.get("X-Auth-Token")
            )
        ):
            return error(401, "authentication required")
        return None

    @app.after_request
    def count(response: Response) -> Response:
        if request.path.startswith("/v1/webhooks"):
            requests_total.labels(code=str(response.status_code)).inc()
        return response

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(exc: StoreUnavailable) -> Response:
        log.error("store unavailable", extra={"path": request.path, "error": exc.message})
        return error(503, "store unavailable; retry later")

    @app.errorhandler(NotFound)
    def not_found(exc: NotFound) -> Response:
        return error(404, exc.message)

    @app.errorhandler(InputError)
    def bad_input(exc: InputError) -> Response:
        return error(400, exc.message, field=exc.field)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_: RequestEntityTooLarge) -> Response:
        return error(413, f"body larger than {max_body_bytes} bytes")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def crashed(exc: Exception) -> Response:
        # The HTTP boundary: log it, answer 500 (Alertmanager retries), never echo details.
        log.exception("request failed", extra={"path": request.path})
        return error(500, "internal error")


def _webhook_routes(app: Flask, services: Services, heartbeat: watchdog.Heartbeat) -> None:
    intake = services.intake()
    max_body_bytes = services.settings.webhook.max_body_bytes

    @app.post("/v1/webhooks/alertmanager")
    def alertmanager_webhook() -> Response:
        length = request.content_length
        if length is not None and length > max_body_bytes:
            return error(413, f"body larger than {max_body_bytes} bytes")
        raw = request.get_data(cache=False)
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError("body", f"not valid JSON ({exc})") from None
        beats, message = watchdog.split(parse_webhook(body))
        if beats:  # the heartbeat opens no record
            heartbeat.seen(datetime.now(UTC))
            for _ in beats:
                services.metrics.alert_received(watchdog.OUTCOME)
        results = [
            *({"fingerprint": b.fingerprint, "outcome": watchdog.OUTCOME} for b in beats),
            *(r.__dict__ for r in intake.accept(message)),
        ]
        return answer({"alerts": results}, 200)


def _read_routes(app: Flask, services: Services) -> None:
    @app.get("/v1/notifications")
    def list_notifications() -> Response:
        limit = _int_arg("limit", 100, 1, MAX_LIST)
        wanted_status = request.args.get("status")
        wanted_type = request.args.get("type")
        marker = request.args.get("marker")
        records = services.store.recent(limit=MAX_LIST)
        if marker:
            ids = [r.notification_uuid for r in records]
            if marker not in ids:
                raise InputError("marker", f"unknown notification {marker}")
            records = records[ids.index(marker) + 1 :]
        selected = [
            r
            for r in records
            if (not wanted_status or r.status.value == wanted_status)
            and (not wanted_type or r.type.value == wanted_type)
        ][:limit]
        return answer({"notifications": [views.notification_summary(r) for r in selected]}, 200)

    @app.get("/v1/notifications/<uuid>")
    def show_notification(uuid: str) -> Response:
        from receiver.notify.ledger import DeliveryLedger

        stored = services.store.get_full(uuid)
        deliveries = DeliveryLedger(services.redis, services.settings.key_prefix).deliveries(uuid)
        return answer({"notification": views.notification_detail(stored, deliveries=deliveries)}, 200)

    @app.get("/v1/notifications/<uuid>/vmoves")
    def list_vmoves(uuid: str) -> Response:
        record = services.store.get(uuid)
        return answer({"vmoves": [views.vmove(record, m) for m in record.vmoves]}, 200)


def _ops_routes(
    app: Flask, services: Services, registry: CollectorRegistry, heartbeat: watchdog.Heartbeat
) -> None:
    settings = services.settings

    @app.get("/healthz")
    def healthz() -> Response:
        return answer({"status": "ok"}, 200)

    @app.get("/readyz")
    def readyz() -> Response:
        services.store.ping()
        return answer({"status": "ready"}, 200)

    @app.get("/metrics")
    def metrics() -> Response:
        scrape = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(scrape)
        else:
            scrape.register(_RegistryView(registry))
        scrape.register(RedisStateCollector(services.redis, settings.key_prefix, settings.queue_name))
        scrape.register(
            BmcProbeCollector(ProbeStore(services.redis, settings.key_prefix, settings.probe.max_age_s))
        )
        scrape.register(watchdog.HeartbeatCollector(heartbeat))
        return Response(generate_latest(scrape), mimetype=CONTENT_TYPE_LATEST)


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(name, "must be an integer") from None
    if not low <= value <= high:
        raise InputError(name, f"must be between {low} and {high}")
    return value


def _request_metrics() -> tuple[CollectorRegistry, Counter]:
    # Multiprocess mode: values go to PROMETHEUS_MULTIPROC_DIR whatever the registry.
    registry = CollectorRegistry()
    counter = Counter(
        "lazarus_webhook_requests",
        "Webhook requests answered by this receiver, by HTTP status.",
        ["code"],
        registry=registry,
    )
    return registry, counter


class _RegistryView:
    """Lets a per-scrape registry include an app's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Any:
        return self.registry.collect()
