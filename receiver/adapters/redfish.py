"""`PowerController` over Redfish (DMTF), with the standard library's HTTP client.

    GET  /redfish/v1/Systems                          the only system, unless the address names one
    GET  /redfish/v1/Systems/<id>                     PowerState, and the Reset action's target
    POST <Actions/#ComputerSystem.Reset target>       {"ResetType": "ForceOff" | "On"}

Not pyghmi's Redfish client (measured against sushy-emulator, see tests/integration/redfish):
its requests use a fixed 60 s socket timeout that no caller can change, so a BMC that accepts
connections but never answers holds a call for minutes; its constructor alone makes several
requests (service root, session login, OEM probing: ~1.3 s against the emulator); it speaks
HTTPS only, trusting either the system CA store or a pinning callback; and its errors repeat
response bodies verbatim. Not a child process per call, as for IPMI: nothing here is
process-wide. How a call keeps its deadline, its TLS and its secrets: redfish_http. How a BMC
address reads: redfish_address (its names are importable from here too).

Safety: only "Off" reads as OFF (PoweringOff and anything else is UNKNOWN). `power_off` reads
the state first and sends nothing when the BMC already says Off: some BMCs answer ForceOff on a
system that is off with an error (iDRAC: 409), and a dead host, the usual case, must not turn
into a refused fence. The caller reads the state back either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from receiver.adapters.redfish_address import (
    SYSTEMS_PATH,
    RedfishEndpoint,
    describe_address,
    parse_redfish_address,
)
from receiver.adapters.redfish_http import WIRE_PROBLEMS, RedfishCall, tls_context
from receiver.domain.model import BmcTarget, PowerState
from receiver.errors import BmcRefused, ConfigError, FenceError

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "RedfishEndpoint",
    "RedfishPower",
    "describe_address",
    "parse_redfish_address",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_TIMEOUT_S = 10.0
_RESET_ACTION = "#ComputerSystem.Reset"


class RedfishPower:
    """Hard power control of hosts through their Redfish services; implements `PowerController`.

    Each call returns or raises within `timeout_s`: `BmcUnreachable` when the BMC did not
    answer in time (or answered 5xx: retryable), `BmcRefused` when it refused the login or
    the command, or its answer or certificate cannot be trusted.

    TLS is verified against `ca_file` (a site's BMC CA) or the system store; a target whose
    `insecure` attribute is True (proposed for BmcTarget) skips verification.
    """

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S, ca_file: str | None = None) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._timeout_s = timeout_s
        self._ca_file = ca_file

    def power_off(self, target: BmcTarget) -> None:
        """Ask for a hard power-off (ForceOff); returns once the BMC accepted it. Read the state back."""
        self._switch(target, "power-off", "ForceOff", PowerState.OFF)

    def power_on(self, target: BmcTarget) -> None:
        self._switch(target, "power-on", "On", PowerState.ON)

    def power_state(self, target: BmcTarget) -> PowerState:
        call = self._start(target, "power-state read")
        return _run(call, lambda: _power_state(_system(call)[1]))

    def _switch(self, target: BmcTarget, action: str, reset_type: str, wanted: PowerState) -> None:
        call = self._start(target, action)

        def switch() -> None:
            path, system = _system(call)
            if _power_state(system) is wanted:
                log.info("redfish %s: already %s, %s not sent", call.where, wanted.value, reset_type)
                return
            _reset(call, path, system, reset_type)

        _run(call, switch)

    def _start(self, target: BmcTarget, action: str) -> RedfishCall:
        try:
            endpoint = parse_redfish_address(target.address, target.port)
        except ConfigError as error:
            refused = BmcRefused(f"Redfish BMC of host {target.host}: {action} not sent: {error.message}")
            log.warning("redfish %s", refused.message)
            raise refused from None
        tls = None
        if endpoint.scheme == "https":
            tls = tls_context(self._ca_file, insecure=target.insecure)
        return RedfishCall(target, endpoint, action, self._timeout_s, tls)


def _run(call: RedfishCall, work: Callable[[], T]) -> T:
    """`work` within the call, its failures logged and, from the wire, translated."""
    try:
        result = work()
    except FenceError as refusal:
        log.warning("redfish %s", refusal.message)
        raise
    except WIRE_PROBLEMS as problem:
        failure = call.translate(problem)
        log.warning("redfish %s", failure.message)
        raise failure from None
    elapsed = time.monotonic() - call.started
    log.debug("redfish %s: %s done in %.3f s", call.where, call.action, elapsed)
    return result


def _system(call: RedfishCall) -> tuple[str, dict[str, Any]]:
    """The system's path and resource: the one the address names, or the only one there is."""
    path = call.endpoint.system_path
    if path is None:
        members = call.get_json(SYSTEMS_PATH).get("Members")
        paths = (
            [m.get("@odata.id") for m in members if isinstance(m, dict)] if isinstance(members, list) else []
        )
        if len(paths) != 1 or not isinstance(paths[0], str):
            raise call.refused(
                f"{len(paths)} systems under {SYSTEMS_PATH}; name one in the address ({SYSTEMS_PATH}/<id>)"
            )
        path = call.path_on_this_bmc(paths[0])
    return path, call.get_json(path)


def _reset(call: RedfishCall, system_path: str, system: dict[str, Any], reset_type: str) -> None:
    action = _object(_object(system.get("Actions")).get(_RESET_ACTION))
    allowed = action.get("ResetType@Redfish.AllowableValues")
    if isinstance(allowed, list) and reset_type not in allowed:
        raise call.refused(f"the BMC does not offer ResetType {reset_type}")
    target = action.get("target")
    if isinstance(target, str):
        path = call.path_on_this_bmc(target)
    else:
        path = f"{system_path}/Actions/ComputerSystem.Reset"
    call.check(call.exchange("POST", path, {"ResetType": reset_type}))


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _power_state(system: dict[str, Any]) -> PowerState:
    state = system.get("PowerState")
    if state == "On":
        return PowerState.ON
    if state == "Off":
        return PowerState.OFF
    return PowerState.UNKNOWN
