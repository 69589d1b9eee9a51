"""RQ entry points: the job boundary. Builds services, takes the record's lease, runs the
workflow, and turns anything unexpected into an `error` record instead of a silent loss."""

from __future__ import annotations

import logging
import os

from receiver.bootstrap import Services, build
from receiver.domain.alerts import NotificationType
from receiver.domain.reasons import Reason
from receiver.domain.record import Status
from receiver.errors import LazarusError
from receiver.settings import Settings, load_settings
from receiver.workflow import host_recovery, instance_recovery, process_recovery
from receiver.workflow.context import Aborted, Lease, LeaseLost, RecoveryContext
from receiver.workflow.deps import HostRecoveryDeps

log = logging.getLogger(__name__)

# Set by `lazarus worker` before it starts working, inherited by forked work-horses.
_services: Services | None = None


def _forget_connections_in_child() -> None:
    # The worker's prober thread uses Nova from the parent process; each RQ work-horse is a
    # fork of it and must open its own connection rather than share the parent's sockets.
    if _services is not None:
        _services.forget_connections()


os.register_at_fork(after_in_child=_forget_connections_in_child)


def configure(services: Services) -> None:
    global _services  # noqa: PLW0603 - the worker process's one composition root
    _services = services


def _current() -> Services:
    global _services  # noqa: PLW0603
    if _services is None:
        settings: Settings = load_settings()
        _services = build(settings)
    return _services


def run_recovery(notification_uuid: str) -> str:
    """Run (or resume) one recovery. Returns its final status."""
    services = _current()
    ttl = services.settings.worker.lease_ttl_s
    token = services.store.acquire_lease(notification_uuid, ttl)
    if token is None:
        log.info("another worker is running this recovery", extra={"notification_uuid": notification_uuid})
        return "skipped"
    lease = Lease(services.store, notification_uuid, token, ttl).start()
    ctx = RecoveryContext(
        services.store, services.metrics, services.clock, lease, notification_uuid, events=services.events
    )
    try:
        record = ctx.record()
        if record.status.is_open or record.status is Status.ERROR:
            ctx.checkpoint()  # aborted while queued: end it before touching anything
        if record.type is NotificationType.COMPUTE_HOST:
            deps = HostRecoveryDeps(
                inventory=services.inventory,
                compute=services.compute,
                power=services.power,
                settings=services.settings,
            )
            record = host_recovery.run(ctx, deps)
        elif record.type is NotificationType.PROCESS:
            record = process_recovery.run(
                ctx,
                process_recovery.ProcessRecoveryDeps(
                    inventory=services.inventory, compute=services.compute, policy=services.settings.process
                ),
            )
        else:
            record = instance_recovery.run(
                ctx,
                instance_recovery.InstanceRecoveryDeps(
                    compute=services.compute, policy=services.settings.instance
                ),
            )
        return record.status.value
    except Aborted as exc:
        log.warning("recovery aborted", extra={"notification_uuid": notification_uuid, "by": exc.by})
        ended = ctx.finish(Status.FAILED, Reason.ABORTED, f"{exc.message}; what was done before stays done")
        return ended.status.value
    except LeaseLost:
        log.warning(
            "lease lost; leaving the recovery to its new owner",
            extra={"notification_uuid": notification_uuid},
        )
        return "lease_lost"
    except Exception as exc:
        # The job boundary: record the error (kept open for one re-run by the reconciler).
        log.exception("recovery crashed", extra={"notification_uuid": notification_uuid})
        try:
            # Only our own messages reach the record: a library's text might carry a secret.
            detail = exc.message if isinstance(exc, LazarusError) else "see the worker log"
            ctx.finish(Status.ERROR, Reason.INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {detail}")
        except Exception:
            log.exception("could not record the error", extra={"notification_uuid": notification_uuid})
        raise
    finally:
        lease.release()
