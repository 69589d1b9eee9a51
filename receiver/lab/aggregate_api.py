"""The lab's os-aggregates routes (rules and what was checked on real Nova: `receiver.lab.aggregates`)."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, g, jsonify

from receiver.lab.cloud import Cloud
from receiver.lab.model import AggregateRecord, NovaError
from receiver.lab.nova_api import json_body
from receiver.lab.views import Json, Version, iso_micro


def aggregate_view(record: AggregateRecord, version: Version, *, created: bool = False) -> Json:
    """Nova's order of fields; a create answers without hosts and metadata, with the creation
    time's microseconds (later reads show the database's whole seconds)."""
    body: Json = {"id": record.id}
    if version >= (2, 41):
        body["uuid"] = record.uuid
    body["name"] = record.name
    if not created:
        body |= {"hosts": list(record.hosts), "metadata": dict(record.metadata)}
    body |= {
        "created_at": iso_micro(record.created_at if created else record.created_at // 1),
        "updated_at": None if record.updated_at is None else iso_micro(record.updated_at),
        "deleted_at": None,
        "deleted": False,
        "availability_zone": record.availability_zone,
    }
    return body


def add_aggregate_routes(app: Flask, cloud: Cloud) -> None:
    @app.get("/v2.1/os-aggregates")
    def list_aggregates() -> Response:
        with cloud.lock:
            items = [aggregate_view(a, g.version) for a in cloud.aggregates.values()]
        return jsonify({"aggregates": items})

    @app.post("/v2.1/os-aggregates")
    def create_aggregate() -> Response:
        spec = _object(json_body(), "aggregate", {"name", "availability_zone"})
        name, zone = spec.get("name"), spec.get("availability_zone")
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 255:
            raise NovaError(400, f"Invalid input for field/attribute name. Value: {name}.")
        if zone is not None and (not isinstance(zone, str) or not 1 <= len(zone) <= 255):
            raise NovaError(400, f"Invalid input for field/attribute availability_zone. Value: {zone}.")
        record = cloud.create_aggregate(name, zone)
        return jsonify({"aggregate": aggregate_view(record, g.version, created=True)})

    @app.get("/v2.1/os-aggregates/<aggregate_id>")
    def show_aggregate(aggregate_id: str) -> Response:
        with cloud.lock:
            return jsonify({"aggregate": aggregate_view(cloud.aggregate(aggregate_id), g.version)})

    @app.delete("/v2.1/os-aggregates/<aggregate_id>")
    def delete_aggregate(aggregate_id: str) -> Response:
        cloud.delete_aggregate(aggregate_id)
        return Response(b"", content_type="application/json")

    @app.post("/v2.1/os-aggregates/<aggregate_id>/action")
    def aggregate_action(aggregate_id: str) -> Response:
        body = json_body()
        if len(body) != 1 or next(iter(body)) not in ("add_host", "remove_host"):
            raise NovaError(400, f"There is no such action: {', '.join(body) or 'none'}")
        action = next(iter(body))
        host = _object(body, action, {"host"}).get("host")
        if not isinstance(host, str) or not 1 <= len(host) <= 255:
            raise NovaError(400, f"Invalid input for field/attribute host. Value: {host}.")
        with cloud.lock:
            if action == "add_host":
                record = cloud.add_aggregate_host(aggregate_id, host)
            else:
                record = cloud.remove_aggregate_host(aggregate_id, host)
            return jsonify({"aggregate": aggregate_view(record, g.version)})


def _object(body: dict[str, Any], key: str, allowed: set[str]) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise NovaError(400, f"Invalid input for field/attribute {key}. Value: {value}.")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise NovaError(400, f"Additional properties are not allowed ('{unknown[0]}' was unexpected)")
    return value
