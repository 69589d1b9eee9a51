"""Fence drill: prove, per host and with a date, that its fence really works.

For a host on maintenance with no instances: power it off through the real fence path, read
back OFF, power it on, read back ON, and store the evidence. "Fencing is real and tested" is
then a recorded fact per host, not a belief.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime

import redis

from receiver.adapters.redis_inventory import InventoryStore
from receiver.adapters.redis_store import translate_errors
from receiver.domain.model import PowerState
from receiver.domain.record import iso
from receiver.errors import ConfigError, FenceError, LazarusError
from receiver.ports import Compute, PowerController
from receiver.workflow.context import Clock
from receiver.workflow.fencing import poll_power
from receiver.workflow.retry import retry_transient


class DrillRefused(LazarusError):
    """The host is not in a state where cutting its power is harmless."""


@dataclass(frozen=True)
class DrillResult:
    host: str
    passed: bool
    by: str
    started_at: str
    ended_at: str
    method: str
    bmc: str
    off_after_s: float | None
    on_after_s: float | None
    message: str


class DrillStore:
    def __init__(self, client: redis.Redis, prefix: str = "lazarus") -> None:
        self.redis = client
        self.prefix = prefix

    def save(self, result: DrillResult) -> None:
        with translate_errors():
            self.redis.set(f"{self.prefix}:drill:{result.host}", json.dumps(asdict(result)))

    def last(self, host: str) -> DrillResult | None:
        with translate_errors():
            raw = self.redis.get(f"{self.prefix}:drill:{host}")
        return None if raw is None else DrillResult(**json.loads(raw))


def drill(
    host_name: str,
    by: str,
    *,
    inventory: InventoryStore,
    compute: Callable[[], Compute],
    power_for: Callable[[str], PowerController],
    clock: Clock,
    store: DrillStore,
    timeout_s: float = 120.0,
    poll_interval_s: float = 1.0,
) -> DrillResult:
    host = inventory.host(host_name)
    if host is None:
        raise DrillRefused(f"host {host_name} is not in the inventory")
    if not host.on_maintenance:
        raise DrillRefused(f"host {host_name} is not on maintenance; a drill cuts its power")
    servers = retry_transient(lambda: compute().servers_on(host_name))
    if servers:
        raise DrillRefused(f"host {host_name} still has {len(servers)} instances; move them first")
    if host.spec.bmc is None:
        raise DrillRefused(f"host {host_name} has no fence method to drill")
    try:
        target = host.spec.bmc.target(host_name)
    except ConfigError as exc:
        raise DrillRefused(exc.message) from None
    power = power_for(target.driver)
    bmc = f"{target.address}:{target.port}"
    started = clock.now()
    off_s = on_s = None
    try:
        power.power_off(target)
        off = poll_power(power, target, PowerState.OFF, deadline=_deadline(clock, timeout_s), clock=clock,
                         interval_s=poll_interval_s)  # fmt: skip
        if off is PowerState.OFF:
            off_s = _since(started, clock.now())
            power.power_on(target)
            on = poll_power(power, target, PowerState.ON, deadline=_deadline(clock, timeout_s), clock=clock,
                            interval_s=poll_interval_s)  # fmt: skip
            on_s = _since(started, clock.now()) if on is PowerState.ON else None
            message = (
                "powered off, read back OFF, powered on, read back ON"
                if on_s is not None
                else (f"powered off and read back OFF, but still {on.value} after power-on")
            )
        else:
            message = f"BMC still reports {off.value} after power-off"
    except FenceError as exc:
        message = exc.message
    result = DrillResult(
        host=host_name, passed=off_s is not None and on_s is not None, by=by, started_at=iso(started),
        ended_at=iso(clock.now()), method=target.driver, bmc=bmc, off_after_s=off_s, on_after_s=on_s,
        message=message,
    )  # fmt: skip
    store.save(result)
    return result


def _deadline(clock: Clock, timeout_s: float) -> float:
    return clock.now().timestamp() + timeout_s


def _since(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds(), 3)
