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
process-wide. Each call opens its own connections and builds its own TLS context, so threads
share nothing and a forked RQ work horse inherits nothing, and the deadline is ours:

Every call (discovery, read, reset) shares one deadline of `timeout_s`. Each socket gets the
time left as its timeout, and a timer shuts the socket down when the deadline passes, so a BMC
that trickles bytes cannot hold a call past it either.

Safety: only "Off" reads as OFF (PoweringOff and anything else is UNKNOWN). `power_off` reads
the state first and sends nothing when the BMC already says Off: some BMCs answer ForceOff on a
system that is off with an error (iDRAC: 409), and a dead host, the usual case, must not turn
into a refused fence. The caller reads the state back either way.

Secrets: the password only ever goes into the Authorization header (HTTP basic auth, no
session left behind on the BMC). Errors quote status codes and Redfish MessageIds, a fixed
vocabulary, never a body's free text, and never the address when it is malformed (it might
carry credentials).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import http.client
import json
import logging
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from receiver.domain.model import BmcTarget, PowerState
from receiver.errors import BmcRefused, BmcUnreachable, ConfigError, FenceError

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_TIMEOUT_S = 10.0
IPMI_PORT = 623  # the inventory's default port; never a Redfish one (see parse_redfish_address)
SYSTEMS_PATH = "/redfish/v1/Systems"
MAX_ANSWER_BYTES = 1 << 20
MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MESSAGE_ID = re.compile(r"[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+){1,5}")
_RESET_ACTION = "#ComputerSystem.Reset"


@dataclass(frozen=True)
class RedfishEndpoint:
    """Where a host's Redfish service is, parsed from its BMC address."""

    scheme: str  # "https" | "http"
    host: str
    port: int
    system_path: str | None  # /redfish/v1/Systems/<id>; None: the service's only system

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_redfish_address(address: str, port: int = IPMI_PORT) -> RedfishEndpoint:
    """Read a Redfish BMC address. Accepted forms::

        10.0.0.11 | bmc-01.example | [fd00::11]           https, port `port`
        https://10.0.0.11[:8443][/redfish/v1/Systems/<id>]
        http://10.0.0.11[:8000][/redfish/v1/Systems/<id>]  plain HTTP only when written out

    The URL's port wins; otherwise `port`, unless it is 623 (the inventory's default, IPMI's
    port), which means the scheme's default (443 or 80). ConfigError names the problem but
    never repeats the address.
    """
    text = address.strip()
    if not text:
        raise ConfigError("bmc.address: empty")
    if "://" not in text:
        text = f"https://{text}"
    try:
        parts = urllib.parse.urlsplit(text)
        url_port = parts.port
    except ValueError:
        raise ConfigError("bmc.address: not a valid Redfish address or URL") from None
    if "@" in parts.netloc:
        raise ConfigError("bmc.address: must not carry credentials (use bmc.username and bmc.password)")
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ConfigError(f"bmc.address: scheme {scheme!r} is neither https nor http")
    if not parts.hostname:
        raise ConfigError("bmc.address: no host name")
    if parts.query or parts.fragment:
        raise ConfigError("bmc.address: a query or fragment has no meaning here")
    path = parts.path.rstrip("/")
    system_path: str | None = None
    if path not in ("", "/redfish/v1", SYSTEMS_PATH):
        system_id = path.removeprefix(SYSTEMS_PATH + "/")
        if system_id == path or not system_id or "/" in system_id:
            raise ConfigError(f"bmc.address: the path must be {SYSTEMS_PATH}/<system id>")
        system_path = path
    if url_port is not None:
        chosen = url_port
    elif port != IPMI_PORT:
        chosen = port
    else:
        chosen = 443 if scheme == "https" else 80
    return RedfishEndpoint(scheme, parts.hostname, chosen, system_path)


def describe_address(address: str, port: int = IPMI_PORT) -> str:
    """The address as records and logs show it: origin and system, never a malformed address
    (which might carry credentials)."""
    try:
        endpoint = parse_redfish_address(address, port)
    except ConfigError:
        return "(invalid Redfish address)"
    return endpoint.origin + (endpoint.system_path or "")


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
        return call.run(lambda: _power_state(call.system()[1]))

    def _switch(self, target: BmcTarget, action: str, reset_type: str, wanted: PowerState) -> None:
        call = self._start(target, action)

        def switch() -> None:
            path, system = call.system()
            if _power_state(system) is wanted:
                log.info("redfish %s: already %s, %s not sent", call.where, wanted.value, reset_type)
                return
            call.reset(path, system, reset_type)

        call.run(switch)

    def _start(self, target: BmcTarget, action: str) -> _Call:
        try:
            endpoint = parse_redfish_address(target.address, target.port)
        except ConfigError as error:
            refused = BmcRefused(f"Redfish BMC of host {target.host}: {action} not sent: {error.message}")
            log.warning("redfish %s", refused.message)
            raise refused from None
        tls = None
        if endpoint.scheme == "https":
            tls = _tls_context(self._ca_file, insecure=target.insecure)
        return _Call(target, endpoint, action, self._timeout_s, tls)


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    location: str | None


class _OutOfTime(Exception):
    """The call's deadline passed before the BMC answered."""


class _Call:
    """One PowerController call: its deadline, TLS context, credentials and error translation."""

    def __init__(
        self,
        target: BmcTarget,
        endpoint: RedfishEndpoint,
        action: str,
        timeout_s: float,
        tls: ssl.SSLContext | None,
    ) -> None:
        self.where = f"Redfish BMC of host {target.host} at {endpoint.origin}"
        self.endpoint = endpoint
        self.action = action
        self.timeout_s = timeout_s
        self.started = time.monotonic()
        self.deadline = self.started + timeout_s
        self.tls = tls
        self._password = target.password.reveal()
        login = f"{target.username}:{self._password}".encode()
        self._headers = {
            "Accept": "application/json",
            "OData-Version": "4.0",
            "Authorization": "Basic " + base64.b64encode(login).decode("ascii"),
            "Connection": "close",
        }

    def run(self, work: Callable[[], T]) -> T:
        try:
            result = work()
        except FenceError as refusal:
            log.warning("redfish %s", refusal.message)
            raise
        except (_OutOfTime, OSError, http.client.HTTPException) as problem:
            failure = self.translate(problem)
            log.warning("redfish %s", failure.message)
            raise failure from None
        elapsed = time.monotonic() - self.started
        log.debug("redfish %s: %s done in %.3f s", self.where, self.action, elapsed)
        return result

    def translate(self, problem: Exception) -> FenceError:
        """What went wrong on the wire, in our vocabulary (OpenSSL's and errno's fixed texts only)."""
        no_answer = f"{self.where}: no answer to {self.action}"
        if isinstance(problem, _OutOfTime | TimeoutError):
            return BmcUnreachable(f"{no_answer} within {self.timeout_s:g} s")
        if isinstance(problem, ssl.SSLCertVerificationError):
            return BmcRefused(
                f"{self.where}: {self.action} not sent: TLS certificate not trusted "
                f"({problem.verify_message}); give its CA, or mark the target insecure"
            )
        if isinstance(problem, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return BmcUnreachable(f"{no_answer}: connection closed during TLS")
        if isinstance(problem, ssl.SSLError):
            return BmcRefused(f"{self.where}: {self.action}: TLS failed ({problem.reason or 'unknown'})")
        if isinstance(problem, OSError):
            return BmcUnreachable(f"{no_answer}: {_os_reason(problem)}")
        return BmcUnreachable(f"{no_answer}: broken answer ({type(problem).__name__})")

    def system(self) -> tuple[str, dict[str, Any]]:
        """The system's path and resource: the one the address names, or the only one there is."""
        path = self.endpoint.system_path
        if path is None:
            members = self.get_json(SYSTEMS_PATH).get("Members")
            paths = (
                [m.get("@odata.id") for m in members if isinstance(m, dict)]
                if isinstance(members, list)
                else []
            )
            if len(paths) != 1 or not isinstance(paths[0], str):
                raise self.refused(
                    f"{len(paths)} systems under {SYSTEMS_PATH}; name one in the address "
                    f"({SYSTEMS_PATH}/<id>)"
                )
            path = self.path_on_this_bmc(paths[0])
        return path, self.get_json(path)

    def reset(self, system_path: str, system: dict[str, Any], reset_type: str) -> None:
        action = _object(_object(system.get("Actions")).get(_RESET_ACTION))
        allowed = action.get("ResetType@Redfish.AllowableValues")
        if isinstance(allowed, list) and reset_type not in allowed:
            raise self.refused(f"the BMC does not offer ResetType {reset_type}")
        target = action.get("target")
        if isinstance(target, str):
            path = self.path_on_this_bmc(target)
        else:
            path = f"{system_path}/Actions/ComputerSystem.Reset"
        self.check(self.exchange("POST", path, {"ResetType": reset_type}))

    def get_json(self, path: str) -> dict[str, Any]:
        for _ in range(MAX_REDIRECTS + 1):
            answer = self.exchange("GET", path)
            if answer.status in _REDIRECTS and answer.location:
                path = self.path_on_this_bmc(answer.location)
                continue
            self.check(answer)
            try:
                resource = json.loads(answer.body)
            except ValueError:
                resource = None
            if not isinstance(resource, dict):
                raise self.refused(f"the answer to GET {path} is not a Redfish resource")
            return resource
        raise self.refused(f"more than {MAX_REDIRECTS} redirects")

    def check(self, answer: _Answer) -> None:
        status = answer.status
        if 200 <= status < 300:
            return
        ids = _message_ids(answer.body, self._password)
        detail = f"HTTP {status}" + (f", {ids}" if ids else "")
        if status in (401, 403):
            what = "login not accepted" if status == 401 else "not permitted for this user"
            raise self.refused(f"{what} ({detail})")
        if status in _REDIRECTS:
            raise self.refused(f"redirected ({detail}); give the address it redirects to")
        if status >= 500:
            raise BmcRefused(f"{self.where}: {self.action} failed on the BMC ({detail})", retryable=True)
        raise self.refused(f"{'not found' if status == 404 else 'rejected'} ({detail})")

    def refused(self, why: str) -> BmcRefused:
        return BmcRefused(f"{self.where}: {self.action} refused: {why}")

    def path_on_this_bmc(self, reference: str) -> str:
        """A path on this BMC, from a reference the BMC gave: credentials never go elsewhere."""
        parts = urllib.parse.urlsplit(reference)
        if parts.netloc:
            same = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)) == (
                self.endpoint.scheme,
                self.endpoint.host,
                self.endpoint.port,
            )
            if not same:
                raise self.refused("the BMC pointed to another address; give that address instead")
        if not parts.path.startswith("/redfish/"):
            raise self.refused("the BMC pointed outside /redfish/")
        return parts.path

    def exchange(self, method: str, path: str, payload: dict[str, str] | None = None) -> _Answer:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise _OutOfTime
        endpoint = self.endpoint
        connection: http.client.HTTPConnection
        if self.tls is not None:
            connection = http.client.HTTPSConnection(
                endpoint.host, endpoint.port, timeout=remaining, context=self.tls
            )
        else:
            connection = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=remaining)
        cutter = _Cutter(connection)
        timer = threading.Timer(remaining, cutter.cut)
        timer.daemon = True
        timer.start()
        headers = dict(self._headers)
        body = None
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read(MAX_ANSWER_BYTES + 1)
            if cutter.fired:
                # The shutdown can read as a clean end of the answer: what arrived is partial.
                raise _OutOfTime
            if len(data) > MAX_ANSWER_BYTES:
                raise self.refused(f"the answer to {method} {path} is larger than {MAX_ANSWER_BYTES} bytes")
            return _Answer(response.status, data, response.getheader("Location"))
        except (OSError, http.client.HTTPException):
            if cutter.fired:
                raise _OutOfTime from None
            raise
        finally:
            timer.cancel()
            connection.close()


class _Cutter:
    """Shuts a connection's socket down at the deadline: a read blocked on it returns at once."""

    def __init__(self, connection: http.client.HTTPConnection) -> None:
        self._connection = connection
        self.fired = False

    def cut(self) -> None:
        self.fired = True
        sock = self._connection.sock
        if sock is not None:
            # socket.socket's own shutdown: SSLSocket's would also drop its TLS state under the
            # reading thread's feet. An OSError means it is closed already: nothing to wake.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _tls_context(ca_file: str | None, *, insecure: bool) -> ssl.SSLContext:
    """Verify the certificate and the name against `ca_file` (a site's BMC CA) or the system
    store; a context per call, so no TLS state is shared between threads or across a fork."""
    if insecure:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=ca_file)


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _power_state(system: dict[str, Any]) -> PowerState:
    state = system.get("PowerState")
    if state == "On":
        return PowerState.ON
    if state == "Off":
        return PowerState.OFF
    return PowerState.UNKNOWN


def _message_ids(body: bytes, password: str) -> str:
    """Redfish MessageIds from an error body (e.g. Base.1.8.InsufficientPrivilege): a fixed
    vocabulary, safe to repeat. The free-text messages beside them are not."""
    try:
        error = json.loads(body).get("error", {})
        found = [error.get("code")] + [m.get("MessageId") for m in error.get("@Message.ExtendedInfo", [])]
    except (ValueError, AttributeError, TypeError):
        return ""
    ids = [
        i for i in found if isinstance(i, str) and _MESSAGE_ID.fullmatch(i) and (password or "\0") not in i
    ]
    return ", ".join(dict.fromkeys(ids))


def _os_reason(error: OSError) -> str:
    if isinstance(error, socket.gaierror):
        return "host name not resolved"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset"
    name = errno.errorcode.get(error.errno or 0)
    return f"network error ({name})" if name else f"network error ({type(error).__name__})"
