"""Reading a Redfish BMC address, and the pure helpers of the Redfish adapter: no I/O."""

from __future__ import annotations

import json

import pytest

from receiver.adapters.redfish import RedfishEndpoint, RedfishPower, parse_redfish_address
from receiver.adapters.redfish_http import _message_ids
from receiver.domain.model import BmcTarget, Secret
from receiver.errors import BmcRefused, ConfigError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("address", "port", "expected"),
    [
        ("10.0.0.11", 623, RedfishEndpoint("https", "10.0.0.11", 443, None)),
        ("bmc-01.example", 8443, RedfishEndpoint("https", "bmc-01.example", 8443, None)),
        ("[fd00::11]", 623, RedfishEndpoint("https", "fd00::11", 443, None)),
        ("https://10.0.0.11:8443", 623, RedfishEndpoint("https", "10.0.0.11", 8443, None)),
        ("https://10.0.0.11:8443", 9000, RedfishEndpoint("https", "10.0.0.11", 8443, None)),
        ("http://10.0.0.11", 623, RedfishEndpoint("http", "10.0.0.11", 80, None)),
        ("HTTPS://BMC.example/redfish/v1/", 623, RedfishEndpoint("https", "bmc.example", 443, None)),
        (
            "https://10.0.0.11/redfish/v1/Systems/System.Embedded.1",
            623,
            RedfishEndpoint("https", "10.0.0.11", 443, "/redfish/v1/Systems/System.Embedded.1"),
        ),
        ("https://10.0.0.11/redfish/v1/Systems", 623, RedfishEndpoint("https", "10.0.0.11", 443, None)),
    ],
)
def test_addresses(address: str, port: int, expected: RedfishEndpoint) -> None:
    assert parse_redfish_address(address, port) == expected


def test_origin_brackets_ipv6() -> None:
    assert RedfishEndpoint("https", "fd00::11", 443, None).origin == "https://[fd00::11]:443"


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("", "empty"),
        ("ftp://10.0.0.11", "neither https nor http"),
        ("https://10.0.0.11:99999", "not a valid"),
        ("https://", "no host name"),
        ("https://10.0.0.11/redfish/v1/Systems/1?x=1", "query or fragment"),
        ("https://10.0.0.11/redfish/v1/Managers/1", "/redfish/v1/Systems/<system id>"),
        ("https://10.0.0.11/redfish/v1/Systems/1/Bios", "/redfish/v1/Systems/<system id>"),
    ],
)
def test_bad_addresses_name_the_problem(address: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=r"bmc\.address") as caught:
        parse_redfish_address(address)
    assert problem in caught.value.message


def test_credentials_in_the_address_are_refused_without_repeating_them() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_redfish_address("https://admin:s3cret-pw@10.0.0.11/")
    assert "s3cret-pw" not in caught.value.message and "credentials" in caught.value.message


def test_a_bad_address_is_a_refusal_at_call_time() -> None:
    """The fence path catches FenceErrors only: a bad address must not escape as ConfigError."""
    target = BmcTarget("node-01", "https://admin:s3cret-pw@10.0.0.11/", 623, "admin", Secret("s3cret-pw"))
    with pytest.raises(BmcRefused) as caught:
        RedfishPower(timeout_s=1).power_state(target)
    assert "s3cret-pw" not in caught.value.message and "node-01" in caught.value.message


def test_message_ids_are_kept_and_free_text_dropped() -> None:
    body = {
        "error": {
            "code": "Base.1.8.GeneralError",
            "message": "password s3cret-pw rejected",
            "@Message.ExtendedInfo": [
                {"MessageId": "Base.1.8.InsufficientPrivilege", "Message": "s3cret-pw"},
                {"MessageId": "not an id: s3cret-pw"},
                {"MessageId": "Base.1.8.GeneralError"},
            ],
        }
    }
    ids = _message_ids(json.dumps(body).encode(), "s3cret-pw")
    assert ids == "Base.1.8.GeneralError, Base.1.8.InsufficientPrivilege"


@pytest.mark.parametrize("body", [b"", b"<html/>", b"[]", b'{"error": "text"}', b'{"error": {"code": 7}}'])
def test_message_ids_of_odd_bodies_are_empty(body: bytes) -> None:
    assert _message_ids(body, "pw") == ""


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        RedfishPower(timeout_s=0)
