"""The contract suite's power-loss fixture: the victim host loses power and is forced down and
disabled through the adapter, with servers booted there first (ACTIVE or SHUTOFF).

A test module names its servers in a module-level `FENCED_SERVERS` (role -> SHUTOFF?) and
imports the fixture (`from tests.contract.fenced import fenced`); each module gets its own
power loss, and the victim comes back (restarted, un-forced, enabled) after the module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from receiver.adapters.nova import NovaCompute
from receiver.domain.model import ComputeService, Server
from tests.contract.conftest import NovaAdmin, Target


@dataclass
class Fenced:
    """A host whose compute lost power and was forced down and disabled through the adapter."""

    host: str
    compute: NovaCompute
    servers: dict[str, str]
    forced: ComputeService
    disabled: ComputeService
    token: str
    admin: NovaAdmin
    timings: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="module")
def fenced(target_session: Target, request: pytest.FixtureRequest) -> Iterator[Fenced]:
    target, host = target_session, target_session.victim
    if target.power_off is None or target.power_on is None:
        pytest.skip(f"{target.name}: cannot simulate power loss (set LAZARUS_TEST_NOVA_LAB)")
    target.require_healthy(host)
    if not [h for h in target.other_hosts(host) if target.admin.service(h)["state"] == "up"]:
        pytest.skip(f"{target.name}: no other compute host is up to evacuate to")
    roles: dict[str, bool] = request.module.FENCED_SERVERS
    owned: list[str] = []
    try:
        servers = {role: target.boot(host, stopped=stopped, owner=owned) for role, stopped in roles.items()}
        compute = target.compute()
        target.power_off(host)
        forced = compute.force_down(compute.service(host))
        disabled = compute.disable(forced, "lazarus contract: power lost")
        yield Fenced(host, compute, servers, forced, disabled, target.token, target.admin)
    finally:
        # Host first: deleting a server whose dead compute is not forced down would wait forever
        # for that compute; once it is back, deletes and its own clean-up proceed normally.
        try:
            target.restore_host(host)
        finally:
            target.cleanup_servers(owned)


def wait_server(
    compute: NovaCompute, server_id: str, done: Callable[[Server], bool], timeout: float = 180.0
) -> Server:
    """Poll until `done(server)`; a server in ERROR fails the test."""
    return settle(compute, server_id, lambda s: _not_error(s) and done(s), timeout)


def settle(
    compute: NovaCompute, server_id: str, done: Callable[[Server], bool], timeout: float = 180.0
) -> Server:
    """Poll until `done(server)`, whatever its status."""
    deadline = time.monotonic() + timeout
    while True:
        server = compute.server(server_id)
        if done(server):
            return server
        if time.monotonic() > deadline:
            pytest.fail(f"server {server_id} not done after {timeout:.0f}s: {server}")
        time.sleep(0.2)


def _not_error(server: Server) -> bool:
    if server.status == "ERROR":
        pytest.fail(f"server {server.id} went to ERROR on {server.host}")
    return True


def evacuate_and_wait(fenced: Fenced, role: str, status: str, target_host: str | None = None) -> Server:
    server_id = fenced.servers[role]
    started = time.monotonic()
    request_id = fenced.compute.evacuate(server_id, target_host)
    # Nova's id of the accepted request: an asynchronous failure is found in its logs by it.
    assert request_id is not None and request_id.startswith("req-"), request_id
    server = wait_server(
        fenced.compute,
        server_id,
        lambda s: s.host not in (None, fenced.host) and s.status == status and s.task_state is None,
    )
    fenced.timings[role] = time.monotonic() - started
    print(f"evacuate {role} {server_id} -> {server.host} {server.status} in {fenced.timings[role]:.2f}s")
    return server


def up_hosts(target: Target, besides: str) -> list[str]:
    return [h for h in target.other_hosts(besides) if target.admin.service(h)["state"] == "up"]


__all__ = ["Fenced", "evacuate_and_wait", "fenced", "settle", "up_hosts", "wait_server"]
