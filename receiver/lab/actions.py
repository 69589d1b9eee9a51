"""`POST /servers/{id}/action` (the server actions the lab supports) and `POST /servers`, with
Nova's validation, status codes and response bodies for each microversion."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Response, jsonify

from receiver.lab.action_log import Requester
from receiver.lab.cloud import Cloud
from receiver.lab.model import Instance, NovaError
from receiver.lab.views import Version

ActionResult = tuple[Response, int]

EVACUATE_KEYS_BY_VERSION: tuple[tuple[Version, set[str]], ...] = (
    ((2, 68), {"host", "adminPass"}),
    ((2, 29), {"host", "adminPass", "force"}),
    ((2, 14), {"host", "adminPass"}),
    ((2, 1), {"host", "adminPass", "onSharedStorage"}),
)


def run_action(
    cloud: Cloud, server_id: str, body: dict[str, Any], version: Version, requester: Requester
) -> ActionResult:
    if len(body) != 1:
        raise NovaError(400, "Malformed request body")
    ((name, argument),) = body.items()
    if name == "evacuate":
        return _evacuate(cloud, server_id, argument, version, requester)
    if name == "os-start":
        cloud.start_server(server_id, requester)
    elif name == "os-stop":
        cloud.stop_server(server_id, requester)
    elif name == "reboot":
        kind = argument.get("type") if isinstance(argument, dict) else None
        if kind not in ("HARD", "SOFT"):
            raise NovaError(400, f"Invalid input for field/attribute type. Value: {kind}.")
        cloud.reboot_server(server_id, hard=kind == "HARD", requester=requester)
    elif name == "lock":
        reason = _lock_reason(argument) if version >= (2, 73) else None
        cloud.lock_server(server_id, True, reason, requester)
    elif name == "unlock":
        cloud.lock_server(server_id, False, requester=requester)
    else:
        raise NovaError(400, f"There is no such action: {name}")
    return _empty(), 202


def _lock_reason(argument: Any) -> str | None:
    """Nova's lock_v273 schema: null or an object whose only key is a 1-255 character reason."""
    if argument is None:
        return None
    if not isinstance(argument, dict):
        raise _invalid("lock", argument, f"{argument!r} is not of type 'object', 'null'")
    unknown = sorted(set(argument) - {"locked_reason"})
    if unknown:
        raise _invalid(
            "lock", argument, f"Additional properties are not allowed ('{unknown[0]}' was unexpected)"
        )
    if "locked_reason" not in argument:
        return None
    reason = argument["locked_reason"]
    if not isinstance(reason, str):
        raise _invalid("locked_reason", reason, f"{reason!r} is not of type 'string'")
    if not reason:
        raise _invalid("locked_reason", reason, "'' should be non-empty")
    if len(reason) > 255:
        raise _invalid("locked_reason", reason, f"{reason!r} is too long")
    return reason


def _invalid(name: str, value: Any, why: str) -> NovaError:
    """Nova's message for a request that fails its JSON schema."""
    return NovaError(400, f"Invalid input for field/attribute {name}. Value: {value}. {why}")


def _evacuate(
    cloud: Cloud, server_id: str, argument: Any, version: Version, requester: Requester
) -> ActionResult:
    if argument is None:
        argument = {}
    if not isinstance(argument, dict):
        raise NovaError(400, "Invalid input for field/attribute evacuate.")
    allowed = next(keys for since, keys in EVACUATE_KEYS_BY_VERSION if version >= since)
    unknown = sorted(set(argument) - allowed)
    if unknown:
        raise NovaError(400, f"Additional properties are not allowed ('{unknown[0]}' was unexpected)")
    if version < (2, 14) and "onSharedStorage" not in argument:
        raise NovaError(400, "'onSharedStorage' is a required property")
    target = argument.get("host")
    if target is not None and not isinstance(target, str):
        raise NovaError(400, f"Invalid input for field/attribute host. Value: {target}.")
    cloud.evacuate(server_id, target, version, requester)
    if version < (2, 14):
        # Before 2.14 Nova answers with the new admin password (enable_instance_password defaults on).
        return jsonify({"adminPass": argument.get("adminPass") or secrets.token_urlsafe(9)}), 200
    return _empty(), 200


def _empty() -> Response:
    """Nova's bodiless answers still say application/json."""
    return Response(b"", content_type="application/json")


def boot(cloud: Cloud, spec: Any, version: Version, requester: Requester) -> Instance:
    """Nova's `POST /servers` for what the lab needs: name, flavorRef, metadata and a host,
    given as admin's `availability_zone: nova:HOST` or (>= 2.74) `host`."""
    if not isinstance(spec, dict):
        raise NovaError(400, "'server' is a required property")
    for required in ("name", "flavorRef"):
        if not isinstance(spec.get(required), str | int) or not str(spec.get(required)):
            raise NovaError(400, f"'{required}' is a required property")
    host = spec.get("host") if version >= (2, 74) else None
    zone = spec.get("availability_zone")
    if host is None and isinstance(zone, str) and ":" in zone:
        host = zone.split(":", 1)[1] or None
    if host is not None and host not in cloud.hosts:
        raise NovaError(400, f"Compute host {host} could not be found.")
    metadata = spec.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise NovaError(400, "Invalid input for field/attribute metadata.")
    return cloud.boot_server(
        str(spec["name"]),
        str(spec["flavorRef"]),
        host=host,
        metadata={str(k): str(v) for k, v in metadata.items()},
        project_id=str(requester.project_id),
        user_id=str(requester.user_id),
        requester=requester,
    )
