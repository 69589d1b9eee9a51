"""Fencing: power the host off and *read back* OFF, or stop the recovery.

Safety rule 1: the only proof that a host is off is the BMC answering OFF after the
power-off. A BMC that times out, refuses, or keeps saying ON ends the recovery as
`failed` before Nova is touched. fence_ipmilan warns that BMCs "might report success before
the node is powered off": a successful command proves nothing on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from receiver.domain.model import BmcTarget, PowerState
from receiver.domain.reasons import Reason
from receiver.domain.record import FenceAttempt, iso
from receiver.errors import BmcRefused, BmcUnreachable, FenceError
from receiver.ports import PowerController
from receiver.probe import describe_bmc
from receiver.settings import FencingSettings
from receiver.workflow.context import Clock, RecoveryContext


@dataclass(frozen=True)
class FenceResult:
    confirmed_off: bool
    reason: Reason | None
    message: str


def fence(
    ctx: RecoveryContext, power: PowerController, target: BmcTarget, policy: FencingSettings
) -> FenceResult:
    """Up to `power_off_attempts` rounds of power-off then read-back, within the timeout."""
    bmc = describe_bmc(target.driver, target.address, target.port)
    deadline = ctx.clock.now().timestamp() + policy.power_off_timeout_s
    last = FenceResult(False, Reason.BMC_UNREACHABLE, "no fence attempt was made")
    for attempt in range(1, policy.power_off_attempts + 1):
        ctx.checkpoint()
        started = ctx.clock.now()
        before = _read(power, target)
        ctx.step(
            "fence",
            "started",
            f"attempt {attempt}: powering {target.host} off via {target.driver} at {bmc} "
            f"(power {before.value} before)",
            bmc=bmc,
            attempt=attempt,
        )
        after = PowerState.UNKNOWN
        try:
            power.power_off(target)
            after = _poll_until_off(
                ctx,
                power=power,
                target=target,
                policy=policy,
                deadline=deadline,
                attempts_left=policy.power_off_attempts - attempt + 1,
            )
            if after is PowerState.OFF:
                last = FenceResult(True, None, f"{target.host} powered off; BMC {bmc} reads back OFF")
            else:
                last = FenceResult(
                    False,
                    Reason.POWER_STILL_ON,
                    f"BMC {bmc} still reports {target.host} {after.value.upper()} after power-off",
                )
        except BmcRefused as exc:
            last = FenceResult(False, Reason.BMC_REFUSED, exc.message)
        except BmcUnreachable as exc:
            last = FenceResult(False, Reason.BMC_UNREACHABLE, exc.message)
        except FenceError as exc:
            last = FenceResult(False, Reason.BMC_REFUSED, exc.message)
        outcome = "off_confirmed" if last.confirmed_off else str(last.reason)
        ended = ctx.clock.now()
        evidence = FenceAttempt(
            method=target.driver,
            bmc=bmc,
            power_before=before.value,
            power_after=after.value,
            started_at=iso(started),
            ended_at=iso(ended),
            outcome=outcome,
            message=last.message,
        )
        ctx.update(lambda r, e=evidence, t=ended: r.with_fence_attempt(e, t))  # type: ignore[misc]
        ctx.metrics.fence_attempted(outcome)
        ctx.step(
            "fence",
            "succeeded" if last.confirmed_off else "failed",
            last.message,
            bmc=bmc,
            attempt=attempt,
            outcome=outcome,
        )
        # A refusal will not change by asking again; a silent BMC or a slow power-off might.
        if last.confirmed_off or last.reason is Reason.BMC_REFUSED:
            return last
        if ctx.clock.now().timestamp() >= deadline:
            break
    return last


def _read(power: PowerController, target: BmcTarget) -> PowerState:
    try:
        return power.power_state(target)
    except FenceError:
        return PowerState.UNKNOWN


def _poll_until_off(
    ctx: RecoveryContext,
    *,
    power: PowerController,
    target: BmcTarget,
    policy: FencingSettings,
    deadline: float,
    attempts_left: int,
) -> PowerState:
    """Read the power state until OFF, for this attempt's share of the remaining time."""
    now = ctx.clock.now().timestamp()
    attempt_deadline = now + max((deadline - now) / max(attempts_left, 1), policy.poll_interval_s)
    return poll_power(
        power,
        target,
        PowerState.OFF,
        deadline=attempt_deadline,
        clock=ctx.clock,
        interval_s=policy.poll_interval_s,
    )


def poll_power(
    power: PowerController,
    target: BmcTarget,
    want: PowerState,
    *,
    deadline: float,
    clock: Clock,
    interval_s: float,
) -> PowerState:
    """Read the power state until it is `want` or the deadline (epoch seconds); returns the last read."""
    state = power.power_state(target)
    while state is not want and clock.now().timestamp() < deadline:
        clock.sleep(interval_s)
        state = power.power_state(target)
    return state
