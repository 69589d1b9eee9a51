"""`GET /servers/{id}/os-instance-actions[/{request_id}]` with Nova 34's shapes per microversion
(nova/api/openstack/compute/instance_actions.py); the records are `receiver.lab.action_log`'s.

Seen on the real test bed: the list is newest first; `limit`, `marker` (a request id) and
`changes-since` exist from 2.58 (`changes-before` from 2.66) with a `links` "next" entry when a
page is full, and earlier microversions ignore them; an unknown marker is a 400 whose message
says "Marker None" (Nova's own slip). Events show to admins (the lab's token), with `host` and
`hostId` from 2.62 and `details` from 2.84. Times are whole seconds, as in Nova's database.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import Flask, Response, g, jsonify, request

from receiver.lab.action_log import ActionEvent, InstanceAction
from receiver.lab.cloud import Cloud
from receiver.lab.model import NovaError
from receiver.lab.views import Json, Version, iso_micro

MAX_LIMIT = 1000  # Nova's [api] max_limit
QUERY_KEYS_258 = {"limit", "marker", "changes-since"}
QUERY_KEYS_266 = QUERY_KEYS_258 | {"changes-before"}


def add_instance_action_routes(app: Flask, cloud: Cloud) -> None:
    @app.get("/v2.1/servers/<server_id>/os-instance-actions")
    def list_instance_actions(server_id: str) -> Response:
        version: Version = g.version
        with cloud.lock:
            actions = _actions_of(cloud, server_id, version)
        if version < (2, 58):
            return jsonify({"instanceActions": [action_view(a, version) for a in actions]})
        _reject_unknown(QUERY_KEYS_266 if version >= (2, 66) else QUERY_KEYS_258)
        limit = _limit()
        changed = _changed(actions)
        marker = request.args.get("marker")
        if marker is not None:
            # Nova looks the marker up among all the server's actions, then pages on from it
            # through the filtered ones (db actions_get, paginate_query).
            order = {a.id: position for position, a in enumerate(actions)}
            found = next((a for a in actions if a.request_id == marker), None)
            if found is None:
                raise NovaError(400, "Marker None could not be found.")
            changed = [a for a in changed if order[a.id] > order[found.id]]
        page = changed[:limit]
        body: Json = {"instanceActions": [action_view(a, version) for a in page]}
        if page and len(page) == limit:
            # Nova's next link: the request's parameters sorted by name, then the new marker.
            query = sorted((k, v) for k, v in request.args.items() if k != "marker")
            query.append(("marker", page[-1].request_id))
            href = f"{request.host_url.rstrip('/')}/v2.1/servers/{server_id}/os-instance-actions"
            body["links"] = [{"rel": "next", "href": f"{href}?{urlencode(query)}"}]
        return jsonify(body)

    @app.get("/v2.1/servers/<server_id>/os-instance-actions/<request_id>")
    def show_instance_action(server_id: str, request_id: str) -> Response:
        version: Version = g.version
        with cloud.lock:
            _actions_of(cloud, server_id, version)
            action = cloud.actions.find(server_id, request_id)
            if action is None:
                raise NovaError(404, f"Action {request_id} not found")
            server = cloud.servers.get(server_id)
            owner = action.project_id or (server.project_id if server else "")
            body = action_view(action, version)
            body["events"] = [event_view(e, owner, version) for e in action.events]
        return jsonify({"instanceAction": body})


def action_view(action: InstanceAction, version: Version) -> Json:
    body: Json = {
        "action": action.action,
        "instance_uuid": action.instance_uuid,
        "request_id": action.request_id,
        "user_id": action.user_id,
        "project_id": action.project_id,
        "start_time": _time(action.start_time),
        "message": action.message,
    }
    if version >= (2, 58):
        body["updated_at"] = _time(action.updated_at)
    return body


def event_view(event: ActionEvent, project_id: str, version: Version) -> Json:
    """An event as an admin sees it. Nova hashes the host with the action's project, or the
    server's when the action has none (its periodic tasks')."""
    body: Json = {
        "event": event.event,
        "start_time": _time(event.start_time),
        "finish_time": None if event.finish_time is None else _time(event.finish_time),
        "result": event.result,
        "traceback": event.traceback,
    }
    if version >= (2, 62):
        body["host"] = event.host
        body["hostId"] = hashlib.sha224(f"{project_id}{event.host}".encode()).hexdigest()
    if version >= (2, 84):
        body["details"] = None
    return body


def _actions_of(cloud: Cloud, server_id: str, version: Version) -> list[InstanceAction]:
    """The server's actions; a deleted server's only from 2.21 (read_deleted), else a 404."""
    if server_id not in cloud.servers and (version < (2, 21) or not cloud.actions.known(server_id)):
        raise NovaError(404, f"Instance {server_id} could not be found.")
    return cloud.actions.of(server_id)


def _changed(actions: list[InstanceAction]) -> list[InstanceAction]:
    since, before = _moment("changes-since"), _moment("changes-before")
    if since is not None and before is not None and before < since:
        raise NovaError(400, "The value of changes-since must be less than or equal to changes-before.")
    return [
        a
        for a in actions
        if (since is None or int(a.updated_at) >= since) and (before is None or int(a.updated_at) <= before)
    ]


def _moment(key: str) -> float | None:
    raw = request.args.get(key)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise NovaError(
            400, f"Invalid input for query parameters {key}. Value: {raw}. '{raw}' is not a 'date-time'"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _limit() -> int:
    raw = request.args.get("limit")
    if raw is None:
        return MAX_LIMIT
    if not raw.isdigit():
        raise NovaError(
            400, f"Invalid input for query parameters limit. Value: {raw}. '{raw}' does not match '^[0-9]*$'"
        )
    return min(int(raw), MAX_LIMIT)


def _reject_unknown(allowed: set[str]) -> None:
    unknown = [key for key in request.args if key not in allowed]
    if unknown:
        raise NovaError(400, f"Additional properties are not allowed ('{unknown[0]}' was unexpected)")


def _time(moment: float) -> str:
    return iso_micro(moment // 1)  # Nova's database keeps whole seconds
