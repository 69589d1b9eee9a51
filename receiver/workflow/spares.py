"""Taking reserved spares into service, as Masakari's reserved_host method does.

For each spare a recovery uses: optionally add it to the failed host's aggregates (Masakari's
`add_reserved_host_to_aggregate`: a spare outside them may be refused by the scheduler's
aggregate filters), enable its nova-compute service (spares are kept disabled so nothing
else lands there), then mark it no longer reserved. All of it is idempotent, so a resumed
recovery simply does it again; none of it is undone on failure (Masakari neither): a spare
once taken is in service.
"""

from __future__ import annotations

import threading
from functools import partial

from receiver.errors import ComputeError, ComputeRejected, NotFound
from receiver.workflow.context import RecoveryContext
from receiver.workflow.deps import HostRecoveryDeps
from receiver.workflow.retry import retry_transient


def enable_reason(uuid: str) -> str:
    return f"lazarus: reserved spare taken into service by recovery {uuid}"


def take_into_service(ctx: RecoveryContext, deps: HostRecoveryDeps, spare: str, failed: str) -> str | None:
    """Make `spare` able to receive evacuations; None when ready, else why it cannot be used."""
    compute = deps.compute()
    try:
        service = retry_transient(lambda: compute.service(spare))
        if service.state != "up":
            return f"spare {spare}'s nova-compute is down"
        if deps.settings.evacuation.add_reserved_host_to_aggregate:
            _join_aggregates(ctx, deps, spare, failed)
        if service.status != "enabled":
            ctx.checkpoint()
            retry_transient(lambda: compute.enable(service))
    except NotFound:
        return f"Nova has no nova-compute service on spare {spare}"
    except ComputeError as exc:
        kind = "refused" if isinstance(exc, ComputeRejected) else "failed"
        return f"Nova {kind} taking spare {spare} into service: {exc.message}"
    deps.inventory.unreserve(spare, ctx.clock.now())
    ctx.step(
        "spare",
        "succeeded",
        f"spare {spare} enabled in Nova and no longer reserved ({enable_reason(ctx.uuid)})",
    )
    return None


def _join_aggregates(ctx: RecoveryContext, deps: HostRecoveryDeps, spare: str, failed: str) -> None:
    compute = deps.compute()
    for aggregate in retry_transient(compute.aggregates):
        if failed in aggregate.hosts and spare not in aggregate.hosts:
            ctx.checkpoint()
            retry_transient(partial(compute.add_to_aggregate, aggregate.id, spare))
            ctx.step("spare", "progress", f"spare {spare} added to aggregate {aggregate.name} of {failed}")


UNUSABLE = "spare_unusable:"  # mark prefix: a spare this recovery could not take into service


class SparePool:
    """The reserved spares a recovery may evacuate to: its plan's spares, then the segment's
    other free spares, taken on demand when a move is retried. A spare that could not be taken
    into service is marked on the record and never offered again, by this worker or a
    successor. Thread-safe: moves run concurrently."""

    def __init__(
        self, ctx: RecoveryContext, deps: HostRecoveryDeps, failed: str, planned: list[str], *, taken: bool
    ) -> None:
        """`taken`: the planned spares were already taken into service (the evacuation phase)."""
        self._ctx = ctx
        self._deps = deps
        self._failed = failed
        self._planned = list(planned)
        self._ready: set[str] = set(planned) if taken else set()
        self._lock = threading.Lock()

    def unusable(self) -> set[str]:
        return {k.removeprefix(UNUSABLE) for k in self._ctx.record().marks if k.startswith(UNUSABLE)}

    def options(self) -> tuple[str, ...]:
        """Spares in the order to try them: the plan's first."""
        from receiver.workflow.preflight import free_spares

        host = self._deps.inventory.host(self._failed)
        more = free_spares(self._ctx, self._deps, host) if host is not None else []
        unusable = self.unusable()
        ordered = dict.fromkeys([*self._planned, *more])
        return tuple(s for s in ordered if s not in unusable)

    def prepare(self, spare: str) -> str | None:
        """Take `spare` into service; None when it is ready, else why not (recorded)."""
        with self._lock:
            if spare in self._ready:
                return None
            holder = self._ctx.store.claim_spare(spare, self._ctx.uuid)
            problem = (
                f"spare {spare} is held by recovery {holder}"
                if holder != self._ctx.uuid
                else take_into_service(self._ctx, self._deps, spare, self._failed)
            )
            if problem is None:
                self._ready.add(spare)
                return None
            now = self._ctx.clock.now()
            self._ctx.update(lambda r: r.mark(UNUSABLE + spare, problem, now))
            self._ctx.step("spare", "failed", problem)
            return problem
