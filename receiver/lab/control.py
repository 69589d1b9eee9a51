"""The lab's control API under `/lab` (same server and token as the compute API).

    GET  /lab/status                      hosts (power, condition, service state), server counts, faults,
                                          and per host the IPMI requests its BMC received (bmc_requests)
    POST /lab/hosts/<host>/power          {"on": false}  power a host off ("kill") or on
    POST /lab/hosts/<host>/hang           {"hung": true} (the default) freeze a powered-on host: no
                                          heartbeat, no work, its BMC still says ON; {"hung": false}
                                          lets it carry on. Powering it off ends the hang.
    POST /lab/hosts/<host>/compute        {"running": false} kill nova-compute on a live host (guests
                                          keep running); {"running": true} starts it (init_host runs)
    POST /lab/servers                     {"name", "host", "flavor"?, "stopped"?, "metadata"?,
                                          "boot_from_volume"?, "volumes"?: N, "project_id"?} -> 201
    GET  /lab/servers/<id>                Nova's record (vm_state, task_state, power_state) beside what the
                                          hypervisor reports (hypervisor_power_state)
    POST /lab/servers/<id>/crash          {"power_state"?: 4 (default) | 6, "sync_after"?: S | null} the
                                          guest stops on its own: the hypervisor says 4 SHUTDOWN or 6
                                          CRASHED while Nova's record stays active and RUNNING, until
                                          Nova's power-state sync runs S s later (never if null) and
                                          stops the instance (powering-off, then stopped)
    POST /lab/faults/evacuate             {"server_id"?: ID, "target"?: HOST, "fail": true} rebuilds of
                                          the server / onto the host / of the server onto the host fail
    POST /lab/faults/api-delay            {"delay_ms": N}
    POST /lab/faults/forbid               {"path": "/os-hypervisors", "forbid": true} Nova's policy refuses
                                          every request under that compute API path: 403
    POST /lab/faults/bmc                  {"host": H, "fault": "none|mute|refuse|stuck_on"}
    POST /lab/faults/clear                every fault back to none
    POST /lab/settings                    {"evacuate_delay"?, "action_delay"?, "service_down_time"?}
Errors: {"error": {"code": N, "message": "..."}}.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from flask import Blueprint, Response, jsonify, request

from receiver.lab import model
from receiver.lab.cloud import Cloud
from receiver.lab.model import Host, Instance, NovaError
from receiver.lab.nova_api import LabContext

BMC_FAULTS = ("none", "mute", "refuse", "stuck_on")
CRASH_STATES = (model.SHUTDOWN, model.CRASHED)
SETTINGS = ("evacuate_delay", "action_delay", "service_down_time")


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def control_blueprint(context: LabContext) -> Blueprint:
    blueprint = Blueprint("lab_control", __name__, url_prefix="/lab")
    cloud = context.cloud

    @blueprint.errorhandler(ControlError)
    def _control_error(error: ControlError) -> tuple[Response, int]:
        return jsonify({"error": {"code": error.status, "message": error.message}}), error.status

    @blueprint.errorhandler(NovaError)
    def _nova_error(error: NovaError) -> tuple[Response, int]:
        return jsonify({"error": {"code": error.status, "message": error.message}}), error.status

    @blueprint.get("/status")
    def status() -> Response:
        return jsonify(lab_status(context))

    @blueprint.post("/hosts/<host>/power")
    def power(host: str) -> Response:
        on = _field(_body(), "on", bool)
        cloud.set_power(host, on)
        return jsonify({"host": host, "on": cloud.is_on(host)})

    @blueprint.post("/hosts/<host>/hang")
    def hang(host: str) -> Response:
        body = _body(optional=True)
        hung = _field(body, "hung", bool) if "hung" in body else True
        cloud.hang(host, hung)
        return jsonify(host_state(context, host))

    @blueprint.post("/hosts/<host>/compute")
    def compute(host: str) -> Response:
        cloud.set_compute_running(host, _field(_body(), "running", bool))
        return jsonify(host_state(context, host))

    @blueprint.post("/servers")
    def add_server() -> tuple[Response, int]:
        server = _add_server(cloud, _body())
        return jsonify({"server": {"id": server.id, "name": server.name, "host": server.host}}), 201

    @blueprint.get("/servers/<server_id>")
    def server(server_id: str) -> Response:
        return jsonify(server_state(context, server_id))

    @blueprint.post("/servers/<server_id>/crash")
    def crash(server_id: str) -> Response:
        power_state, sync_after = _crash_request(_body(optional=True))
        cloud.crash(server_id, power_state, sync_after)
        return jsonify(server_state(context, server_id))

    @blueprint.post("/settings")
    def settings() -> Response:
        change_settings(context, _body())
        return jsonify(lab_status(context)["settings"])

    _add_fault_routes(blueprint, context)
    return blueprint


def _add_fault_routes(blueprint: Blueprint, context: LabContext) -> None:
    cloud = context.cloud

    @blueprint.post("/faults/evacuate")
    def evacuate_fault() -> Response:
        body = _body()
        server_id = _field(body, "server_id", str) if body.get("server_id") is not None else None
        target = _field(body, "target", str) if body.get("target") is not None else None
        if server_id is None and target is None:
            raise ControlError(400, "give server_id, target, or both")
        cloud.fail_evacuation(server_id, bool(body.get("fail", True)), target=target)
        return jsonify(_evacuation_faults(cloud))

    @blueprint.post("/faults/api-delay")
    def api_delay() -> Response:
        delay = _field(_body(), "delay_ms", int)
        if delay < 0:
            raise ControlError(400, "delay_ms must be >= 0")
        cloud.set_api_delay(delay)
        return jsonify({"api_delay_ms": delay})

    @blueprint.post("/faults/forbid")
    def forbid_fault() -> Response:
        body = _body()
        path = _field(body, "path", str)
        if not path.startswith("/") or path.startswith("/lab"):
            raise ControlError(400, "path must be a compute API path such as /os-hypervisors")
        with cloud.lock:
            forbidden = cloud.faults.forbidden
            (forbidden.add if bool(body.get("forbid", True)) else forbidden.discard)(path)
            return jsonify({"forbidden": sorted(cloud.faults.forbidden)})

    @blueprint.post("/faults/bmc")
    def bmc_fault() -> Response:
        body = _body()
        host, fault = _field(body, "host", str), _field(body, "fault", str)
        if fault not in BMC_FAULTS:
            raise ControlError(400, f"fault must be one of {', '.join(BMC_FAULTS)}")
        set_bmc_fault(context, host, fault)
        return jsonify({"host": host, "fault": fault})

    @blueprint.post("/faults/clear")
    def clear_faults() -> Response:
        with cloud.lock:
            cloud.faults.evacuate_fails.clear()
            cloud.faults.evacuate_fails_on.clear()
            cloud.faults.forbidden.clear()
        cloud.set_api_delay(0)
        for host in list(context.bmc_faults):
            set_bmc_fault(context, host, "none")
        return jsonify(lab_status(context)["faults"])


def set_bmc_fault(context: LabContext, host: str, fault: str) -> None:
    if context.bmc is None:
        raise ControlError(409, "this lab runs without BMC simulators")
    if host not in context.cloud.hosts:
        raise ControlError(404, f"host {host} not found")
    from receiver.lab.bmc import BmcFault

    try:
        context.bmc.set_fault(host, BmcFault(fault))
    except KeyError as error:
        raise ControlError(404, f"host {host} has no BMC simulator") from error
    if fault == "none":
        context.bmc_faults.pop(host, None)
    else:
        context.bmc_faults[host] = fault


def change_settings(context: LabContext, body: dict[str, Any]) -> None:
    """All of the body's settings, or (400) none of them."""
    changes: dict[str, float] = {}
    for key in SETTINGS:
        if key in body:
            value = body[key]
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ControlError(400, f"{key} must be a number >= 0")
            changes[key] = float(value)
    settings = context.cloud.settings
    with context.cloud.lock:
        # Checked before anything changes: a host that heartbeats must always look up.
        if changes.get("service_down_time", settings.service_down_time) <= settings.report_interval:
            raise ControlError(400, "service_down_time must be greater than report_interval")
        for key, value in changes.items():
            setattr(settings, key, value)


def host_state(context: LabContext, name: str) -> dict[str, Any]:
    cloud = context.cloud
    with cloud.lock:
        host = cloud.hosts.get(name)
        if host is None:
            raise ControlError(404, f"host {name} not found")
        return {"host": name} | _host_summary(context, host, cloud.clock())


def server_state(context: LabContext, server_id: str) -> dict[str, Any]:
    """Nova's view of a server beside the hypervisor's."""
    with context.cloud.lock:
        server = context.cloud.server(server_id)
        return {
            "server": server.id,
            "host": server.host,
            "vm_state": server.vm_state,
            "task_state": server.task_state,
            "power_state": server.power_state,
            "hypervisor_power_state": server.hypervisor_power_state,
        }


def _host_summary(context: LabContext, host: Host, now: float) -> dict[str, Any]:
    cloud = context.cloud
    return {
        "power": "on" if host.powered_on else "off",
        "condition": str(host.condition),
        "service": "up" if cloud.is_up(host, now) else "down",
        "forced_down": host.forced_down,
        "disabled": host.disabled,
        "servers": len(cloud.servers_by_host[host.name]),
    }


def lab_status(context: LabContext) -> dict[str, Any]:
    cloud = context.cloud
    bmc_requests = {} if context.bmc is None else context.bmc.request_counts()
    with cloud.lock:
        now = cloud.clock()
        return {
            "hosts": {name: _host_summary(context, host, now) for name, host in cloud.hosts.items()},
            "servers": dict(Counter(s.status for s in cloud.servers.values())),
            "migrations": dict(Counter(m.status for m in cloud.migrations)),
            "pending_operations": cloud.pending_operations(),
            "waiting_operations": cloud.waiting_operations(),
            "faults": {
                **_evacuation_faults(cloud),
                "api_delay_ms": cloud.faults.api_delay_ms,
                "forbidden": sorted(cloud.faults.forbidden),
                "bmc": dict(context.bmc_faults),
            },
            "settings": {key: getattr(cloud.settings, key) for key in (*SETTINGS, "report_interval")},
            "bmc_requests": bmc_requests,
        }


def _add_server(cloud: Cloud, body: dict[str, Any]) -> Instance:
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ControlError(400, "metadata must be an object")
    volumes = body.get("volumes", 0)
    if not isinstance(volumes, int) or isinstance(volumes, bool) or volumes < 0:
        raise ControlError(400, "volumes must be an integer >= 0")
    return cloud.add_server(
        _field(body, "name", str),
        _field(body, "host", str),
        str(body.get("flavor") or next(iter(cloud.flavors))),
        stopped=bool(body.get("stopped", False)),
        metadata={str(k): str(v) for k, v in metadata.items()},
        boot_from_volume=bool(body.get("boot_from_volume", False)),
        volumes=volumes,
        project_id=str(body.get("project_id") or "demo"),
    )


def _evacuation_faults(cloud: Cloud) -> dict[str, Any]:
    with cloud.lock:
        pairs = sorted(cloud.faults.evacuate_fails_on, key=lambda pair: (pair[0], pair[1] or ""))
        return {
            "evacuate_fails": sorted(cloud.faults.evacuate_fails),
            "evacuate_fails_on": [{"target": target, "server_id": server} for target, server in pairs],
        }


def _crash_request(body: dict[str, Any]) -> tuple[int, float | None]:
    power_state = body.get("power_state", model.SHUTDOWN)
    if not isinstance(power_state, int) or isinstance(power_state, bool) or power_state not in CRASH_STATES:
        raise ControlError(400, "power_state must be 4 (SHUTDOWN) or 6 (CRASHED)")
    sync_after = body.get("sync_after")
    if sync_after is None:
        return power_state, None
    if not isinstance(sync_after, int | float) or isinstance(sync_after, bool) or sync_after < 0:
        raise ControlError(400, "sync_after must be a number >= 0 or null")
    return power_state, float(sync_after)


def _body(optional: bool = False) -> dict[str, Any]:
    if optional and not request.get_data():
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ControlError(400, "the body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type[Any]) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ControlError(400, f"field '{name}' must be a {kind.__name__}")
    return value
