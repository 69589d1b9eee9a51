"""`RedfishPower` against sushy-tools' Redfish emulator, and against sockets that never answer."""

from __future__ import annotations

import secrets
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from receiver.adapters.redfish import RedfishPower
from receiver.domain.model import BmcTarget, PowerState, Secret
from receiver.errors import BmcRefused, BmcUnreachable, FenceError, LazarusError
from receiver.lab.redis_server import free_port
from tests.integration.redfish.emulator import Emulator

pytestmark = pytest.mark.integration

# Generous: a loaded 2-core machine must not turn a healthy BMC into a timeout. The fake
# driver applies a power change 1 to 11 s after it accepted it.
TIMEOUT_S = 20.0
SHORT_TIMEOUT_S = 2.0
READ_BACK_DEADLINE_S = 60.0
WRONG_PASSWORD = "Wr0ng-rf-" + secrets.token_hex(6)
# For BMCs that never see it: made at run time, so the source lines a traceback quotes lack it.
OTHER_PASSWORD = "Lz-other-" + secrets.token_hex(6)


def read_back_until(power: RedfishPower, target: BmcTarget, wanted: PowerState) -> PowerState:
    """Poll the power state until `wanted` or the deadline; return the last state read."""
    deadline = time.monotonic() + READ_BACK_DEADLINE_S
    state = power.power_state(target)
    while state is not wanted and time.monotonic() < deadline:
        time.sleep(0.2)
        state = power.power_state(target)
    return state


def raises(kind: type[LazarusError], call: Callable[[], Any], secrets: set[str]) -> LazarusError:
    """Assert `call` raises `kind`, with no secret anywhere in the error or its traceback."""
    with pytest.raises(kind) as caught:
        call()
    error = caught.value
    rendered = "".join(traceback.format_exception(error)) + repr(error.args)
    for secret in secrets:
        assert secret not in rendered
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    return error


def verified(fleet: Emulator, timeout_s: float = TIMEOUT_S) -> RedfishPower:
    assert fleet.ca_file is not None
    return RedfishPower(timeout_s=timeout_s, ca_file=str(fleet.ca_file))


def test_the_only_system_is_found_powered_off_and_on_again(single: Emulator, leak_check: set[str]) -> None:
    leak_check.update(single.secrets)
    power = RedfishPower(timeout_s=TIMEOUT_S)
    target = single.target()  # http://127.0.0.1:PORT: no system id, port from the URL
    assert power.power_state(target) is PowerState.ON

    power.power_off(target)

    assert read_back_until(power, target, PowerState.OFF) is PowerState.OFF
    power.power_on(target)
    assert read_back_until(power, target, PowerState.ON) is PowerState.ON
    assert single.reset_requests("solo") == 2


def test_named_system_over_verified_tls(fleet: Emulator, leak_check: set[str]) -> None:
    leak_check.update(fleet.secrets)
    power = verified(fleet)
    target = fleet.target("node-01")
    assert power.power_state(target) is PowerState.ON

    power.power_off(target)

    assert read_back_until(power, target, PowerState.OFF) is PowerState.OFF
    assert power.power_state(fleet.target("node-02")) is PowerState.ON  # the others untouched
    power.power_on(target)
    assert read_back_until(power, target, PowerState.ON) is PowerState.ON


def test_power_off_of_a_host_already_off_sends_no_reset(fleet: Emulator, leak_check: set[str]) -> None:
    """Some BMCs answer ForceOff on a system that is off with an error; a dead host must not
    turn into a refused fence."""
    leak_check.update(fleet.secrets)
    power = verified(fleet)
    target = fleet.target("off-01")

    power.power_off(target)

    assert power.power_state(target) is PowerState.OFF
    assert fleet.reset_requests("off-01") == 0


def test_untrusted_certificate_is_refused_before_credentials_are_sent(
    fleet: Emulator, leak_check: set[str]
) -> None:
    leak_check.update(fleet.secrets)
    requests_before = fleet.log_file.read_text(encoding="utf-8").count("GET /redfish/v1/Systems")
    target = fleet.target("node-03")

    error = raises(BmcRefused, lambda: RedfishPower(timeout_s=TIMEOUT_S).power_off(target), fleet.secrets)

    assert not error.retryable
    assert "TLS certificate not trusted" in error.message and "node-03" in error.message
    assert fleet.log_file.read_text(encoding="utf-8").count("GET /redfish/v1/Systems") == requests_before
    assert verified(fleet).power_state(target) is PowerState.ON


def test_insecure_target_skips_certificate_verification(fleet: Emulator, leak_check: set[str]) -> None:
    leak_check.update(fleet.secrets)
    target = fleet.target("node-03", insecure=True)
    assert RedfishPower(timeout_s=TIMEOUT_S).power_state(target) is PowerState.ON


@pytest.mark.parametrize(("username", "password"), [("admin", WRONG_PASSWORD), ("nobody", None)])
def test_bad_credentials_are_refused_and_nothing_is_switched(
    fleet: Emulator, leak_check: set[str], username: str, password: str | None
) -> None:
    secrets = fleet.secrets | {WRONG_PASSWORD}
    leak_check.update(secrets)
    power = verified(fleet)
    target = fleet.target("node-04", username=username, password=password)

    for call in (lambda: power.power_off(target), lambda: power.power_state(target)):
        error = raises(BmcRefused, call, secrets)
        assert not error.retryable
        assert "login not accepted (HTTP 401" in error.message and "node-04" in error.message

    assert fleet.reset_requests("node-04") == 0
    assert power.power_state(fleet.target("node-04")) is PowerState.ON


def test_several_systems_and_none_named_is_refused(fleet: Emulator, leak_check: set[str]) -> None:
    leak_check.update(fleet.secrets)
    error = raises(BmcRefused, lambda: verified(fleet).power_off(fleet.target()), fleet.secrets)
    assert f"{len(fleet.systems)} systems" in error.message and "name one in the address" in error.message


def test_nothing_listening_is_unreachable_at_once(leak_check: set[str]) -> None:
    leak_check.add(OTHER_PASSWORD)
    target = BmcTarget("node-09", f"http://127.0.0.1:{free_port()}", 623, "admin", Secret(OTHER_PASSWORD))
    power = RedfishPower(timeout_s=TIMEOUT_S)

    started = time.monotonic()
    error = raises(BmcUnreachable, lambda: power.power_off(target), {OTHER_PASSWORD})

    assert error.retryable and "connection refused" in error.message
    assert time.monotonic() - started < TIMEOUT_S  # refused at once, not timed out


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose connections the kernel accepts (backlog) but nobody ever reads or answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_bmc_that_never_answers_is_unreachable_within_the_timeout(
    silent_port: int, scheme: str, leak_check: set[str]
) -> None:
    leak_check.add(OTHER_PASSWORD)
    target = BmcTarget("node-10", f"{scheme}://127.0.0.1:{silent_port}", 623, "admin", Secret(OTHER_PASSWORD))
    power = RedfishPower(timeout_s=SHORT_TIMEOUT_S)

    started = time.monotonic()
    error = raises(BmcUnreachable, lambda: power.power_state(target), {OTHER_PASSWORD})

    assert error.retryable and f"within {SHORT_TIMEOUT_S:g} s" in error.message
    assert time.monotonic() - started < SHORT_TIMEOUT_S + 10  # the slack only absorbs a loaded machine


@pytest.fixture
def trickling_port() -> Iterator[int]:
    """A server that answers one header byte every 0.2 s, forever: each read succeeds in time,
    so only a deadline over the whole call stops it."""
    stop = threading.Event()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                while not stop.wait(0.2):
                    try:
                        conn.sendall(b"X")
                    except OSError:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(timeout=10)
    listener.close()


def test_a_bmc_that_trickles_is_cut_off_at_the_deadline(trickling_port: int, leak_check: set[str]) -> None:
    leak_check.add(OTHER_PASSWORD)
    target = BmcTarget("node-10", f"http://127.0.0.1:{trickling_port}", 623, "admin", Secret(OTHER_PASSWORD))
    power = RedfishPower(timeout_s=SHORT_TIMEOUT_S)

    started = time.monotonic()
    error = raises(BmcUnreachable, lambda: power.power_state(target), {OTHER_PASSWORD})

    assert f"within {SHORT_TIMEOUT_S:g} s" in error.message
    assert time.monotonic() - started < SHORT_TIMEOUT_S + 10


def test_concurrent_calls_share_nothing(fleet: Emulator, silent_port: int, leak_check: set[str]) -> None:
    """Threads fence different systems at once, a silent BMC among them: each call stands alone."""
    leak_check.update(fleet.secrets)
    power = verified(fleet)
    hosts = [f"node-{n:02d}" for n in range(5, 11)]
    silent = BmcTarget("silent", f"https://127.0.0.1:{silent_port}", 623, "admin", Secret(fleet.password))
    results: dict[str, object] = {}

    def fence(name: str, target: BmcTarget) -> None:
        try:
            power.power_off(target)
            results[name] = read_back_until(power, target, PowerState.OFF)
        except FenceError as error:
            results[name] = error

    threads = [threading.Thread(target=fence, args=(h, fleet.target(h))) for h in hosts]
    threads.append(threading.Thread(target=fence, args=("silent", silent)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=READ_BACK_DEADLINE_S + 60)
    assert not any(thread.is_alive() for thread in threads)

    assert {h: results[h] for h in hosts} == dict.fromkeys(hosts, PowerState.OFF)
    assert isinstance(results["silent"], BmcUnreachable)
    for host in hosts:
        power.power_on(fleet.target(host))


def test_no_secret_in_any_error_or_log_of_any_case(
    single: Emulator, fleet: Emulator, silent_port: int, leak_check: set[str]
) -> None:
    """Every case once more, collecting every error text; plus the emulators' own logs."""
    secrets = single.secrets | fleet.secrets | {WRONG_PASSWORD}
    leak_check.update(secrets)
    power = verified(fleet, timeout_s=SHORT_TIMEOUT_S)
    cases: dict[str, Callable[[], object]] = {
        "read": lambda: power.power_state(fleet.target("node-02")),
        "wrong password": lambda: power.power_off(fleet.target("node-02", password=WRONG_PASSWORD)),
        "untrusted": lambda: RedfishPower(SHORT_TIMEOUT_S).power_state(fleet.target("node-02")),
        "several systems": lambda: power.power_off(fleet.target()),
        "silent": lambda: power.power_off(
            BmcTarget("x", f"http://127.0.0.1:{silent_port}", 623, "admin", Secret(fleet.password))
        ),
        "credentials in the address": lambda: power.power_state(
            BmcTarget("x", f"https://admin:{fleet.password}@127.0.0.1/", 623, "admin", Secret(fleet.password))
        ),
    }
    outcomes: dict[str, object] = {}
    texts: list[str] = []
    for name, call in cases.items():
        try:
            outcomes[name] = call()
        except LazarusError as error:
            outcomes[name] = type(error).__name__
            texts.append("".join(traceback.format_exception(error)) + repr(error.args) + error.message)
    assert outcomes == {
        "read": PowerState.ON,
        "wrong password": "BmcRefused",
        "untrusted": "BmcRefused",
        "several systems": "BmcRefused",
        "silent": "BmcUnreachable",
        "credentials in the address": "BmcRefused",
    }
    logs = single.log_file.read_text(encoding="utf-8") + fleet.log_file.read_text(encoding="utf-8")
    for secret in secrets:
        assert all(secret not in text for text in texts)
        assert secret not in logs
