"""Masakari API v1 for segments and hosts, so `openstack segment ...` and openstacksdk's
`instance_ha` proxy work against Lazarus unchanged.

Same routes, envelopes, status codes, error bodies (`badRequest`, `itemNotFound`,
`conflictingRequest`, `masakariFault`) and microversion headers as Masakari 22; ours on top:
a host's fencing block (a password *reference*, never a value) and why it is on maintenance.
Authentication is the app's (bearer or `X-Auth-Token`); the version documents are public,
as clients read them before they authenticate.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request

from receiver.bootstrap import Services
from receiver.errors import ComputeError, ConfigError, InputError, NotFound, UnknownReference
from receiver.inventory import InventoryConflict
from receiver.inventory_nova import require_compute_hosts
from receiver.web import views
from receiver.web.masakari_schema import (
    MAX_VERSION,
    MIN_VERSION,
    Page,
    Version,
    VersionNotAcceptable,
    host_fields,
    page,
    paginate,
    query_bool,
    requested_version,
    segment_fields,
)

PUBLIC_PATHS = frozenset({"/v1", "/v1/"})
_UPDATED = "2016-07-01T11:33:21Z"
_SEGMENT_SORT = frozenset(
    {
        "id",
        "uuid",
        "name",
        "description",
        "recovery_method",
        "service_type",
        "enabled",
        "created_at",
        "updated_at",
    }
)
_HOST_SORT = frozenset(
    {
        "id",
        "uuid",
        "name",
        "type",
        "control_attributes",
        "reserved",
        "on_maintenance",
        "created_at",
        "updated_at",
    }
)
_FAULT_KEYS = {400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest"}


def register(app: Flask, services: Services) -> None:
    app.register_blueprint(_blueprint(services))

    @app.get("/")
    def versions() -> Response:
        return jsonify({"versions": [_version(links=False)]})


def fault(status: int, message: str) -> Response:
    """Masakari's error body: `{"<kind>": {"code": ..., "message": ...}}`."""
    response = jsonify({_FAULT_KEYS.get(status, "masakariFault"): {"code": status, "message": message}})
    response.status_code = status
    response.content_type = "application/json; charset=UTF-8"
    return response


def _blueprint(services: Services) -> Blueprint:
    api = Blueprint("masakari", __name__, url_prefix="/v1")
    store = services.inventory

    @api.before_request
    def negotiate() -> Response | None:
        try:
            g.ha_version = requested_version(request.headers.get("OpenStack-API-Version"))
        except VersionNotAcceptable as exc:
            return fault(406, str(exc))
        return None

    @api.after_request
    def version_headers(response: Response) -> Response:
        if response.status_code == 401:  # answered before the API (Keystone's middleware in Masakari)
            return response
        version: Version | None = g.get("ha_version")
        if version is not None:
            response.headers["OpenStack-API-Version"] = f"instance-ha {version}"
        response.headers["Vary"] = "OpenStack-API-Version"
        response.headers["X-OpenStack-Request-Id"] = f"req-{uuid.uuid4()}"
        return response

    _add_error_handlers(api)

    @api.get("")
    @api.get("/")
    def version_document() -> Response:
        return jsonify({"version": _version(links=True)})

    # -- segments ------------------------------------------------------------------------
    @api.get("/segments")
    def list_segments() -> Response:
        at = _page(_SEGMENT_SORT)
        wanted = _filters(("recovery_method", "service_type"), ("enabled",))
        items = [views.segment(s) for s in store.segments()]
        return jsonify({"segments": paginate(items, _matches(wanted), at)})

    @api.post("/segments")
    def create_segment() -> tuple[Response, int]:
        fields = segment_fields(_json(), g.ha_version, create=True)
        created = store.create_segment(fields, services.clock.now())
        return jsonify({"segment": views.segment(created)}), 201

    @api.get("/segments/<segment_id>")
    def show_segment(segment_id: str) -> Response:
        return jsonify({"segment": views.segment(store.segment(segment_id))})

    @api.put("/segments/<segment_id>")
    def update_segment(segment_id: str) -> Response:
        changes = segment_fields(_json(), g.ha_version, create=False)
        updated = store.update_segment(segment_id, changes, services.clock.now())
        return jsonify({"segment": views.segment(updated)})

    @api.delete("/segments/<segment_id>")
    def delete_segment(segment_id: str) -> Response:
        store.delete_segment(segment_id)
        return _no_content()

    # -- hosts ---------------------------------------------------------------------------
    @api.get("/segments/<segment_id>/hosts")
    def list_hosts(segment_id: str) -> Response:
        at = _page(_HOST_SORT)
        wanted = _filters(("name", "type", "control_attributes"), ("on_maintenance", "reserved"))
        _, hosts = store.segment_hosts(segment_id)
        items = [views.host(h) for h in hosts]
        return jsonify({"hosts": paginate(items, _matches(wanted), at)})

    @api.post("/segments/<segment_id>/hosts")
    def create_host(segment_id: str) -> tuple[Response, int]:
        fields = host_fields(_json(), create=True)
        _check_name(services, fields)
        created = store.create_host(segment_id, fields, services.clock.now(), source="api")
        return jsonify({"host": views.host(created)}), 201

    @api.get("/segments/<segment_id>/hosts/<host_id>")
    def show_host(segment_id: str, host_id: str) -> Response:
        return jsonify({"host": views.host(store.host_in(segment_id, host_id))})

    @api.put("/segments/<segment_id>/hosts/<host_id>")
    def update_host(segment_id: str, host_id: str) -> Response:
        changes = host_fields(_json(), create=False)
        _check_name(services, changes)
        updated = store.update_host(segment_id, host_id, changes, services.clock.now(), source="api")
        return jsonify({"host": views.host(updated)})

    @api.delete("/segments/<segment_id>/hosts/<host_id>")
    def delete_host(segment_id: str, host_id: str) -> Response:
        store.delete_host(segment_id, host_id)
        return _no_content()

    return api


def _version(*, links: bool) -> dict[str, Any]:
    base = request.host_url.rstrip("/") + "/v1/"
    document: dict[str, Any] = {
        "id": "v1.0",
        "status": "CURRENT",
        "version": ".".join(map(str, MAX_VERSION)),
        "min_version": ".".join(map(str, MIN_VERSION)),
        "updated": _UPDATED,
        "links": [{"rel": "self", "href": base}],
    }
    if links:
        document["links"].append(
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"}
        )
        document["media-types"] = [
            {"base": "application/json", "type": "application/vnd.openstack.masakari+json;version=1"}
        ]
    return document


def _json() -> Any:
    return request.get_json(silent=True, force=True)


def _page(sort_keys: frozenset[str]) -> Page:
    return page({k: request.args.getlist(k) for k in request.args}, sort_keys)


def _filters(exact: tuple[str, ...], booleans: tuple[str, ...]) -> dict[str, Any]:
    wanted: dict[str, Any] = {k: request.args[k] for k in exact if k in request.args}
    wanted.update({k: query_bool(k, request.args[k]) for k in booleans if k in request.args})
    return wanted


def _matches(wanted: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    return lambda item: all(item.get(k) == v for k, v in wanted.items())


def _no_content() -> Response:
    return Response(b"", status=204, content_type="application/json")


def _add_error_handlers(api: Blueprint) -> None:
    @api.errorhandler(InputError)
    def bad_request(exc: InputError) -> Response:
        if isinstance(exc, UnknownReference):
            return fault(400, exc.problem)  # Masakari's own sentence, as its clients show it
        field = "fencing" + exc.field[3:] if exc.field.startswith("bmc") else exc.field
        return fault(400, f"Invalid input for field/attribute {field}. {exc.problem}")

    @api.errorhandler(NotFound)
    def not_found(exc: NotFound) -> Response:
        return fault(404, exc.message)

    @api.errorhandler(InventoryConflict)
    def conflict(exc: InventoryConflict) -> Response:
        return fault(409, exc.message)

    @api.errorhandler(ConfigError)
    def nova_not_configured(exc: ConfigError) -> Response:
        return fault(503, f"could not check the host name against Nova: {exc.message}")

    @api.errorhandler(ComputeError)
    def nova_failed(exc: ComputeError) -> Response:
        # Only the host-name check asks Nova here, before anything is written.
        return fault(503, f"could not check the host name against Nova: {exc.described}")


def _check_name(services: Services, fields: dict[str, Any]) -> None:
    """A host's name must be one Nova runs nova-compute on, as Masakari requires (400)."""
    if "name" in fields and services.settings.nova.require_compute_hosts:
        require_compute_hosts(services.compute(), [str(fields["name"])])
