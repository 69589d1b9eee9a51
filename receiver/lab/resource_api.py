"""The lab's compute API for os-migrations, os-hypervisors and flavors (see `receiver.lab.nova_api`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, g, jsonify, request

from receiver.lab import views
from receiver.lab.cloud import Cloud
from receiver.lab.model import Host, NovaError
from receiver.lab.nova_api import base, page_limit, reject_unknown
from receiver.lab.views import Json

MIGRATION_QUERY_KEYS = {
    "hidden", "host", "instance_uuid", "source_compute", "status", "migration_type",
    "changes-since", "changes-before", "limit", "marker", "user_id", "project_id",
}  # fmt: skip
HYPERVISOR_QUERY_KEYS = {"limit", "marker", "hypervisor_hostname_pattern", "with_servers"}


def add_resource_routes(app: Flask, cloud: Cloud) -> None:
    """os-migrations, os-hypervisors and flavors."""

    # -- os-migrations --------------------------------------------------------------------------
    @app.get("/v2.1/os-migrations")
    def list_migrations() -> Response:
        if g.version >= (2, 80):
            reject_unknown(MIGRATION_QUERY_KEYS)
        args = request.args
        records = cloud.list_migrations(
            instance_uuid=args.get("instance_uuid"),
            source_compute=args.get("source_compute"),
            host=args.get("host"),
        )
        for key in ("migration_type", "status"):
            if key in args:
                records = [m for m in records if getattr(m, key) == args[key]]
        records.sort(key=lambda m: (m.created_at, m.id), reverse=True)
        if g.version >= (2, 59) and "marker" in request.args:
            uuids = [m.uuid for m in records]
            if request.args["marker"] not in uuids:
                raise NovaError(404, f"Marker {request.args['marker']} could not be found.")
            records = records[uuids.index(request.args["marker"]) + 1 :]
        limit = page_limit() if g.version >= (2, 59) else None
        with cloud.lock:
            return jsonify({"migrations": [views.migration(m, g.version) for m in records[:limit]]})

    # -- os-hypervisors -------------------------------------------------------------------------
    @app.get("/v2.1/os-hypervisors")
    def list_hypervisors() -> Response:
        return _hypervisors(cloud, detail=False)

    @app.get("/v2.1/os-hypervisors/detail")
    def list_hypervisors_detail() -> Response:
        return _hypervisors(cloud, detail=True)

    @app.get("/v2.1/os-hypervisors/<hypervisor_id>")
    def show_hypervisor(hypervisor_id: str) -> Response:
        with cloud.lock:
            for host in cloud.hosts.values():
                if hypervisor_id in (host.hypervisor_id, str(host.number)):
                    body = views.hypervisor(cloud, host, cloud.clock(), g.version, detail=True)
                    return jsonify({"hypervisor": body})
        raise NovaError(404, f"Hypervisor with ID '{hypervisor_id}' could not be found.")

    # -- flavors --------------------------------------------------------------------------------
    @app.get("/v2.1/flavors")
    def list_flavors() -> Response:
        return jsonify(
            {"flavors": [views.flavor(f, base(), g.version, detail=False) for f in _flavors(cloud)]}
        )

    @app.get("/v2.1/flavors/detail")
    def list_flavors_detail() -> Response:
        return jsonify(
            {"flavors": [views.flavor(f, base(), g.version, detail=True) for f in _flavors(cloud)]}
        )

    @app.get("/v2.1/flavors/<flavor_id>")
    def show_flavor(flavor_id: str) -> Response:
        flavor = cloud.flavors.get(flavor_id)
        if flavor is None:
            raise NovaError(404, f"Flavor {flavor_id} could not be found.")
        return jsonify({"flavor": views.flavor(flavor, base(), g.version, detail=True)})

    @app.get("/v2.1/flavors/<flavor_id>/os-extra_specs")
    def flavor_extra_specs(flavor_id: str) -> Response:
        flavor = cloud.flavors.get(flavor_id)
        if flavor is None:
            raise NovaError(404, f"Flavor {flavor_id} could not be found.")
        return jsonify({"extra_specs": dict(flavor.extra_specs)})


def _hypervisors(cloud: Cloud, *, detail: bool) -> Response:
    """Nova's hypervisor list: pages (limit / marker, with a `next` link on a full page) from
    2.33, unknown query parameters refused from 2.53, where the marker is the hypervisor's UUID."""
    if g.version >= (2, 53):
        reject_unknown(HYPERVISOR_QUERY_KEYS)
    pattern = request.args.get("hypervisor_hostname_pattern")
    with cloud.lock:
        hosts: list[Host] = [h for h in cloud.hosts.values() if pattern is None or pattern in h.name]
        paged = g.version >= (2, 33)
        limit = page_limit() if paged else None
        if paged and "marker" in request.args:
            marker = request.args["marker"]
            ids = [h.hypervisor_id if g.version >= (2, 53) else str(h.number) for h in hosts]
            if marker not in ids:
                raise NovaError(400, f"marker [{marker}] not found")
            hosts = hosts[ids.index(marker) + 1 :]
        page = hosts[:limit]
        now = cloud.clock()
        items = [views.hypervisor(cloud, h, now, g.version, detail=detail) for h in page]
    body: Json = {"hypervisors": items}
    if paged and page and len(page) == limit:
        query = [(k, v) for k, v in request.args.items(multi=True) if k != "marker"]
        path = "os-hypervisors/detail" if detail else "os-hypervisors"
        href = f"{base()}/v2.1/{path}?{urlencode([*query, ('marker', str(items[-1]['id']))])}"
        body["hypervisors_links"] = [{"rel": "next", "href": href}]
    return jsonify(body)


def _flavors(cloud: Cloud) -> list[Any]:
    with cloud.lock:
        return sorted(cloud.flavors.values(), key=lambda f: f.id)
