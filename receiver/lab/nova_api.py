"""The lab's compute API: Nova's URLs, microversions, JSON shapes and errors over real HTTP.

`create_app(context)` returns a Flask app serving the Nova API under `/v2.1` and the lab's
control API under `/lab` (see `receiver.lab.control`). Every request needs the lab's
`X-Auth-Token`; every response carries a request id and echoes the microversion, as Nova does.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

from flask import Flask, Response, g, jsonify, request

from receiver.lab import views
from receiver.lab.action_log import LAB_PROJECT, Requester, lab_admin
from receiver.lab.cloud import Cloud
from receiver.lab.model import Instance, NovaError
from receiver.lab.views import Json, Version

MAX_LIMIT = 1000  # Nova's [api] max_limit
REQUESTER_PROJECT = LAB_PROJECT  # the lab's token acts as Nova's admin in project "admin"
CONTROLLER_SERVICES = (
    ("nova-conductor", "8d5fea6e-0000-4000-8000-00000000c0d0"),
    ("nova-scheduler", "dd4f0bba-0000-4000-8000-00000000c5e0"),
)
SERVICE_QUERY_KEYS = {"binary", "host"}


class BmcFaults(Protocol):
    """The part of the BMC fleet the control API needs."""

    def set_fault(self, host: str, fault: Any) -> None: ...

    def request_counts(self) -> dict[str, dict[str, int]]: ...


@dataclass
class LabContext:
    cloud: Cloud
    token: str
    bmc: BmcFaults | None = None
    bmc_faults: dict[str, str] = field(default_factory=dict)


def create_app(context: LabContext) -> Flask:
    from receiver.lab.aggregate_api import add_aggregate_routes
    from receiver.lab.control import control_blueprint
    from receiver.lab.instance_actions import add_instance_action_routes
    from receiver.lab.resource_api import add_resource_routes

    app = Flask("receiver.lab")
    app.url_map.strict_slashes = False
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep Nova's field order
    app.config["LAB"] = context
    cloud = context.cloud

    @app.before_request
    def _authenticate_and_negotiate() -> Response | tuple[Response, int] | None:
        g.request_id = f"req-{uuid.uuid4()}"
        g.version = views.MIN_VERSION
        path = request.path.rstrip("/")
        g.echo = path.startswith("/v2.1")
        if path in ("", "/v2.1") and request.method == "GET":
            return None  # version documents are public, as in Nova
        given = request.headers.get("X-Auth-Token", "")
        if not hmac.compare_digest(given.encode(), context.token.encode()):
            body = {"error": {"code": 401, "title": "Unauthorized",
                              "message": "The request you have made requires authentication."}}  # fmt: skip
            response = jsonify(body)
            response.headers["WWW-Authenticate"] = 'Keystone uri="none"'
            g.echo = False
            return response, 401
        if path.startswith("/lab"):
            return None
        g.version = _requested_version()
        api_path = path.removeprefix("/v2.1")
        refused = next((p for p in sorted(cloud.faults.forbidden) if api_path.startswith(p)), None)
        if refused is not None:
            # Nova's answer to a request its policy (policy.yaml) does not allow this role.
            rule = f"os_compute_api:{refused.strip('/')}"
            message = f"Policy doesn't allow {rule} to be performed."
            return jsonify({"forbidden": {"code": 403, "message": message}}), 403
        delay_ms = cloud.faults.api_delay_ms
        if delay_ms:
            time.sleep(delay_ms / 1000)  # the injected "slow API" fault: the one sleep in a handler
        return None

    @app.after_request
    def _stamp(response: Response) -> Response:
        request_id = getattr(g, "request_id", f"req-{uuid.uuid4()}")
        response.headers["x-openstack-request-id"] = request_id
        response.headers["x-compute-request-id"] = request_id
        if g.get("echo"):
            shown = views.version_string(g.version)
            response.headers["OpenStack-API-Version"] = f"compute {shown}"
            response.headers["X-OpenStack-Nova-API-Version"] = shown
            response.headers["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
        return response

    @app.errorhandler(NovaError)
    def _nova_error(error: NovaError) -> tuple[Response, int]:
        return jsonify({error.kind: {"code": error.status, "message": error.message}}), error.status

    @app.errorhandler(404)
    def _not_found(_: Exception) -> tuple[Response, int]:
        return jsonify({"itemNotFound": {"code": 404, "message": "The resource could not be found."}}), 404

    @app.errorhandler(405)
    def _not_allowed(_: Exception) -> tuple[Response, int]:
        return jsonify({"computeFault": {"code": 405, "message": "Method not allowed."}}), 405

    _add_compute_routes(app, cloud)
    add_resource_routes(app, cloud)
    add_aggregate_routes(app, cloud)
    add_instance_action_routes(app, cloud)
    app.register_blueprint(control_blueprint(context))
    return app


def base() -> str:
    return request.host_url.rstrip("/")


def _add_compute_routes(app: Flask, cloud: Cloud) -> None:
    """Version documents, os-services and servers."""

    @app.get("/")
    def versions() -> Response:
        return jsonify(views.versions_document(base()))

    @app.get("/v2.1")
    def version() -> Response:
        return jsonify({"version": views.version_document(base())})

    # -- os-services ----------------------------------------------------------------------------
    @app.get("/v2.1/os-services")
    def list_services() -> Response:
        reject_unknown(SERVICE_QUERY_KEYS)
        binary, host_name = request.args.get("binary"), request.args.get("host")
        now = cloud.clock()
        found: list[Json] = []
        with cloud.lock:
            for controller_binary, service_id in CONTROLLER_SERVICES:
                if binary in (None, controller_binary) and host_name in (None, "controller"):
                    found.append(_controller_service(controller_binary, service_id, now))
            if binary in (None, "nova-compute"):
                hosts = [cloud.hosts[host_name]] if host_name in cloud.hosts else []
                for host in cloud.hosts.values() if host_name is None else hosts:
                    found.append(views.service(cloud, host, now, g.version))
        return jsonify({"services": found})

    @app.put("/v2.1/os-services/<service_id>")
    def update_service(service_id: str) -> Response:
        if g.version < (2, 53):
            raise NovaError(404, "The resource could not be found.")
        body = json_body()
        unknown = sorted(set(body) - {"status", "disabled_reason", "forced_down"})
        if unknown:
            raise NovaError(400, f"Additional properties are not allowed ('{unknown[0]}' was unexpected)")
        status, reason, forced = body.get("status"), body.get("disabled_reason"), body.get("forced_down")
        if status not in (None, "enabled", "disabled"):
            raise NovaError(400, f"Invalid input for field/attribute status. Value: {status}.")
        if forced is not None and not isinstance(forced, bool):
            raise NovaError(400, f"Invalid input for field/attribute forced_down. Value: {forced}.")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 255):
            raise NovaError(400, "Invalid input for field/attribute disabled_reason.")
        if not _is_uuid(service_id):
            raise NovaError(400, f"Invalid uuid {service_id}")
        if service_id in dict(CONTROLLER_SERVICES).values():
            raise NovaError(400, "Updating a nova-conductor or nova-scheduler service is not supported. "
                                 "Only nova-compute services can be updated.")  # fmt: skip
        with cloud.lock:
            host = cloud.update_service(service_id, forced_down=forced, status=status, disabled_reason=reason)
            return jsonify({"service": views.service(cloud, host, cloud.clock(), g.version)})

    # -- servers --------------------------------------------------------------------------------
    @app.get("/v2.1/servers")
    def list_servers() -> Response:
        return _servers_page(cloud, base(), detail=False)

    @app.get("/v2.1/servers/detail")
    def list_servers_detail() -> Response:
        return _servers_page(cloud, base(), detail=True)

    @app.post("/v2.1/servers")
    def boot_server() -> tuple[Response, int]:
        from receiver.lab.actions import boot

        server = boot(cloud, json_body().get("server"), g.version, _requester())
        body = {
            "id": server.id,
            "links": views.links(base(), "servers", server.id),
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": "default"}],
            "adminPass": secrets.token_urlsafe(9),
        }
        response = jsonify({"server": body})
        response.headers["Location"] = f"{base()}/v2.1/servers/{server.id}"
        return response, 202

    @app.delete("/v2.1/servers/<server_id>")
    def delete_server(server_id: str) -> tuple[Response, int]:
        cloud.delete_server(server_id, _requester())
        return Response(b"", content_type="application/json"), 204

    @app.get("/v2.1/servers/<server_id>")
    def show_server(server_id: str) -> Response:
        with cloud.lock:
            server = cloud.server(server_id)
            return jsonify({"server": views.server_detail(cloud, server, base(), cloud.clock(), g.version)})

    @app.post("/v2.1/servers/<server_id>/action")
    def server_action(server_id: str) -> tuple[Response, int]:
        from receiver.lab.actions import run_action

        return run_action(cloud, server_id, json_body(), g.version, _requester())


def _requester() -> Requester:
    """The caller: the lab's token is Nova's admin (user and project "admin")."""
    return lab_admin(g.request_id)


def _requested_version() -> Version:
    header = request.headers.get("OpenStack-API-Version", "")
    wanted: str | None = None
    for part in header.split(","):
        service, _, value = part.strip().partition(" ")
        if service.lower() == "compute" and value.strip():
            wanted = value.strip()
    if wanted is None:
        wanted = request.headers.get("X-OpenStack-Nova-API-Version")
    if not wanted:
        return views.MIN_VERSION
    if wanted.lower() == "latest":
        return views.MAX_VERSION
    match = re.fullmatch(r"(\d+)\.(\d+)", wanted.strip())
    if match is None:
        raise NovaError(
            400, f"API Version String {wanted} is of invalid format. Must be of format MajorNum.MinorNum."
        )
    version = (int(match.group(1)), int(match.group(2)))
    if not views.MIN_VERSION <= version <= views.MAX_VERSION:
        g.version = version
        low, high = views.version_string(views.MIN_VERSION), views.version_string(views.MAX_VERSION)
        raise NovaError(
            406, f"Version {wanted} is not supported by the API. Minimum is {low} and maximum is {high}."
        )
    return version


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise NovaError(400, "Malformed request body")
    return body


def reject_unknown(allowed: set[str]) -> None:
    unknown = [key for key in request.args if key not in allowed]
    if unknown:
        raise NovaError(400, f"Additional properties are not allowed ('{unknown[0]}' was unexpected)")


def page_limit() -> int:
    raw = request.args.get("limit")
    if raw is None:
        return MAX_LIMIT
    if not raw.isdigit():
        raise NovaError(400, f"Invalid input for query parameters limit. Value: {raw}.")
    return min(int(raw), MAX_LIMIT)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("", "1", "true", "yes", "on", "t", "y")


def _controller_service(binary: str, service_id: str, now: float) -> Json:
    return {"binary": binary, "host": "controller", "id": service_id, "zone": "internal",
            "status": "enabled", "state": "up", "updated_at": views.iso_micro(now // 1),
            "disabled_reason": None, "forced_down": False}  # fmt: skip


def _servers_page(cloud: Cloud, base_url: str, *, detail: bool) -> Response:
    args = request.args
    project = None if _truthy(args.get("all_tenants")) else REQUESTER_PROJECT
    if project is None and ("project_id" in args or "tenant_id" in args):
        project = args.get("project_id") or args.get("tenant_id")
    servers: list[Instance] = cloud.list_servers(host=args.get("host"), project_id=project)
    if "status" in args:
        servers = [s for s in servers if s.status == args["status"].upper()]
    if "name" in args:
        pattern = re.compile(args["name"])
        servers = [s for s in servers if pattern.search(s.name)]
    if "marker" in args:
        ids = [s.id for s in servers]
        if args["marker"] not in ids:
            raise NovaError(400, f"marker [{args['marker']}] not found")
        servers = servers[ids.index(args["marker"]) + 1 :]
    limit = page_limit()
    page = servers[:limit]
    now = cloud.clock()
    with cloud.lock:
        if detail:
            items = [views.server_detail(cloud, s, base_url, now, g.version) for s in page]
        else:
            items = [views.server_summary(s, base_url) for s in page]
    body: Json = {"servers": items}
    if page and len(page) == limit:
        query = [(k, v) for k, v in args.items(multi=True) if k != "marker"] + [("marker", page[-1].id)]
        path = "servers/detail" if detail else "servers"
        body["servers_links"] = [{"rel": "next", "href": f"{base_url}/v2.1/{path}?{urlencode(query)}"}]
    return jsonify(body)


def new_token() -> str:
    return f"lab-{secrets.token_hex(16)}"
