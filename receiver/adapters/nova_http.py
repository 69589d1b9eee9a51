"""One request to Nova's compute API, and what its failure means in our error tree.

Through openstacksdk's compute proxy (a keystoneauth Adapter: session, auth, endpoint) with an
explicit microversion; keystoneauth's and openstacksdk's exceptions, and Nova's error answers,
become ComputeUnavailable (retry helps), ComputeRejected (4xx) or NotFound, each with Nova's
request id when it gave one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as sdk_exc

from receiver.errors import ComputeError, ComputeRejected, ComputeUnavailable, NotFound

if TYPE_CHECKING:
    import requests

_MAX_MESSAGE = 400


def exchange(
    proxy: Callable[[], Any],
    method: str,
    url: str,
    *,
    what: str,
    microversion: str,
    json: dict[str, Any] | None = None,
) -> requests.Response:
    """Send one request on `proxy()`; Nova's answer when it succeeded, else the error it means."""
    kwargs: dict[str, Any] = {"microversion": microversion, "raise_exc": False}
    if json is not None:
        kwargs["json"] = json
    if method == "GET":
        kwargs["skip_cache"] = True  # openstacksdk's optional response cache: never stale state
    try:
        response = proxy().request(url, method, **kwargs)
    except (ksa_exc.ConnectionError, ksa_exc.DiscoveryFailure) as exc:
        raise ComputeUnavailable(f"Nova unreachable, could not {what}: {describe(exc)}") from exc
    except ksa_exc.HttpError as exc:  # raised by the auth plugin (e.g. Keystone), not by Nova
        raise_for_status(exc.http_status or 0, what, exc.request_id, describe(exc))
    except ksa_exc.ClientException as exc:
        raise ComputeError(f"could not {what}: {describe(exc)}") from exc
    except sdk_exc.SDKException as exc:  # proxy creation: service discovery, configuration
        raise ComputeUnavailable(f"Nova unusable, could not {what}: {describe(exc)}") from exc
    if response.status_code >= 400:
        raise_for_status(response.status_code, what, request_id(response), nova_message(response))
    answered: requests.Response = response
    return answered


def raise_for_status(status: int, what: str, request_id: str | None, message: str) -> NoReturn:
    text = f"Nova refused to {what}: HTTP {status} (request {request_id or 'unknown'}): {message}"
    if status == 404:
        raise NotFound(text)
    if status >= 500 or status in (408, 429):
        raise ComputeUnavailable(text, status=status, request_id=request_id)
    raise ComputeRejected(text, status=status, request_id=request_id)


def request_id(response: requests.Response) -> str | None:
    headers = response.headers
    value = headers.get("x-openstack-request-id") or headers.get("x-compute-request-id")
    return str(value) if value else None


def nova_message(response: requests.Response) -> str:
    """Nova's fault body is {"badRequest": {"code": 400, "message": "..."}}; anything else
    (a proxy's HTML page) is cut short rather than copied whole."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:_MAX_MESSAGE].strip() or response.reason or ""
    if isinstance(body, dict):
        for fault in body.values():
            if isinstance(fault, dict) and "message" in fault:
                return str(fault["message"])[:_MAX_MESSAGE]
    return str(body)[:_MAX_MESSAGE]


def describe(exc: BaseException) -> str:
    # Library messages name the URL and the socket error; tokens travel only in headers,
    # which keystoneauth never puts into exception text.
    return f"{type(exc).__name__}: {str(exc)[:_MAX_MESSAGE]}"
