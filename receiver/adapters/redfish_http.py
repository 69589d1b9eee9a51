"""One Redfish call on the wire: its deadline, TLS context, credentials and error translation.

A `RedfishCall` is made per `PowerController` call (redfish.RedfishPower). It opens its own
connection per request and gets its own TLS context, so threads share nothing and a forked RQ
work horse inherits nothing, and the deadline is ours:

Every request of a call (discovery, read, reset) shares one deadline of `timeout_s`. Each
socket gets the time left as its timeout, and a timer shuts the socket down when the deadline
passes, so a BMC that trickles bytes cannot hold a call past it either.

Secrets: the password only ever goes into the Authorization header (HTTP basic auth, no
session left behind on the BMC). Errors quote status codes and Redfish MessageIds, a fixed
vocabulary, never a body's free text.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import http.client
import json
import re
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from receiver.adapters.redfish_address import RedfishEndpoint
from receiver.domain.model import BmcTarget
from receiver.errors import BmcRefused, BmcUnreachable, FenceError

MAX_ANSWER_BYTES = 1 << 20
MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MESSAGE_ID = re.compile(r"[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+){1,5}")


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    location: str | None


class _OutOfTime(Exception):
    """The call's deadline passed before the BMC answered."""


# What can go wrong on the wire; `RedfishCall.translate` turns each into a FenceError.
WIRE_PROBLEMS: tuple[type[Exception], ...] = (_OutOfTime, OSError, http.client.HTTPException)


class RedfishCall:
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


def tls_context(ca_file: str | None, *, insecure: bool) -> ssl.SSLContext:
    """Verify the certificate and the name against `ca_file` (a site's BMC CA) or the system
    store; a context per call, so no TLS state is shared between threads or across a fork."""
    if insecure:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=ca_file)


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
