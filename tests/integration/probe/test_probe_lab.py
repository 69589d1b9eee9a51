"""The BMC probe against the lab's BMC simulators (real RMCP+), with results in a real Redis."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from receiver.adapters.ipmi import IpmiPower
from receiver.domain.model import PowerState
from receiver.errors import ConfigError
from receiver.inventory import HostSpec, load_inventory, parse_inventory
from receiver.lab.manifest import LabManifest
from receiver.lab.testing import LabControl, running_lab, wait_until
from receiver.probe import (
    BmcProbeCollector,
    PowerReader,
    ProbeFailure,
    ProbeStore,
    probe_all,
    probe_forever,
)

pytestmark = pytest.mark.integration

HOSTS = ("node-01", "node-02", "node-03", "node-04", "node-05")
BMC_TIMEOUT_S = 3.0  # short, so a mute BMC costs little; a healthy answer takes well under it


@dataclass
class Lab:
    manifest: LabManifest
    control: LabControl
    power: IpmiPower

    def hosts(self) -> list[HostSpec]:
        return list(load_inventory(self.manifest.inventory).segments[0].hosts)

    def drivers(self, driver: str) -> PowerReader:
        if driver != "ipmi":
            raise ConfigError(f"bmc.driver: unknown fence driver {driver!r}")
        return self.power


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    options = {"hosts": HOSTS, "servers_per_host": 1, "bmc_hosts": HOSTS[:4]}  # node-05 has no BMC
    with running_lab(tmp_path_factory.mktemp("probe-lab"), **options) as manifest:
        yield Lab(manifest, LabControl(manifest), IpmiPower(timeout_s=BMC_TIMEOUT_S))


@pytest.fixture
def faults(lab: Lab) -> Iterator[LabControl]:
    yield lab.control
    lab.control.clear_faults()


def powered(lab: Lab) -> dict[str, str]:
    return {name: host["power"] for name, host in lab.control.status()["hosts"].items()}


def test_a_round_reports_each_bmc_and_switches_nothing(
    lab: Lab, faults: LabControl, redis_client: redis.Redis
) -> None:
    faults.bmc_fault("node-02", "mute")
    faults.bmc_fault("node-03", "refuse")
    faults.power("node-04", on=False)  # a healthy BMC of a host that is off: it must stay off
    store = ProbeStore(redis_client, "lztest")
    before = lab.control.status()["bmc_requests"]
    try:
        results = {r.host: r for r in probe_all(lab.hosts(), lab.drivers, _Clock().now, store=store)}
        after = powered(lab)
        counted = lab.control.status()["bmc_requests"]
    finally:
        faults.power("node-04", on=True)

    healthy, mute, refusing, off, no_bmc = (results[h] for h in HOSTS)
    assert (healthy.up, healthy.power_state, healthy.error_reason) == (True, PowerState.ON, None)
    assert (off.up, off.power_state) == (True, PowerState.OFF)
    assert (mute.reachable, mute.credentials_ok) == (False, None)
    assert mute.error_reason is ProbeFailure.BMC_UNREACHABLE
    assert "node-02" in mute.message and f"within {BMC_TIMEOUT_S:g} s" in mute.message
    # A BMC that refuses only power commands still answers reads: a read-only probe cannot
    # tell (a fence drill can), and reports it healthy.
    assert (refusing.up, refusing.power_state) == (True, PowerState.ON)
    assert (no_bmc.error_reason, no_bmc.reachable) == (ProbeFailure.NO_BMC, False)
    # Nothing was switched: the hosts that were on are on, the one that was off is off, and
    # the BMCs' own counters saw power reads and not one power command (Chassis Control).
    assert after == {**dict.fromkeys(HOSTS, "on"), "node-04": "off"}
    with_bmc = ("node-01", "node-03", "node-04")  # answering BMCs (node-02 is mute)
    assert all(counted[h]["power_reads"] > before[h]["power_reads"] for h in with_bmc)
    assert {h: counted[h]["power_changes"] - before[h]["power_changes"] for h in HOSTS[:4]} == dict.fromkeys(
        HOSTS[:4], 0
    )

    assert {r.host: r for r in store.all()} == results
    assert store.get("node-02") == mute


def test_wrong_credentials_are_reported(lab: Lab, tmp_path: Path, redis_client: redis.Redis) -> None:
    wrong = tmp_path / "wrong-password"
    wrong.write_text("Wr0ng-" + secrets.token_hex(6), encoding="utf-8")
    data = load_inventory(lab.manifest.inventory).model_dump(mode="json")
    data["segments"][0]["hosts"][0]["bmc"]["password"] = {"file": str(wrong)}
    hosts = parse_inventory(data).segments[0].hosts

    result = probe_all(hosts[:1], lab.drivers, _Clock().now)[0]

    assert (result.reachable, result.credentials_ok, result.error_reason) == (
        True,
        False,
        ProbeFailure.BMC_REFUSED,
    )
    assert "Incorrect password provided" in result.message
    assert wrong.read_text(encoding="utf-8") not in result.to_json()
    assert powered(lab)["node-01"] == "on"


def test_the_metrics_follow_the_last_round_and_the_inventory(
    lab: Lab, faults: LabControl, redis_client: redis.Redis
) -> None:
    store = ProbeStore(redis_client, "lztest")
    clock = _Clock()
    faults.bmc_fault("node-02", "mute")
    probe_all(lab.hosts(), lab.drivers, clock.now, store=store)

    values = samples(store)

    assert {h: values[("lazarus_bmc_probe_up", h)] for h in HOSTS} == {
        "node-01": 1.0,
        "node-02": 0.0,
        "node-03": 1.0,
        "node-04": 1.0,
        "node-05": 0.0,
    }
    assert values[("lazarus_bmc_probe_timestamp_seconds", "node-01")] == clock.at.timestamp()

    # node-02's BMC recovers and node-05 leaves the inventory: the next round says so.
    faults.bmc_fault("node-02", "none")
    later = _Clock(1000)
    probe_all(lab.hosts()[:4], lab.drivers, later.now, store=store)
    values = samples(store)

    assert values[("lazarus_bmc_probe_up", "node-02")] == 1.0
    assert values[("lazarus_bmc_probe_timestamp_seconds", "node-02")] == later.at.timestamp()
    assert {host for _, host in values} == set(HOSTS[:4]) and store.get("node-05") is None


def test_metrics_are_absent_rather_than_wrong_without_redis() -> None:
    from tests.redis_server import free_port

    unreachable = redis.Redis(port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5)
    assert samples(ProbeStore(unreachable, "lztest")) == {}


def test_one_prober_per_interval_and_a_failed_round_is_not_the_last(redis_client: redis.Redis) -> None:
    store = ProbeStore(redis_client, "lztest")
    assert store.claim_round("worker-a", 60)
    assert not store.claim_round("worker-b", 60)  # someone runs this round already

    rounds: list[int] = []
    stop = threading.Event()

    def run_round() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("first round breaks")

    fresh = ProbeStore(redis_client, "lztest-loop")
    thread = threading.Thread(
        target=probe_forever, args=(run_round, fresh, "worker-a", 0.2, stop), daemon=True
    )
    thread.start()
    wait_until(lambda: len(rounds) >= 3, timeout=60, what="three probe rounds")
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()


def samples(store: ProbeStore) -> dict[tuple[str, str], float]:
    """What a scrape of the collector exposes: (metric, host) -> value."""
    registry = CollectorRegistry()
    registry.register(BmcProbeCollector(store))
    text = generate_latest(registry).decode()
    return {
        (sample.name, sample.labels["host"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class _Clock:
    def __init__(self, offset_s: float = 0) -> None:
        self.at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC) + timedelta(seconds=offset_s)

    def now(self) -> datetime:
        return self.at
