"""What real Nova 34 does around placement that the lab cannot show, against the REAL test bed
(../shared/nova-lab), through `NovaCompute`:

- A lock by an admin of another project takes over a lock the server's own user had set
  (Nova's compute API: a non-owner's lock always re-locks, locked_by becomes "admin", a new
  reason replaces the old); the user can then no longer unlock it (403: unlock_override), and
  the admin's `unlock` removes the user's lock too. A recovery must therefore leave a server
  that was locked before its move locked, and never unlock it afterwards.
- `add_host` answers 409 for a host in an aggregate of another availability zone, as for a
  host already in the aggregate; the adapter reads the aggregate back to tell them apart.

The other placement calls run against both the lab and this bed in
tests/contract/test_compute_placement_contract.py.

  LAZARUS_TEST_NOVA_ENDPOINT     e.g. http://127.0.0.1:18774/v2.1 (unset: skipped)
  LAZARUS_TEST_NOVA_TOKEN        the admin, default admin:admin
  LAZARUS_TEST_NOVA_USER_TOKEN   a member of another project, default demo:demo
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from receiver.errors import ComputeRejected
from tests.contract.conftest import FLAVOR_NAME, IMAGE_ID, NovaAdmin, Target, _real_nova, wait_for

pytestmark = [
    pytest.mark.nova,
    pytest.mark.filterwarnings("ignore:Support for InfluxDB requires:PendingDeprecationWarning"),
]


@pytest.fixture(scope="module")
def bed() -> Iterator[Target]:
    yield from _real_nova()


@pytest.fixture
def user(bed: Target) -> NovaAdmin:
    """A member of another project than the admin's (Nova's policy: may lock and unlock its own)."""
    return NovaAdmin(bed.endpoint, os.environ.get("LAZARUS_TEST_NOVA_USER_TOKEN", "demo:demo"))


def boot_as(client: NovaAdmin, admin: NovaAdmin) -> str:
    """An ACTIVE server of the client's project, placed by the scheduler (a member may not name a host)."""
    server = {
        "name": f"lazarus-nova-placement-{uuid.uuid4().hex[:8]}",
        "imageRef": IMAGE_ID,
        "flavorRef": admin.flavor_id(FLAVOR_NAME),
        "networks": "none",
    }
    server_id = str(client.call("POST", "/servers", json={"server": server}, ok=(202,))["server"]["id"])
    admin.wait_status(server_id, "ACTIVE")
    return server_id


def test_an_admin_lock_takes_over_the_user_s_lock(bed: Target, user: NovaAdmin) -> None:
    server_id = boot_as(user, bed.admin)
    action = f"/servers/{server_id}/action"
    try:
        user.call("POST", action, json={"lock": {"locked_reason": "mine"}}, ok=(202,))
        compute = bed.compute()
        before = compute.server(server_id)
        assert (before.locked, before.locked_reason) == (True, "mine")

        compute.lock(server_id, "lazarus recovery r-1")  # accepted: Nova re-locks for a non-owner
        taken = compute.server(server_id)
        assert (taken.locked, taken.locked_reason) == (True, "lazarus recovery r-1")
        refused = user.http.post(f"{user.endpoint}{action}", json={"unlock": None}, timeout=30)
        assert refused.status_code == 403 and "unlock_override" in refused.text, refused.text[:300]

        compute.unlock(server_id)  # and the user's own lock is gone with ours
        after = compute.server(server_id)
        assert (after.locked, after.locked_reason) == (False, None)
    finally:
        bed.admin.delete(server_id)
        wait_for(f"server {server_id} deleted", lambda: bed.admin.server(server_id) is None)


def test_add_to_an_aggregate_of_another_zone_is_refused(bed: Target) -> None:
    """Nova's 409 for a host already in an aggregate of another availability zone (Nova checks
    this before whether the host is already a member): the adapter must not take it for success."""
    busy = {s.get("OS-EXT-SRV-ATTR:host") for s in bed.admin.all_servers()}
    empty = [h for h in bed.admin.compute_hosts() if h not in busy]
    if not empty:
        pytest.skip("every compute host has servers right now (a zone change would move them: another 409)")
    host, tag = empty[0], uuid.uuid4().hex[:8]
    first = bed.admin.create_aggregate(f"lazarus-nova-{tag}-a", zone=f"lazarus-nova-{tag}-a")
    second = bed.admin.create_aggregate(f"lazarus-nova-{tag}-b", zone=f"lazarus-nova-{tag}-b")
    try:
        compute = bed.compute()
        compute.add_to_aggregate(first, host)
        compute.add_to_aggregate(first, host)  # already a member: success
        with pytest.raises(ComputeRejected) as info:
            compute.add_to_aggregate(second, host)
        assert info.value.status == 409 and "already in availability zone(s)" in str(info.value)
        hosts = {a.id: a.hosts for a in compute.aggregates()}
        assert (hosts[first], hosts[second]) == ((host,), ())
    finally:
        bed.admin.delete_aggregate(first)
        bed.admin.delete_aggregate(second)
