"""How pyghmi's errors become our outcomes: pure classification, no I/O."""

from __future__ import annotations

import pytest
from pyghmi.exceptions import IpmiException

from receiver.adapters.ipmi import IpmiPower, classify
from receiver.lab.bmc import BmcFault

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "error",
    [
        IpmiException(None),
        IpmiException("Session no longer connected"),
        IpmiException("timeout"),
        OSError(113),
    ],
    ids=["login-unanswered", "session-lost", "retries-exhausted", "socket-error"],
)
def test_no_answer_is_unreachable(error: BaseException) -> None:
    assert classify(error).outcome == "unreachable"


@pytest.mark.parametrize(
    "text",
    [
        "Command not supported in present state",
        "Unspecified",
        "Incorrect password provided",
        "Unauthorized name in RAKP2",
        "Insufficient privilege level or firmware firewall",
        "Unknown code 0x 7 encountered",
    ],
)
def test_refusals_from_code_tables_are_repeated_verbatim(text: str) -> None:
    reply = classify(IpmiException(text))
    assert (reply.outcome, reply.reason) == ("refused", text)


def test_free_text_is_never_repeated() -> None:
    """pyghmi free text might carry anything, a password included."""
    reply = classify(IpmiException("login as admin with s3cret-pw failed"))
    assert reply.outcome == "refused"
    assert "s3cret" not in reply.reason and reply.reason == "unrecognised IpmiException"


def test_unexpected_exceptions_are_refusals_named_by_type() -> None:
    reply = classify(KeyError("s3cret-pw"))
    assert (reply.outcome, reply.reason) == ("refused", "unexpected KeyError in pyghmi")


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        IpmiPower(timeout_s=0)


def test_fault_names_are_stable() -> None:
    """The lab's control API and CLI spell faults with these values."""
    assert [f.value for f in BmcFault] == ["none", "mute", "refuse", "stuck_on"]
