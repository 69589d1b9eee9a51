"""`POST /v1/notifications/<uuid>/{approve,reject,abort,retry}` with `{"by": NAME}` (authenticated)."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

from receiver.bootstrap import Services, utc_now
from receiver.errors import InputError
from receiver.operator import Operator
from receiver.web import views

ACTIONS = ("approve", "reject", "abort", "retry")


def register(app: Flask, services: Services) -> None:
    operator = Operator(services.store, services.queue, services.settings.worker.lease_ttl_s)

    @app.post("/v1/notifications/<uuid>/<action>")
    def operate(uuid: str, action: str) -> Response:
        if action not in ACTIONS:
            raise InputError("action", f"must be one of {', '.join(ACTIONS)}")
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("by"), str):
            raise InputError("by", 'a JSON body {"by": NAME} naming who decides is required')
        getattr(operator, action)(uuid, body["by"], utc_now())
        stored = services.store.get_full(uuid)
        return jsonify({"notification": views.notification_detail(stored)})
