"""Pages of a segment's hosts, as Masakari's `GET /v1/segments/<id>/hosts` gives them: `limit`,
`marker` (the last host's uuid, or its integer id as openstacksdk sends back), `sort_key` /
`sort_dir`, filters applied after the marker is found, and 400 for a marker it cannot find."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.integration.masakari.kit import send

pytestmark = pytest.mark.integration

NAMES = ("n1", "n2", "n3", "n4", "n5")
NEWEST_FIRST = list(reversed(NAMES))
SegmentHosts = tuple[str, dict[str, dict[str, Any]]]  # the segment's uuid, its hosts by name


def create(api: FlaskClient, path: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    response = send(api, "POST", path, {kind: body})
    assert response.status_code == 201, response.get_json()
    created: dict[str, Any] = response.get_json()[kind]
    return created


@pytest.fixture
def segment_hosts(api: FlaskClient) -> SegmentHosts:
    """A segment with five hosts, created n1 to n5 (n2 and n4 reserved), beside another segment
    with a host of its own; returns the segment's uuid and its hosts by name."""
    fields = {"recovery_method": "auto", "service_type": "COMPUTE"}
    segment = create(api, "/v1/segments", "segment", {"name": "rack-a", **fields})
    other = create(api, "/v1/segments", "segment", {"name": "rack-b", **fields})
    hosts = {}
    for index, name in enumerate(NAMES, start=1):
        body = {"name": name, "type": "COMPUTE", "control_attributes": "SSH", "reserved": index % 2 == 0}
        hosts[name] = create(api, f"/v1/segments/{segment['uuid']}/hosts", "host", body)
    elsewhere = {"name": "m1", "type": "COMPUTE", "control_attributes": "SSH"}
    create(api, f"/v1/segments/{other['uuid']}/hosts", "host", elsewhere)
    return segment["uuid"], hosts


def listed(api: FlaskClient, segment: str, query: str) -> list[dict[str, Any]]:
    response = send(api, "GET", f"/v1/segments/{segment}/hosts?{query}")
    assert response.status_code == 200, response.get_json()
    hosts: list[dict[str, Any]] = response.get_json()["hosts"]
    return hosts


def walk(api: FlaskClient, segment: str, query: str, limit: int, *, by: str = "uuid") -> list[list[str]]:
    """Every page, each asked for with the previous page's last host as the marker, until an
    empty page: what a client's pager does."""
    pages: list[list[str]] = []
    marker = ""
    for _ in range(len(NAMES) + 2):  # bounded: a pager that never ends fails, not hangs
        page = listed(api, segment, f"{query}&limit={limit}{marker}")
        if not page:
            return pages
        assert len(page) <= limit
        pages.append([h["name"] for h in page])
        marker = f"&marker={page[-1][by]}"
    raise AssertionError(f"more pages than hosts: {pages}")


def test_pages_walk_every_host_once_newest_first(api: FlaskClient, segment_hosts: SegmentHosts) -> None:
    segment, _ = segment_hosts
    assert [h["name"] for h in listed(api, segment, "")] == NEWEST_FIRST  # created_at desc, as Masakari
    assert walk(api, segment, "", 2) == [["n5", "n4"], ["n3", "n2"], ["n1"]]
    # openstacksdk sends back the integer id of the last item as the marker: same pages
    assert walk(api, segment, "", 2, by="id") == [["n5", "n4"], ["n3", "n2"], ["n1"]]
    assert walk(api, segment, "", 10) == [NEWEST_FIRST]


def test_pages_follow_the_sort_keys(api: FlaskClient, segment_hosts: SegmentHosts) -> None:
    segment, _ = segment_hosts
    assert walk(api, segment, "sort_key=name&sort_dir=asc", 2) == [["n1", "n2"], ["n3", "n4"], ["n5"]]
    assert walk(api, segment, "sort_key=name&sort_dir=desc", 3) == [["n5", "n4", "n3"], ["n2", "n1"]]
    # reserved first (desc: true before false), then by name ascending within each group
    query = "sort_key=reserved&sort_dir=desc&sort_key=name&sort_dir=asc"
    assert walk(api, segment, query, 3) == [["n2", "n4", "n1"], ["n3", "n5"]]


def test_a_filtered_listing_pages_from_the_marker(api: FlaskClient, segment_hosts: SegmentHosts) -> None:
    segment, hosts = segment_hosts
    assert walk(api, segment, "reserved=true&sort_key=name&sort_dir=asc", 1) == [["n2"], ["n4"]]
    # The marker need not pass the filter (Masakari looks it up by value): after n3, the
    # reserved hosts that follow it in name order.
    query = f"reserved=true&sort_key=name&sort_dir=asc&marker={hosts['n3']['uuid']}"
    assert [h["name"] for h in listed(api, segment, query)] == ["n4"]


def test_a_marker_that_names_no_host_is_a_bad_request(api: FlaskClient, segment_hosts: SegmentHosts) -> None:
    segment, hosts = segment_hosts
    for marker in ("nope", "00000000-0000-4000-8000-000000000000", "99999"):
        response = send(api, "GET", f"/v1/segments/{segment}/hosts?limit=2&marker={marker}")
        assert response.status_code == 400, (marker, response.get_json())
        assert (
            response.get_json()["badRequest"]["message"] == f"Marker {marker} could not be found."
        )  # Masakari's words
    # a deleted host's uuid is no marker any more
    gone = hosts["n3"]["uuid"]
    assert send(api, "DELETE", f"/v1/segments/{segment}/hosts/{gone}").status_code == 204
    assert send(api, "GET", f"/v1/segments/{segment}/hosts?marker={gone}").status_code == 400
    assert [h["name"] for h in listed(api, segment, f"marker={hosts['n4']['uuid']}")] == ["n2", "n1"]
    for bad in ("limit=-1", "limit=many", "sort_key=password", "sort_dir=sideways"):
        assert send(api, "GET", f"/v1/segments/{segment}/hosts?{bad}").status_code == 400, bad
