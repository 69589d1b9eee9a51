"""Return to service: the explicit, gated way back for a fenced host (safety rule 5).

Never runs by itself: an operator asks (`lazarus host reinstate NAME`). Each gate refuses with
a reason the operator can act on:
  1. the host was taken out by a recovery, and that recovery has ended;
  2. it is not quarantined for flapping (unless the operator accepts that explicitly);
  3. power it on through its BMC and read back ON;
  4. its nova-compute has started again and cleaned up: no evacuation record from it still
     `done` (Nova refuses to un-force a host until they are `completed`), heartbeat fresh;
  5. then un-force, enable, and clear the maintenance flag, recorded on the recovery record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from receiver.adapters.redis_inventory import InventoryStore
from receiver.adapters.redis_store import RecordStore
from receiver.domain.events import EventKind
from receiver.domain.flap import judge_flap
from receiver.domain.model import ComputeService, PowerState
from receiver.domain.record import Notification, Phase, iso
from receiver.errors import ConfigError, FenceError, LazarusError
from receiver.ports import Compute, EventPublisher, PowerController
from receiver.workflow.context import Clock
from receiver.workflow.fencing import poll_power
from receiver.workflow.retry import retry_transient

log = logging.getLogger(__name__)
_NOT_CLEANED = frozenset({"accepted", "pre-migrating", "running", "done"})


class ReinstateRefused(LazarusError):
    """A gate said no; the message says which and why."""


@dataclass(frozen=True)
class ReinstatePolicy:
    power_on_timeout_s: float = 120.0
    cleanup_timeout_s: float = 600.0
    poll_interval_s: float = 2.0
    flap_window_s: float = 24 * 3600.0
    flap_max: int = 3


@dataclass
class ReinstateDeps:
    store: RecordStore
    inventory: InventoryStore
    compute: Callable[[], Compute]
    power: Callable[[str], PowerController]
    events: EventPublisher
    clock: Clock
    policy: ReinstatePolicy


def reinstate(deps: ReinstateDeps, hostname: str, by: str, *, accept_flapping: bool = False,
              progress: Callable[[str], None] = lambda _: None) -> Notification:  # fmt: skip
    host = deps.inventory.host(hostname)
    if host is None:
        raise ReinstateRefused(f"host {hostname} is not in the inventory")
    if not host.on_maintenance or not host.state.notification_uuid:
        raise ReinstateRefused(f"host {hostname} was not taken out by a recovery; nothing to reinstate")
    uuid = host.state.notification_uuid
    record = deps.store.get(uuid)
    if record.status.is_open:
        raise ReinstateRefused(
            f"recovery {uuid} of {hostname} is still {record.status.value}; let it end first"
        )
    flap = judge_flap(_fence_times(deps.store, hostname), deps.clock.now(), deps.policy.flap_window_s,
                      deps.policy.flap_max)  # fmt: skip
    if flap.quarantined and not accept_flapping:
        raise ReinstateRefused(f"host {hostname} {flap.message}")

    def step(state: str, message: str) -> None:
        now = deps.clock.now()
        deps.store.update(uuid, lambda r: r.log("reinstate", state, message, now))
        log.info(message, extra={"notification_uuid": uuid, "host": hostname, "by": by})
        progress(message)

    step(
        "started",
        f"reinstate of {hostname} requested by {by}" + (" (flapping accepted)" if flap.quarantined else ""),
    )
    try:
        _power_on(deps, hostname, step)
        service = _wait_for_cleanup(deps, hostname, step)
        compute = deps.compute()
        if service.forced_down:
            service = retry_transient(lambda: compute.force_up(service))
        if service.status != "enabled":
            service = retry_transient(lambda: compute.enable(service))
    except ReinstateRefused as exc:
        step("failed", exc.message)
        raise
    now = deps.clock.now()
    deps.inventory.clear_maintenance(hostname, now)
    step("succeeded", f"{hostname} is back in service: compute service up, enabled, not forced down")
    record = deps.store.get(uuid)
    try:
        deps.events.publish(EventKind.REINSTATED, record)
    except Exception:  # the fan-out boundary: telling humans never undoes the reinstate
        log.exception("event not published", extra={"notification_uuid": uuid})
    return record


def _fence_times(store: RecordStore, hostname: str) -> list[datetime]:
    return [
        datetime.fromisoformat(r.created_at)
        for r in store.recent(limit=1000)
        if r.hostname == hostname and r.reached(Phase.FENCED) and r.type.value == "COMPUTE_HOST"
    ]


def _power_on(deps: ReinstateDeps, hostname: str, step: Callable[[str, str], None]) -> None:
    host = deps.inventory.host(hostname)
    if host is None or host.spec.bmc is None:
        step("progress", f"{hostname} has no BMC: power it on by hand; waiting for its compute service")
        return
    try:
        target = host.spec.bmc.target(hostname)
    except ConfigError as exc:
        raise ReinstateRefused(exc.message) from None
    power = deps.power(target.driver)
    try:
        before = power.power_state(target)
        if before is not PowerState.ON:
            power.power_on(target)
        deadline = deps.clock.now().timestamp() + deps.policy.power_on_timeout_s
        after = poll_power(
            power,
            target,
            PowerState.ON,
            deadline=deadline,
            clock=deps.clock,
            interval_s=deps.policy.poll_interval_s,
        )
    except FenceError as exc:
        raise ReinstateRefused(f"cannot power {hostname} on: {exc.message}") from None
    if after is not PowerState.ON:
        raise ReinstateRefused(f"BMC of {hostname} still reports power {after.value} after power-on")
    step(
        "progress",
        f"{hostname} powered on via {target.driver} at {target.address}:{target.port} "
        f"(power {before.value} -> {after.value})",
    )


def _wait_for_cleanup(deps: ReinstateDeps, hostname: str, step: Callable[[str, str], None]) -> ComputeService:
    """Until nova-compute restarted, cleaned up the evacuated guests, and heartbeats again."""
    compute = deps.compute()
    started = deps.clock.now()
    deadline = started + timedelta(seconds=deps.policy.cleanup_timeout_s)
    while True:
        pending = [
            m for m in retry_transient(lambda: compute.evacuations(hostname)) if m.status in _NOT_CLEANED
        ]
        service = retry_transient(lambda: compute.service(hostname))
        # A forced-down service reads `down` whatever its heartbeat: the heartbeat itself
        # (updated_at newer than our start) proves nova-compute runs again.
        fresh = service.updated_at is not None and service.updated_at > started
        fresh = fresh and (service.forced_down or service.state == "up")
        if not pending and fresh:
            step("progress", f"nova-compute on {hostname} is up and its evacuation records are completed")
            return service
        if deps.clock.now() >= deadline:
            why = (f"{len(pending)} evacuation records from {hostname} not yet completed" if pending
                   else f"nova-compute on {hostname} has not reported up since {iso(started)}")  # fmt: skip
            raise ReinstateRefused(f"gave up after {deps.policy.cleanup_timeout_s:.0f}s: {why}")
        deps.clock.sleep(deps.policy.poll_interval_s)
