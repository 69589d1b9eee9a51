"""Where a host's Redfish service is: its BMC address from the inventory, read and checked.

Pure parsing, no I/O (the inventory validates addresses with it). A malformed address is never
repeated in an error or a record: it might carry credentials (safety rule 7).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from receiver.errors import ConfigError

IPMI_PORT = 623  # the inventory's default port; never a Redfish one (see parse_redfish_address)
SYSTEMS_PATH = "/redfish/v1/Systems"


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
