"""The `Compute` port over Nova's compute API, through openstacksdk's compute proxy.

Every call is a plain REST request on `conn.compute` (a keystoneauth Adapter carrying
openstacksdk's session, auth and endpoint) with an explicit microversion. We do not use
the SDK's resource layer because it (a) negotiates its own microversion per resource
(2.100 for server actions in openstacksdk 4.22, where Nova leaves evacuated servers
SHUTOFF), (b) filters `servers(host=...)` again on the client side and silently returns
nothing, and (c) makes extra GETs around actions. Here one operation is one request
(one per page for lists), which keeps HTTP counts and failure modes predictable.

Microversions: reads and service updates use the configured one (default 2.94, at
least 2.59 for service UUIDs and migration UUIDs). Evacuate is sent at
min(configured, 2.94) on purpose: up to 2.94 Nova restores the server's previous power
state on the new host (ACTIVE stays ACTIVE, SHUTOFF stays SHUTOFF); from 2.95 it leaves
every evacuated server stopped, which a recovery would then have to start. os-hypervisors
is read at min(configured, 2.87), the last microversion that reports resource figures.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as sdk_exc

from receiver.adapters import nova_records as records
from receiver.adapters.nova_http import exchange, request_id
from receiver.domain.capacity import HypervisorReport
from receiver.domain.model import Aggregate, ComputeService, Migration, Server, ServerAction
from receiver.errors import ComputeError, ComputeRejected, ComputeUnavailable, ConfigError, NotFound

DEFAULT_MICROVERSION = "2.94"
MIN_MICROVERSION = (2, 59)  # service UUIDs (2.53) and migration uuid/links (2.59)
# From 2.95 Nova leaves evacuated servers SHUTOFF; 2.94 is the last that keeps their state.
LAST_STATE_PRESERVING_EVACUATE = (2, 94)
# os-hypervisors reports vcpus, memory_mb, local_gb and their *_used up to 2.87; 2.88 removed them.
LAST_HYPERVISOR_FIGURES = (2, 87)
MAX_LOCK_REASON = 255  # Nova's schema for locked_reason (2.73+)
_POWER_ACTIONS = frozenset({"stop", "start", "reboot"})


def _parse_microversion(value: str) -> tuple[int, int]:
    major, _, minor = value.partition(".")
    try:
        version = (int(major), int(minor))
    except ValueError:
        raise ValueError(f"compute microversion {value!r} is not of the form 2.N") from None
    if version[0] != 2 or version < MIN_MICROVERSION:
        raise ValueError(f"compute microversion {value} is below the required 2.59")
    return version


def _format_microversion(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


class NovaCompute:
    """Nova, as the recoveries need it. Thread-safe; share one per worker process.

    `start` of a server that is already ACTIVE is refused by Nova (409) and surfaces as
    ComputeRejected(status=409); callers decide whether that is success for them.

    `evacuate` is not idempotent and Nova does not guard it: Nova 34 accepts a second evacuate
    while the first is still rebuilding (any task_state is allowed), the two rebuilds race and
    the server can end in ERROR. It refuses (400) only once the server runs on an up host.
    Before re-sending after a crash, look at `evacuations(source, server_id)`.
    """

    def __init__(
        self,
        connection: Any,
        *,
        microversion: str = DEFAULT_MICROVERSION,
        page_size: int | None = None,
    ) -> None:
        """`connection` is an `openstack.connection.Connection`; no request is made here.

        `page_size` sets `limit` on list calls; None lets Nova use its `max_limit` (1000).
        """
        version = _parse_microversion(microversion)
        self._connection = connection
        self._microversion = _format_microversion(version)
        self._evacuate_microversion = _format_microversion(min(version, LAST_STATE_PRESERVING_EVACUATE))
        self._hypervisor_microversion = _format_microversion(min(version, LAST_HYPERVISOR_FIGURES))
        self._page_size = page_size
        self._proxy: Any = None
        self._proxy_lock = threading.Lock()

    @classmethod
    def from_cloud(
        cls,
        cloud: str | None,
        *,
        compute_api_version: str = DEFAULT_MICROVERSION,
        timeout_s: float = 30,
    ) -> NovaCompute:
        """Build from clouds.yaml (`cloud`, or OS_CLOUD / the only cloud when None).

        Reads configuration files only; the first request (version discovery) happens on
        the first operation. `timeout_s` bounds every HTTP request (connect and read).
        """
        import openstack

        _parse_microversion(compute_api_version)
        try:
            connection = openstack.connect(
                cloud=cloud, compute_api_version=compute_api_version, api_timeout=timeout_s
            )
        except (sdk_exc.SDKException, ksa_exc.ClientException) as exc:
            # Say what is missing (no clouds.yaml, no auth_url) instead of a library traceback.
            raise ConfigError(f"cannot set up the Nova connection (nova.cloud={cloud!r}): {exc}") from None
        return cls(connection, microversion=compute_api_version)

    # ------------------------------------------------------------------ services

    def service(self, host: str) -> ComputeService:
        what = f"look up the nova-compute service of host {host}"
        query = urlencode({"binary": "nova-compute", "host": host})
        body = self._request("GET", f"/os-services?{query}", what=what)
        matches = [s for s in body.get("services", []) if s.get("host") == host]
        if not matches:
            raise NotFound(f"Nova has no nova-compute service on host {host}")
        if len(matches) > 1:
            # Same host name in two cells: acting on either could be the wrong machine.
            ids = ", ".join(str(s.get("id")) for s in matches)
            raise ComputeError(f"Nova has {len(matches)} nova-compute services for host {host}: {ids}")
        return records.service(matches[0])

    def compute_services(self) -> list[ComputeService]:
        body = self._request("GET", "/os-services?binary=nova-compute", what="list the nova-compute services")
        return [records.service(s) for s in body.get("services", []) if s.get("host")]

    def force_down(self, service: ComputeService) -> ComputeService:
        return self._update_service(service, {"forced_down": True}, what="force down")

    def disable(self, service: ComputeService, reason: str) -> ComputeService:
        change = {"status": "disabled", "disabled_reason": reason}
        return self._update_service(service, change, what="disable")

    def force_up(self, service: ComputeService) -> ComputeService:
        return self._update_service(service, {"forced_down": False}, what="un-force down")

    def enable(self, service: ComputeService) -> ComputeService:
        return self._update_service(service, {"status": "enabled"}, what="enable")

    def _update_service(
        self, service: ComputeService, change: dict[str, Any], *, what: str
    ) -> ComputeService:
        body = self._request(
            "PUT",
            f"/os-services/{quote(service.id, safe='')}",
            json=change,
            what=f"{what} the nova-compute service {service.id} of host {service.host}",
        )
        return records.service(body["service"])

    # ------------------------------------------------------------------ servers

    def servers_on(self, host: str) -> list[Server]:
        what = f"list the servers on host {host}"
        query = {"host": host, "all_tenants": "1"}
        servers = [records.server(s) for s in self._pages("/servers/detail", query, "servers", what=what)]
        stray = [s for s in servers if s.host != host]
        if stray:
            # Nova filters on the host itself; a mismatch means we cannot trust the list,
            # and evacuating a server of a live host must never happen.
            raise ComputeError(
                f"Nova answered '{what}' with {len(stray)} server(s) on other hosts, e.g. "
                f"{stray[0].id} on {stray[0].host}"
            )
        return servers

    def server(self, server_id: str) -> Server:
        body = self._request("GET", f"/servers/{quote(server_id, safe='')}", what=f"get server {server_id}")
        return records.server(body["server"])

    def evacuate(self, server_id: str, target_host: str | None = None) -> str | None:
        args: dict[str, Any] = {} if target_host is None else {"host": target_host}
        where = "to a host of the scheduler's choice" if target_host is None else f"to host {target_host}"
        response = exchange(
            self._compute,
            "POST",
            f"/servers/{quote(server_id, safe='')}/action",
            json={"evacuate": args},
            microversion=self._evacuate_microversion,
            what=f"evacuate server {server_id} {where}",
        )
        return request_id(response)

    def start(self, server_id: str) -> None:
        self._request(
            "POST",
            f"/servers/{quote(server_id, safe='')}/action",
            json={"os-start": None},
            what=f"start server {server_id}",
        )

    def last_power_action(self, server_id: str) -> ServerAction | None:
        """Nova's newest stop/start/reboot of the server (who stopped it: a user, or Nova itself).

        Newer actions of other kinds (a lock, say) must not hide it, so a page is read."""
        body = self._request(
            "GET",
            f"/servers/{quote(server_id, safe='')}/os-instance-actions?limit=50",
            what=f"list the instance actions of server {server_id}",
        )
        actions = [a for a in body.get("instanceActions") or [] if a.get("action") in _POWER_ACTIONS]
        if not actions:
            return None
        newest = max(actions, key=lambda a: str(a.get("start_time") or ""))
        return ServerAction(
            action=str(newest.get("action", "")),
            request_id=str(newest.get("request_id", "")),
            user_id=newest.get("user_id") or None,
            start_time=records.timestamp(newest.get("start_time")),
        )

    def stop(self, server_id: str) -> None:
        self._request(
            "POST",
            f"/servers/{quote(server_id, safe='')}/action",
            json={"os-stop": None},
            what=f"stop server {server_id}",
        )

    def reboot(self, server_id: str, hard: bool = True) -> None:
        self._request(
            "POST",
            f"/servers/{quote(server_id, safe='')}/action",
            json={"reboot": {"type": "HARD" if hard else "SOFT"}},
            what=f"{'hard' if hard else 'soft'} reboot server {server_id}",
        )

    def evacuations(self, source_host: str, server_id: str | None = None) -> list[Migration]:
        query = {"migration_type": "evacuation", "source_compute": source_host}
        what = f"list evacuations from host {source_host}"
        if server_id is not None:
            query["instance_uuid"] = server_id
            what += f" of server {server_id}"
        return [records.migration(m) for m in self._pages("/os-migrations", query, "migrations", what=what)]

    # ------------------------------------------------------------------ locks

    def lock(self, server_id: str, reason: str) -> None:
        """Lock with `reason` (cut to Nova's 255 characters; Nova ignores it below 2.73).

        Idempotent on Nova 34 (verified): a second lock is accepted (202). By the server's own
        project it changes nothing; by another project's admin it takes the lock over (a new
        reason replaces the old), so a lock the user had set is then removed by `unlock`."""
        text = reason.strip()[:MAX_LOCK_REASON]
        self._request(
            "POST",
            f"/servers/{quote(server_id, safe='')}/action",
            json={"lock": {"locked_reason": text} if text else None},
            what=f"lock server {server_id}",
        )

    def unlock(self, server_id: str) -> None:
        """Unlock; Nova accepts (202) unlocking a server that is not locked."""
        self._request(
            "POST",
            f"/servers/{quote(server_id, safe='')}/action",
            json={"unlock": None},
            what=f"unlock server {server_id}",
        )

    # ------------------------------------------------------------------ capacity, aggregates

    def hypervisors(self) -> list[HypervisorReport]:
        """Per nova-compute host, from os-hypervisors/detail at <= 2.87 (one GET per page).

        Nova's figures come from each host's resource tracker (test bed): a claim (boot,
        evacuation target) and a delete show at once, but a server that arrived by evacuation
        and is deleted stays counted until the host's periodic update (~40 s seen; every 60 s);
        a dead host keeps its last figures until its compute restarts.
        """
        what = "list the hypervisors"
        raws = self._pages(
            "/os-hypervisors/detail", {}, "hypervisors", what=what, microversion=self._hypervisor_microversion
        )
        return records.hypervisor_reports(raws)

    def aggregates(self) -> list[Aggregate]:
        body = self._request("GET", "/os-aggregates", what="list the host aggregates")
        return [records.aggregate(a) for a in body.get("aggregates", [])]

    def add_to_aggregate(self, aggregate_id: str, host: str) -> None:
        """Add `host`; one already in the aggregate is success.

        Nova answers 409 both for a host already in it and for a refusal (the host sits in
        another availability zone, or would move its instances to another zone), so a 409
        is read back: success only if the aggregate now lists the host (one more GET)."""
        path = f"/os-aggregates/{quote(aggregate_id, safe='')}"
        what = f"add host {host} to host aggregate {aggregate_id}"
        try:
            self._request("POST", f"{path}/action", json={"add_host": {"host": host}}, what=what)
        except ComputeRejected as refused:
            if refused.status != 409:
                raise
            body = self._request("GET", path, what=f"read host aggregate {aggregate_id}")
            if host not in ((body.get("aggregate") or {}).get("hosts") or ()):
                raise

    # ------------------------------------------------------------------ HTTP

    def _pages(
        self, path: str, query: dict[str, str], key: str, *, what: str, microversion: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """One GET per page. Follows Nova's `next` link by its marker only, so a wrong
        public host name in the link (a common proxy misconfiguration) does not matter."""
        params = dict(query)
        if self._page_size is not None:
            params["limit"] = str(self._page_size)
        while True:
            url = f"{path}?{urlencode(params)}" if params else path
            body = self._request("GET", url, what=what, microversion=microversion)
            yield from body.get(key, [])
            marker = records.next_marker(body.get(f"{key}_links", []))
            if marker is None:
                return
            params["marker"] = marker

    def _compute(self) -> Any:
        # Creating the proxy runs version discovery (one GET); do it once, under a lock,
        # because evacuations run concurrently on one adapter.
        with self._proxy_lock:
            if self._proxy is None:
                self._proxy = self._connection.compute
            return self._proxy

    def _request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        json: dict[str, Any] | None = None,
        microversion: str | None = None,
    ) -> dict[str, Any]:
        response = exchange(
            self._compute, method, url, what=what, json=json, microversion=microversion or self._microversion
        )
        if not response.content:
            return {}
        try:
            body = response.json()
        except ValueError as exc:
            raise ComputeUnavailable(
                f"Nova answered '{what}' with HTTP {response.status_code} but no JSON "
                f"(request {request_id(response)})",
                status=response.status_code,
                request_id=request_id(response),
            ) from exc
        return body if isinstance(body, dict) else {}
