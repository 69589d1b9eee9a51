"""How `RedfishPower` reads what a BMC answers, over real HTTP from a scripted server: the
answers the emulator never gives (5xx, 403, redirects, odd bodies, other Reset targets)."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from receiver.adapters.redfish import RedfishPower
from receiver.adapters.redfish_http import MAX_ANSWER_BYTES
from receiver.domain.model import BmcTarget, PowerState, Secret
from receiver.errors import BmcRefused

pytestmark = pytest.mark.integration

# Shaped like a Redfish MessageId, to prove even those are dropped when they carry it.
PASSWORD = "Lz." + secrets.token_hex(6)
TIMEOUT_S = 20.0
SYSTEM = "/redfish/v1/Systems/1"
RESET = f"{SYSTEM}/Actions/ComputerSystem.Reset"


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def resource(data: object, status: int = 200) -> Reply:
    return Reply(status, json.dumps(data).encode(), {"Content-Type": "application/json"})


def system(power: str = "On", reset: dict[str, object] | None = None) -> Reply:
    action = {"target": RESET} if reset is None else reset
    return resource({"@odata.id": SYSTEM, "PowerState": power, "Actions": {"#ComputerSystem.Reset": action}})


def redfish_error(status: int, code: str, message: str) -> Reply:
    body = {"error": {"code": code, "message": message, "@Message.ExtendedInfo": [{"MessageId": code}]}}
    return resource(body, status)


class ScriptedBmc:
    """Answers each (method, path) from `replies`; 404 for anything else. Records every request."""

    def __init__(self) -> None:
        self.replies: dict[tuple[str, str], Reply] = {}
        self.requests: list[tuple[str, str, dict[str, object] | None]] = []
        bmc = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(json.loads(self.rfile.read(length)))

            def _answer(self, payload: dict[str, object] | None) -> None:
                bmc.requests.append((self.command, self.path, payload))
                reply = bmc.replies.get((self.command, self.path), Reply(404))
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def target(self, path: str = "") -> BmcTarget:
        return BmcTarget("node-01", f"http://127.0.0.1:{self.port}{path}", 623, "admin", Secret(PASSWORD))

    def posts(self) -> list[tuple[str, dict[str, object] | None]]:
        return [(path, payload) for method, path, payload in self.requests if method == "POST"]


@pytest.fixture
def bmc() -> Iterator[ScriptedBmc]:
    scripted = ScriptedBmc()
    scripted.thread.start()
    yield scripted
    scripted.server.shutdown()
    scripted.server.server_close()


@pytest.fixture
def other_bmc() -> Iterator[ScriptedBmc]:
    scripted = ScriptedBmc()
    scripted.thread.start()
    yield scripted
    scripted.server.shutdown()
    scripted.server.server_close()


def refusal(call: Callable[[], object]) -> BmcRefused:
    with pytest.raises(BmcRefused) as caught:
        call()
    assert PASSWORD not in caught.value.message
    return caught.value


POWER = RedfishPower(timeout_s=TIMEOUT_S)


@pytest.mark.parametrize(
    ("power_state", "expected"),
    [
        ("On", PowerState.ON),
        ("Off", PowerState.OFF),
        ("PoweringOff", PowerState.UNKNOWN),
        (None, PowerState.UNKNOWN),
    ],
)
def test_only_off_reads_as_off(bmc: ScriptedBmc, power_state: str | None, expected: PowerState) -> None:
    bmc.replies[("GET", SYSTEM)] = resource({"PowerState": power_state} if power_state else {})
    assert POWER.power_state(bmc.target(SYSTEM)) is expected


def test_a_server_error_is_a_retryable_refusal(bmc: ScriptedBmc) -> None:
    bmc.replies[("GET", SYSTEM)] = redfish_error(503, "Base.1.8.ServiceTemporarilyUnavailable", "busy")
    error = refusal(lambda: POWER.power_state(bmc.target(SYSTEM)))
    assert error.retryable
    assert "HTTP 503, Base.1.8.ServiceTemporarilyUnavailable" in error.message


def test_a_forbidden_reset_names_the_message_id_but_never_the_free_text(bmc: ScriptedBmc) -> None:
    bmc.replies[("GET", SYSTEM)] = system("On")
    bmc.replies[("POST", RESET)] = redfish_error(
        403, "Base.1.8.InsufficientPrivilege", f"user admin with password {PASSWORD} may not"
    )
    error = refusal(lambda: POWER.power_off(bmc.target(SYSTEM)))
    assert not error.retryable
    assert "not permitted for this user (HTTP 403, Base.1.8.InsufficientPrivilege)" in error.message
    assert "may not" not in error.message


def test_a_message_id_carrying_the_password_is_dropped(bmc: ScriptedBmc) -> None:
    bmc.replies[("GET", SYSTEM)] = redfish_error(400, PASSWORD, "echo")
    error = refusal(lambda: POWER.power_state(bmc.target(SYSTEM)))
    assert error.message.endswith("rejected (HTTP 400)")


def test_a_reset_conflict_is_refused(bmc: ScriptedBmc) -> None:
    bmc.replies[("GET", SYSTEM)] = system("On")
    bmc.replies[("POST", RESET)] = redfish_error(409, "Base.1.8.ActionNotSupported", "no")
    error = refusal(lambda: POWER.power_off(bmc.target(SYSTEM)))
    assert "rejected (HTTP 409, Base.1.8.ActionNotSupported)" in error.message


def test_the_reset_goes_to_the_target_the_system_names(bmc: ScriptedBmc) -> None:
    custom = "/redfish/v1/Systems/1/Actions/Oem/Reset.Custom"
    bmc.replies[("GET", SYSTEM)] = system(
        "On", {"target": custom, "ResetType@Redfish.AllowableValues": ["ForceOff"]}
    )
    bmc.replies[("POST", custom)] = Reply(204)
    POWER.power_off(bmc.target(SYSTEM))
    assert bmc.posts() == [(custom, {"ResetType": "ForceOff"})]


def test_a_reset_type_the_bmc_does_not_offer_is_not_sent(bmc: ScriptedBmc) -> None:
    bmc.replies[("GET", SYSTEM)] = system(
        "On", {"target": RESET, "ResetType@Redfish.AllowableValues": ["On"]}
    )
    error = refusal(lambda: POWER.power_off(bmc.target(SYSTEM)))
    assert "does not offer ResetType ForceOff" in error.message
    assert bmc.posts() == []


def test_a_redirect_on_the_same_bmc_is_followed(bmc: ScriptedBmc) -> None:
    """As sushy-emulator does for a system named by name instead of id."""
    bmc.replies[("GET", "/redfish/v1/Systems/by-name")] = Reply(307, headers={"Location": SYSTEM})
    bmc.replies[("GET", SYSTEM)] = system("Off")
    assert POWER.power_state(bmc.target("/redfish/v1/Systems/by-name")) is PowerState.OFF


def test_credentials_never_follow_a_redirect_to_another_address(
    bmc: ScriptedBmc, other_bmc: ScriptedBmc
) -> None:
    bmc.replies[("GET", SYSTEM)] = Reply(
        302, headers={"Location": f"http://127.0.0.1:{other_bmc.port}{SYSTEM}"}
    )
    other_bmc.replies[("GET", SYSTEM)] = system("Off")
    error = refusal(lambda: POWER.power_state(bmc.target(SYSTEM)))
    assert "pointed to another address" in error.message
    assert other_bmc.requests == []


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (Reply(200, b"<html>login</html>"), "is not a Redfish resource"),
        (Reply(200, b"[1, 2]"), "is not a Redfish resource"),
        (Reply(200, b"{" + b" " * MAX_ANSWER_BYTES + b"}"), "larger than"),
        (Reply(404), "not found (HTTP 404)"),
    ],
    ids=["html", "not-an-object", "too-large", "no-such-system"],
)
def test_answers_that_are_not_a_system_are_refused(bmc: ScriptedBmc, reply: Reply, why: str) -> None:
    bmc.replies[("GET", SYSTEM)] = reply
    error = refusal(lambda: POWER.power_off(bmc.target(SYSTEM)))
    assert why in error.message and not error.retryable
    assert bmc.posts() == []


@pytest.mark.parametrize("count", [0, 2])
def test_discovery_needs_exactly_one_system(bmc: ScriptedBmc, count: int) -> None:
    members = [{"@odata.id": f"/redfish/v1/Systems/{n}"} for n in range(count)]
    bmc.replies[("GET", "/redfish/v1/Systems")] = resource({"Members": members})
    error = refusal(lambda: POWER.power_state(bmc.target()))
    assert f"{count} systems under /redfish/v1/Systems" in error.message


def test_discovery_finds_the_only_system_and_its_reset(bmc: ScriptedBmc) -> None:
    bmc.replies[("GET", "/redfish/v1/Systems")] = resource({"Members": [{"@odata.id": SYSTEM}]})
    bmc.replies[("GET", SYSTEM)] = system("On")
    bmc.replies[("POST", RESET)] = Reply(204)
    POWER.power_off(bmc.target("/redfish/v1"))
    assert bmc.posts() == [(RESET, {"ResetType": "ForceOff"})]
    assert all(path.startswith("/redfish/v1/Systems") for _, path, _ in bmc.requests)
