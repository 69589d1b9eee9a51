"""The probe's verdicts, as pure decisions over what a power reader answered (no I/O)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from receiver.domain.model import BmcTarget, PowerState, Secret
from receiver.errors import BmcRefused, BmcUnreachable, ConfigError
from receiver.inventory import parse_inventory
from receiver.probe import (
    PowerReader,
    ProbeFailure,
    ProbeResult,
    describe_bmc,
    probe,
    probe_all,
    probe_host,
)

pytestmark = pytest.mark.unit

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
TARGET = BmcTarget("node-01", "10.0.0.11", 623, "admin", Secret("s3cret-pw"))


def now() -> datetime:
    return AT


class Answers:
    """Answers power reads with a state, or raises an error; counts the reads."""

    def __init__(self, answer: PowerState | Exception) -> None:
        self.answer = answer
        self.reads = 0

    def power_state(self, target: BmcTarget) -> PowerState:
        self.reads += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_an_answer_is_a_healthy_bmc() -> None:
    result = probe(TARGET, Answers(PowerState.OFF), now)
    assert (result.reachable, result.credentials_ok, result.power_state) == (True, True, PowerState.OFF)
    assert result.up and result.error_reason is None and result.checked_at == AT
    assert (result.host, result.driver, result.bmc) == ("node-01", "ipmi", "10.0.0.11:623")


def test_no_answer_is_unreachable_with_credentials_unknown() -> None:
    result = probe(TARGET, Answers(BmcUnreachable("BMC of host node-01: no answer within 5 s")), now)
    assert (result.reachable, result.credentials_ok, result.power_state) == (False, None, PowerState.UNKNOWN)
    assert result.error_reason is ProbeFailure.BMC_UNREACHABLE and not result.up
    assert result.message == "BMC of host node-01: no answer within 5 s"


def test_a_refusal_means_the_credentials_do_not_work() -> None:
    result = probe(TARGET, Answers(BmcRefused("login refused: Incorrect password provided")), now)
    assert (result.reachable, result.credentials_ok) == (True, False)
    assert result.error_reason is ProbeFailure.BMC_REFUSED and not result.up


def test_a_refusal_that_may_pass_is_no_verdict_on_the_credentials() -> None:
    result = probe(TARGET, Answers(BmcRefused("failed on the BMC (HTTP 503)", retryable=True)), now)
    assert (result.reachable, result.credentials_ok) == (True, None)
    assert result.error_reason is ProbeFailure.BMC_REFUSED


def test_results_survive_json() -> None:
    for result in (
        probe(TARGET, Answers(PowerState.ON), now),
        probe(TARGET, Answers(BmcUnreachable("no answer")), now),
    ):
        assert ProbeResult.from_json(result.to_json()) == result


def test_a_host_without_bmc_or_with_an_unresolvable_password_is_not_probed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LZ_TEST_MISSING_PW", raising=False)
    spec = parse_inventory(
        {
            "segments": [
                {
                    "name": "s",
                    "hosts": [
                        {"name": "no-bmc"},
                        {
                            "name": "no-pw",
                            "bmc": {
                                "address": "10.0.0.12",
                                "username": "admin",
                                "password": {"env": "LZ_TEST_MISSING_PW"},
                            },
                        },
                    ],
                }
            ]
        }
    )
    no_bmc, no_pw = spec.segments[0].hosts
    reader = Answers(PowerState.ON)

    first = probe_host(no_bmc, lambda driver: reader, now)
    second = probe_host(no_pw, lambda driver: reader, now)

    assert (first.error_reason, first.reachable, first.credentials_ok) == (ProbeFailure.NO_BMC, False, None)
    assert second.error_reason is ProbeFailure.FENCE_CONFIG_INVALID
    assert "LZ_TEST_MISSING_PW" in second.message and second.bmc == "10.0.0.12:623"
    assert reader.reads == 0


def test_an_unknown_driver_is_a_configuration_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LZ_TEST_PW", "s3cret-pw")
    spec = parse_inventory(
        {
            "segments": [
                {
                    "name": "s",
                    "hosts": [
                        {
                            "name": "node-01",
                            "bmc": {
                                "address": "10.0.0.11",
                                "username": "admin",
                                "password": {"env": "LZ_TEST_PW"},
                            },
                        }
                    ],
                }
            ]
        }
    )

    def no_driver(driver: str) -> PowerReader:
        raise ConfigError(f"bmc.driver: unknown fence driver {driver!r}")

    result = probe_host(spec.segments[0].hosts[0], no_driver, now)
    assert (
        result.error_reason is ProbeFailure.FENCE_CONFIG_INVALID and "unknown fence driver" in result.message
    )


def test_probe_all_keeps_to_its_parallelism_and_the_host_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LZ_TEST_PW", "s3cret-pw")
    names = [f"node-{n:02d}" for n in range(1, 10)]
    bmc = {"address": "10.0.0.1", "username": "admin", "password": {"env": "LZ_TEST_PW"}}
    hosts = parse_inventory({"segments": [{"name": "s", "hosts": [{"name": n, "bmc": bmc} for n in names]}]})
    parallel = 3
    # Every read waits until `parallel` reads are in flight: the round only completes if the
    # pool really runs that many at once, and never more (checked under the lock).
    barrier = threading.Barrier(parallel, timeout=60)
    lock = threading.Lock()
    in_flight = 0
    most = 0

    class Reader:
        def power_state(self, target: BmcTarget) -> PowerState:
            nonlocal in_flight, most
            with lock:
                in_flight += 1
                most = max(most, in_flight)
            barrier.wait()
            with lock:
                in_flight -= 1
            return PowerState.ON

    results = probe_all(hosts.segments[0].hosts, lambda driver: Reader(), now, parallel=parallel)

    assert [r.host for r in results] == names
    assert all(r.up for r in results)
    assert most == parallel


def test_parallel_must_be_positive() -> None:
    with pytest.raises(ValueError, match="parallel"):
        probe_all([], lambda driver: Answers(PowerState.ON), now, parallel=0)


@pytest.mark.parametrize(
    ("driver", "address", "port", "shown"),
    [
        ("ipmi", "10.0.0.11", 623, "10.0.0.11:623"),
        (
            "redfish",
            "https://10.0.0.11/redfish/v1/Systems/1",
            623,
            "https://10.0.0.11:443/redfish/v1/Systems/1",
        ),
        ("redfish", "https://admin:s3cret-pw@10.0.0.11", 623, "(invalid Redfish address)"),
    ],
)
def test_bmcs_are_described_without_secrets(driver: str, address: str, port: int, shown: str) -> None:
    assert describe_bmc(driver, address, port) == shown
