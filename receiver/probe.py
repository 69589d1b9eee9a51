"""The BMC probe: find a broken BMC before the night it is needed.

Each host's BMC is asked for its power state through the host's own fence driver, with the
credentials a fence would use: an answer proves the BMC is reachable and takes the login.
The probe only READS: `probe` takes a `PowerReader`, which has no power-changing method, so
that it never switches anything is a property of its type, not only of its code. (A BMC that
answers reads but refuses power commands looks healthy here: only a fence drill shows that.)

Results live in Redis (``P`` = settings.key_prefix), so any receiver can expose them::

    P:probe:<host>   the host's last ProbeResult, JSON (expires after max_age_s)
    P:probes         ZSET host -> checked_at: the hosts the metrics and `host show` list
    P:probes:round   who runs the current round (SET NX PX): one prober per interval, cluster-wide

and `BmcProbeCollector` exposes, one series per inventory host (bounded by the host count)::

    lazarus_bmc_probe_up{host}                 1 when the BMC answered and took the login, else 0
    lazarus_bmc_probe_timestamp_seconds{host}  when that was last checked (Unix time)
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from receiver.adapters.redfish import describe_address
from receiver.adapters.redis_store import translate_errors
from receiver.domain.model import BmcTarget, PowerState
from receiver.errors import BmcUnreachable, ConfigError, FenceError, StoreUnavailable
from receiver.inventory import HostSpec

log = logging.getLogger(__name__)

DEFAULT_PARALLEL = 8
DEFAULT_MAX_AGE_S = 3600.0


class PowerReader(Protocol):
    """The only part of a `PowerController` the probe may use. Every PowerController is one."""

    def power_state(self, target: BmcTarget) -> PowerState: ...


class ProbeFailure(enum.StrEnum):
    """Why a probe did not come back healthy: a bounded vocabulary (labels, filters)."""

    BMC_UNREACHABLE = "bmc_unreachable"  # no answer in time
    BMC_REFUSED = "bmc_refused"  # answered, refused the login or the read
    FENCE_CONFIG_INVALID = "fence_config_invalid"  # password reference unresolved, unknown driver
    NO_BMC = "no_bmc"  # the inventory gives this host no fence method


@dataclass(frozen=True)
class ProbeResult:
    host: str
    reachable: bool
    credentials_ok: bool | None  # None: not known (no answer, or the BMC failed before judging)
    power_state: PowerState
    error_reason: ProbeFailure | None
    checked_at: datetime
    driver: str | None = None
    bmc: str | None = None  # address:port, for humans
    message: str = ""  # the error's message: adapters never put a secret in one
    duration_s: float = 0.0

    @property
    def up(self) -> bool:
        return self.reachable and self.credentials_ok is True

    def to_json(self) -> str:
        data = asdict(self)
        data["checked_at"] = self.checked_at.isoformat()
        return json.dumps(data)

    @classmethod
    def from_json(cls, raw: str | bytes) -> ProbeResult:
        data: dict[str, Any] = json.loads(raw)
        reason = data.get("error_reason")
        return cls(
            host=data["host"],
            reachable=bool(data["reachable"]),
            credentials_ok=data.get("credentials_ok"),
            power_state=PowerState(data["power_state"]),
            error_reason=None if reason is None else ProbeFailure(reason),
            checked_at=datetime.fromisoformat(data["checked_at"]),
            driver=data.get("driver"),
            bmc=data.get("bmc"),
            message=data.get("message", ""),
            duration_s=float(data.get("duration_s", 0.0)),
        )


def probe(target: BmcTarget, power: PowerReader, now: Callable[[], datetime]) -> ProbeResult:
    """Read `target`'s power state once, within the adapter's own timeout; never raises a FenceError."""
    started = time.monotonic()
    reason: ProbeFailure | None = None
    credentials_ok: bool | None = True
    message = ""
    try:
        state = power.power_state(target)
    except BmcUnreachable as error:
        state, reason, credentials_ok, message = (
            PowerState.UNKNOWN,
            ProbeFailure.BMC_UNREACHABLE,
            None,
            error.message,
        )
    except FenceError as error:
        # It answered. A refusal it says may pass (a 5xx) is no verdict on the credentials.
        credentials_ok = None if error.retryable else False
        state, reason, message = PowerState.UNKNOWN, ProbeFailure.BMC_REFUSED, error.message
    result = ProbeResult(
        host=target.host,
        reachable=reason is not ProbeFailure.BMC_UNREACHABLE,
        credentials_ok=credentials_ok,
        power_state=state,
        error_reason=reason,
        checked_at=now(),
        driver=target.driver,
        bmc=describe_bmc(target.driver, target.address, target.port),
        message=message,
        duration_s=time.monotonic() - started,
    )
    log.info(
        "bmc probe",
        extra={"host": target.host, "up": result.up, "reason": reason, "power": state.value},
    )
    return result


def probe_host(
    host: HostSpec, power_for_driver: Callable[[str], PowerReader], now: Callable[[], datetime]
) -> ProbeResult:
    """Probe one inventory host: its fence method, resolved as a fence would resolve it."""
    if host.bmc is None:
        return _not_probed(host.name, ProbeFailure.NO_BMC, "no BMC in the inventory", now())
    bmc = describe_bmc(host.bmc.driver, host.bmc.address, host.bmc.port)
    try:
        target = host.bmc.target(host.name)  # resolves the password reference now
        power = power_for_driver(target.driver)
    except ConfigError as error:
        reason = ProbeFailure.FENCE_CONFIG_INVALID
        return _not_probed(host.name, reason, error.message, now(), driver=host.bmc.driver, bmc=bmc)
    return probe(target, power, now)


def probe_all(
    hosts: Iterable[HostSpec],
    power_for_driver: Callable[[str], PowerReader],
    now: Callable[[], datetime],
    *,
    store: ProbeStore | None = None,
    parallel: int = DEFAULT_PARALLEL,
) -> list[ProbeResult]:
    """Probe every host, at most `parallel` at once (each bounded by its adapter's timeout);
    store the results, forgetting hosts no longer in the inventory. Results in host order."""
    if parallel < 1:
        raise ValueError("parallel must be at least 1")
    hosts = list(hosts)
    if not hosts:
        results: list[ProbeResult] = []
    else:
        with ThreadPoolExecutor(
            max_workers=min(parallel, len(hosts)), thread_name_prefix="bmc-probe"
        ) as pool:
            results = list(pool.map(lambda h: probe_host(h, power_for_driver, now), hosts))
    if store is not None:
        store.save(results)
        store.keep_only({host.name for host in hosts})
    return results


def _not_probed(
    host: str,
    reason: ProbeFailure,
    message: str,
    at: datetime,
    *,
    driver: str | None = None,
    bmc: str | None = None,
) -> ProbeResult:
    return ProbeResult(
        host=host,
        reachable=False,
        credentials_ok=None,
        power_state=PowerState.UNKNOWN,
        error_reason=reason,
        checked_at=at,
        driver=driver,
        bmc=bmc,
        message=message,
    )


def describe_bmc(driver: str, address: str, port: int) -> str:
    """Where a BMC is, for humans: address:port, or a Redfish service's origin and system."""
    if driver == "redfish":
        return describe_address(address, port)
    return f"{address}:{port}"


class ProbeStore:
    """The last probe of each host, in Redis."""

    def __init__(
        self, client: redis.Redis, prefix: str = "lazarus", max_age_s: float = DEFAULT_MAX_AGE_S
    ) -> None:
        if max_age_s <= 0:
            raise ValueError("max_age_s must be positive")
        self.redis = client
        self.prefix = prefix
        self.max_age_s = max_age_s

    @property
    def _index(self) -> str:
        return f"{self.prefix}:probes"

    def _key(self, host: str) -> str:
        return f"{self.prefix}:probe:{host}"

    def save(self, results: Iterable[ProbeResult]) -> None:
        results = list(results)
        if not results:
            return
        ttl_ms = int(self.max_age_s * 1000)
        with translate_errors(), self.redis.pipeline(transaction=True) as pipe:
            for result in results:
                pipe.set(self._key(result.host), result.to_json(), px=ttl_ms)
                pipe.zadd(self._index, {result.host: result.checked_at.timestamp()})
            newest = max(r.checked_at.timestamp() for r in results)
            pipe.zremrangebyscore(self._index, "-inf", f"({newest - self.max_age_s}")
            pipe.execute()

    def keep_only(self, hosts: set[str]) -> None:
        """Forget hosts that left the inventory, so their series leave the metrics."""
        with translate_errors():
            gone = [h.decode() for h in self.redis.zrange(self._index, 0, -1) if h.decode() not in hosts]
            if gone:
                with self.redis.pipeline(transaction=True) as pipe:
                    pipe.zrem(self._index, *gone)
                    pipe.delete(*(self._key(h) for h in gone))
                    pipe.execute()

    def get(self, host: str) -> ProbeResult | None:
        with translate_errors():
            raw = self.redis.get(self._key(host))
        return None if raw is None else ProbeResult.from_json(raw)

    def all(self) -> list[ProbeResult]:
        """Every host's last probe still kept, by host name."""
        with translate_errors():
            hosts = sorted(h.decode() for h in self.redis.zrange(self._index, 0, -1))
            raws = self.redis.mget([self._key(h) for h in hosts]) if hosts else []
        return [ProbeResult.from_json(raw) for raw in raws if raw is not None]

    def claim_round(self, owner: str, interval_s: float) -> bool:
        """True for the one caller, cluster-wide, that should run the round due now. The claim
        lapses a little before the interval, so its own owner's next wake-up finds it free."""
        with translate_errors():
            claim_ms = max(1, int(interval_s * 900))
            return bool(self.redis.set(f"{self._index}:round", owner, nx=True, px=claim_ms))


def probe_forever(
    run_round: Callable[[], object], store: ProbeStore, owner: str, interval_s: float, stop: threading.Event
) -> None:
    """Run a round every `interval_s` while `stop` is unset, when this process wins the round.
    A thread's boundary: a failed round is logged and the next one still comes."""
    while True:
        try:
            if store.claim_round(owner, interval_s):
                run_round()
        except Exception:  # the prober thread's boundary: log and keep going
            log.exception("bmc probe round failed")
        if stop.wait(interval_s):
            return


def probe_metrics(results: Iterable[ProbeResult]) -> list[GaugeMetricFamily]:
    """The probe's metric families, for any collector: one series per host probed."""
    up = GaugeMetricFamily(
        "lazarus_bmc_probe_up",
        "1 when the host's BMC answered the last probe and took the login, else 0.",
        labels=["host"],
    )
    checked = GaugeMetricFamily(
        "lazarus_bmc_probe_timestamp_seconds", "When the host's BMC was last probed.", labels=["host"]
    )
    for result in results:
        up.add_metric([result.host], 1.0 if result.up else 0.0)
        checked.add_metric([result.host], result.checked_at.timestamp())
    return [up, checked]


class BmcProbeCollector(Collector):
    """`lazarus_bmc_probe_up{host}` and `lazarus_bmc_probe_timestamp_seconds{host}` from the store;
    nothing while Redis does not answer (lazarus_store_up says so)."""

    def __init__(self, store: ProbeStore) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            results = self.store.all()
        except (StoreUnavailable, redis.RedisError):
            return
        yield from probe_metrics(results)
