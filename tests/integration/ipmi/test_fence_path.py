"""The fence path through `IpmiPower` against the lab's BMC simulators, over real RMCP+."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from ipmi_helpers import WRONG_PASSWORD, Fleet

from receiver.adapters.ipmi import IpmiPower
from receiver.domain.model import BmcTarget, PowerState
from receiver.errors import BmcRefused, BmcUnreachable, FenceError, LazarusError

pytestmark = pytest.mark.integration

# Generous: a loaded 2-core machine must not turn a healthy BMC into a timeout.
TIMEOUT_S = 20.0
SHORT_TIMEOUT_S = 2.0
READ_BACK_DEADLINE_S = 30.0


def read_back_until(power: IpmiPower, target: BmcTarget, wanted: PowerState) -> PowerState:
    """Poll the power state until `wanted` or the deadline; return the last state read."""
    deadline = time.monotonic() + READ_BACK_DEADLINE_S
    state = power.power_state(target)
    while state is not wanted and time.monotonic() < deadline:
        time.sleep(0.1)
        state = power.power_state(target)
    return state


def fence(power: IpmiPower, target: BmcTarget) -> PowerState:
    power.power_off(target)
    return read_back_until(power, target, PowerState.OFF)


def raises(kind: type[LazarusError], call: Callable[[], Any], fleet: Fleet) -> LazarusError:
    """Assert `call` raises `kind`; and that no secret shows anywhere in the error."""
    with pytest.raises(kind) as caught:
        call()
    error = caught.value
    rendered = "".join(traceback.format_exception(error)) + repr(error.args)
    for secret in fleet.secrets:
        assert secret not in rendered
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    return error


def test_power_off_reads_back_off_then_on_again(ipmi_fleet: Fleet, leak_check: set[str]) -> None:
    leak_check.update(ipmi_fleet.secrets)
    power = IpmiPower(timeout_s=TIMEOUT_S)
    target = ipmi_fleet.target("ok-01")
    assert power.power_state(target) is PowerState.ON

    assert fence(power, target) is PowerState.OFF

    power.power_on(target)
    assert read_back_until(power, target, PowerState.ON) is PowerState.ON


def test_power_off_of_a_host_already_off_is_accepted(ipmi_fleet: Fleet, leak_check: set[str]) -> None:
    leak_check.update(ipmi_fleet.secrets)
    power = IpmiPower(timeout_s=TIMEOUT_S)
    target = ipmi_fleet.target("ok-02")
    assert fence(power, target) is PowerState.OFF
    power.power_off(target)
    assert power.power_state(target) is PowerState.OFF
    power.power_on(target)


def test_refusing_bmc_raises_bmc_refused_and_host_stays_on(ipmi_fleet: Fleet, leak_check: set[str]) -> None:
    leak_check.update(ipmi_fleet.secrets)
    power = IpmiPower(timeout_s=TIMEOUT_S)
    target = ipmi_fleet.target("refuse-01")

    error = raises(BmcRefused, lambda: power.power_off(target), ipmi_fleet)

    assert not error.retryable
    assert "refuse-01" in error.message and f"127.0.0.1:{target.port}" in error.message
    assert "power-off" in error.message and "Command not supported in present state" in error.message
    assert power.power_state(target) is PowerState.ON  # login and reads still work


def test_mute_bmc_raises_unreachable_within_the_timeout(ipmi_fleet: Fleet, leak_check: set[str]) -> None:
    leak_check.update(ipmi_fleet.secrets)
    power = IpmiPower(timeout_s=SHORT_TIMEOUT_S)
    target = ipmi_fleet.target("mute-01")

    started = time.monotonic()
    error = raises(BmcUnreachable, lambda: power.power_off(target), ipmi_fleet)
    elapsed = time.monotonic() - started

    assert error.retryable
    assert "mute-01" in error.message and f"127.0.0.1:{target.port}" in error.message
    assert "power-off" in error.message
    # Bounded by our timeout, not by pyghmi's; the slack only absorbs a loaded machine.
    assert elapsed < SHORT_TIMEOUT_S + 10
    # The next call is just as bounded: the first left nothing behind waiting.
    raises(BmcUnreachable, lambda: power.power_state(target), ipmi_fleet)


def test_pyghmis_own_no_answer_error_becomes_unreachable(ipmi_fleet: Fleet, leak_check: set[str]) -> None:
    """With a timeout longer than pyghmi's own (~4.6 s), pyghmi gives up first, raising
    an IpmiException whose message is `None`: that too must read as unreachable."""
    leak_check.update(ipmi_fleet.secrets)
    power = IpmiPower(timeout_s=120)
    target = ipmi_fleet.target("mute-02")

    error = raises(BmcUnreachable, lambda: power.power_state(target), ipmi_fleet)

    assert "no answer to power-state read" in error.message and "None" not in error.message


def test_stuck_bmc_accepts_power_off_but_keeps_reporting_on(ipmi_fleet: Fleet, leak_check: set[str]) -> None:
    leak_check.update(ipmi_fleet.secrets)
    power = IpmiPower(timeout_s=TIMEOUT_S)
    target = ipmi_fleet.target("stuck-01")

    power.power_off(target)  # accepted: proves nothing

    assert [power.power_state(target) for _ in range(5)] == [PowerState.ON] * 5


@pytest.mark.parametrize(
    ("username", "use_wrong_password", "reason"),
    [
        ("admin", True, "Incorrect password provided"),
        ("nobody", False, "Unauthorized name"),
    ],
)
def test_bad_credentials_raise_bmc_refused(
    ipmi_fleet: Fleet, leak_check: set[str], username: str, use_wrong_password: bool, reason: str
) -> None:
    leak_check.update(ipmi_fleet.secrets)
    power = IpmiPower(timeout_s=TIMEOUT_S)
    target = ipmi_fleet.target(
        "ok-03", username=username, password=WRONG_PASSWORD if use_wrong_password else None
    )

    for call in (lambda: power.power_off(target), lambda: power.power_state(target)):
        error = raises(BmcRefused, call, ipmi_fleet)
        assert reason in error.message and "ok-03" in error.message
    assert IpmiPower(timeout_s=TIMEOUT_S).power_state(ipmi_fleet.target("ok-03")) is PowerState.ON


def test_same_host_fenced_twice_in_one_process(ipmi_fleet: Fleet, leak_check: set[str]) -> None:
    """The str/bytes trap: a second login to the same BMC in one process must not hang."""
    leak_check.update(ipmi_fleet.secrets)
    target = ipmi_fleet.target("ok-04")
    for _ in range(3):
        power = IpmiPower(timeout_s=TIMEOUT_S)  # a new adapter each time, as a new job would
        assert fence(power, target) is PowerState.OFF
        power.power_on(target)
        assert read_back_until(power, target, PowerState.ON) is PowerState.ON


def test_several_hosts_fenced_concurrently(ipmi_fleet: Fleet, leak_check: set[str]) -> None:
    """Threads fence different hosts at once, two threads share one host, and a mute BMC
    among them does not hold the others up past its own failure."""
    leak_check.update(ipmi_fleet.secrets)
    power = IpmiPower(timeout_s=TIMEOUT_S)
    hosts = [f"ok-{n:02d}" for n in range(5, 13)]
    jobs = [*hosts, hosts[0], "mute-01"]
    results: dict[int, object] = {}

    def run(index: int, host: str) -> None:
        try:
            results[index] = fence(power, ipmi_fleet.target(host))
        except FenceError as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, host)) for i, host in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)

    assert [results[i] for i in range(len(jobs) - 1)] == [PowerState.OFF] * (len(jobs) - 1)
    assert isinstance(results[len(jobs) - 1], BmcUnreachable)
    for host in hosts:
        power.power_on(ipmi_fleet.target(host))
        assert power.power_state(ipmi_fleet.target(host)) is PowerState.ON


def test_no_secret_in_any_error_or_log_of_any_case(ipmi_fleet: Fleet, leak_check: set[str]) -> None:
    """Every case once more, collecting every error text; plus the simulator's own log."""
    leak_check.update(ipmi_fleet.secrets)
    power = IpmiPower(timeout_s=SHORT_TIMEOUT_S)
    texts: list[str] = []
    cases: list[tuple[str, Callable[[], object]]] = [
        ("normal", lambda: fence(power, ipmi_fleet.target("ok-01"))),
        ("back on", lambda: power.power_on(ipmi_fleet.target("ok-01"))),
        ("refuse", lambda: power.power_off(ipmi_fleet.target("refuse-01"))),
        ("mute", lambda: power.power_off(ipmi_fleet.target("mute-02"))),
        ("stuck", lambda: power.power_off(ipmi_fleet.target("stuck-01"))),
        ("wrong password", lambda: power.power_off(ipmi_fleet.target("ok-02", password=WRONG_PASSWORD))),
    ]
    outcomes = {}
    for name, call in cases:
        try:
            outcomes[name] = call()
        except LazarusError as error:
            outcomes[name] = type(error).__name__
            texts.append("".join(traceback.format_exception(error)) + repr(error.args) + error.message)
    assert outcomes == {
        "normal": PowerState.OFF,
        "back on": None,
        "refuse": "BmcRefused",
        "mute": "BmcUnreachable",
        "stuck": None,
        "wrong password": "BmcRefused",
    }
    simulator_log = ipmi_fleet.log_file.read_text(encoding="utf-8")
    for secret in ipmi_fleet.secrets:
        for text in texts:
            assert secret not in text
        assert secret not in simulator_log
