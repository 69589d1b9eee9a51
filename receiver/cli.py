"""The `lazarus` command: serve, worker, notifications, inventory, lab."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from receiver import cli_host_ops, cli_inventory, cli_operator
from receiver.errors import ConfigError, LazarusError
from receiver.settings import Settings, load_settings

if TYPE_CHECKING:
    from receiver.bootstrap import Services

log = logging.getLogger(__name__)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(exc.message) from None


def configure_logging_from_env() -> None:
    from receiver import logs

    settings = _settings()
    logs.configure(settings.log_level, settings.log_json, settings.secrets() + settings.webhook.all_tokens())


@click.group()
@click.version_option(package_name="lazarus")
def main() -> None:
    """Lazarus: instance high availability for OpenStack, driven by Prometheus alerts."""


@main.command()
@click.option("--bind", help="host:port (default: serve.bind)")
@click.option("--workers", type=int, help="gunicorn worker processes (default: serve.workers)")
def serve(bind: str | None, workers: int | None) -> None:
    """Run the webhook receiver and read API under gunicorn."""
    settings = _settings()
    configure_logging_from_env()
    # Validate everything the app needs before forking workers: fail fast, name the key.
    from receiver.bootstrap import build
    from receiver.web.app import create_app

    try:
        create_app(build(settings))
    except ConfigError as exc:
        raise click.ClickException(exc.message) from None
    env = dict(os.environ)
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="lazarus-metrics-")
    else:
        # The directory must be wiped between runs (prometheus_client's rule).
        metrics_dir = Path(env["PROMETHEUS_MULTIPROC_DIR"])
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True, exist_ok=True)
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:receiver.web.gunicorn_conf",
        "--bind",
        bind or settings.serve.bind,
        "--workers",
        str(workers or settings.serve.workers),
        "--timeout",
        str(settings.serve.timeout_s),
        "--graceful-timeout",
        "10",
        "--access-logfile",
        "-",
        "receiver.web.app:create_app()",
    ]
    os.execve(sys.executable, args, env)  # noqa: S606 - replaces this process with gunicorn


@main.command()
@click.option("--burst", is_flag=True, help="Exit when the queue is empty (tests, drills).")
@click.option("--name", help="Worker name (default: host and pid).")
def worker(burst: bool, name: str | None) -> None:
    """Run a recovery worker (RQ), with the reconciler that resumes orphaned recoveries."""
    from rq import Worker

    from receiver import jobs
    from receiver.bootstrap import build
    from receiver.reconcile import reconcile_all

    settings = _settings()
    configure_logging_from_env()
    services = build(settings)
    try:
        # Read clouds.yaml and import openstacksdk here, once: a bad cloud stops the worker at
        # start rather than mid-recovery, and forked jobs skip the import. No request is sent,
        # so no connection is shared across the fork.
        services.compute()
    except Exception as exc:  # noqa: BLE001 - the process boundary: openstacksdk config errors named as ours
        raise click.ClickException(
            f"nova.cloud: cannot load the OpenStack cloud: {type(exc).__name__}: {exc}"
        ) from None
    jobs.configure(services)
    lease_ttl = settings.worker.lease_ttl_s
    try:
        reconcile_all(services.store, services.queue, lease_ttl, settings.worker.retention_s)
    except LazarusError as exc:
        raise click.ClickException(f"cannot reach the store: {exc.message}") from None
    stop = threading.Event()

    def reconcile_forever() -> None:
        import logging

        while not stop.wait(settings.worker.reconcile_interval_s):
            try:
                reconcile_all(services.store, services.queue, lease_ttl, settings.worker.retention_s)
            except Exception:  # the reconciler thread's boundary: log and keep going
                logging.getLogger("receiver.reconcile").exception("reconcile pass failed")

    if not burst:
        threading.Thread(target=reconcile_forever, name="reconciler", daemon=True).start()
        if settings.probe.enabled:
            _start_prober(services, stop, name or f"worker-{os.getpid()}")
    # RQ blocks on Redis for minutes while it waits for jobs: it gets its own connections, never
    # the short-timeout pool the reconciler and the prober share (a 0.5 s read timeout there
    # would make an idle worker quit).
    from rq import Queue

    from receiver.adapters.redis_store import connect

    rq_redis = connect(
        settings.redis_url.get_secret_value(),
        sentinels=settings.redis_sentinels,
        master=settings.redis_sentinel_master,
        socket_timeout=None,
    )
    queues = [Queue(services.queue.queue.name, connection=rq_redis)]
    if settings.notifiers:
        # After the recovery queue: RQ takes jobs in queue order, recoveries first.
        queues.append(Queue(_notify_delivery(services).name, connection=rq_redis))
    rq_worker = Worker(queues, connection=rq_redis, name=name)
    try:
        # The scheduler runs delivery retries that are due (enqueue_in); recoveries never use it.
        rq_worker.work(burst=burst, logging_level=settings.log_level, with_scheduler=bool(settings.notifiers))
    finally:
        stop.set()


def _notify_delivery(services: Services) -> Any:
    """Wire the delivery jobs of this worker; returns the notify queue to listen on."""
    from receiver.bootstrap import dispatcher_for, notify_queue
    from receiver.notify import delivery

    delivery.configure(dispatcher_for(services))
    services.metrics.notifiers_configured([n.name for n in services.settings.notifiers])
    return notify_queue(services).queue


@main.group()
def notify() -> None:
    """Notifiers (Slack, PagerDuty, webhooks)."""


@notify.command("test")
@click.argument("notifier")
def notify_test(notifier: str) -> None:
    """Send a test message through NOTIFIER now (PagerDuty: a trigger, then its resolve)."""
    from receiver.bootstrap import utc_now
    from receiver.notify.check import send_test

    settings = _settings()
    configure_logging_from_env()
    config = next((n for n in settings.notifiers if n.name == notifier), None)
    if config is None:
        known = ", ".join(n.name for n in settings.notifiers) or "none configured"
        raise click.ClickException(f"no notifier named {notifier!r} (known: {known})")
    results = send_test(config, settings.public_url, utc_now)
    for label, result in results:
        state = (
            "delivered"
            if result.ok
            else f"FAILED ({result.reason}{', retryable' if result.retryable else ''})"
        )
        click.echo(f"{notifier} ({config.type}) {label}: {state} {result.detail}".rstrip())
    if not all(result.ok for _, result in results):
        raise SystemExit(1)


def probe_round(services: Services) -> Callable[[], object]:
    """One round of the cluster-wide prober: every host's BMC (read-only), then whether each
    reserved spare could take instances (its nova-compute, from one Nova listing)."""
    from receiver.bootstrap import utc_now
    from receiver.monitoring.spare_readiness import ReadinessStore, check_spares
    from receiver.probe import ProbeStore, probe_all

    config = services.settings.probe
    store = ProbeStore(services.redis, services.settings.key_prefix, config.max_age_s)
    readiness = ReadinessStore(services.redis, services.settings.key_prefix)

    def run_round() -> object:
        hosts = [view.spec for view in services.inventory.hosts()]
        results = probe_all(hosts, services.power, utc_now, store=store, parallel=config.parallel)
        spares = [h.name for h in hosts if h.reserved]
        try:
            check_spares(spares, services.compute(), readiness, utc_now(), config.max_age_s)
        except LazarusError as exc:  # Nova unreachable: the last verdict ages out to unknown
            log.warning("spare readiness not checked", extra={"error": exc.message})
        return results

    return run_round


def _start_prober(services: Services, stop: threading.Event, owner: str) -> None:
    """One probe round per interval across the cluster (whichever worker claims it)."""
    from receiver.probe import ProbeStore, probe_forever

    config = services.settings.probe
    store = ProbeStore(services.redis, services.settings.key_prefix, config.max_age_s)
    thread = threading.Thread(
        target=probe_forever,
        args=(probe_round(services), store, owner, config.interval_s, stop),
        name="bmc-probe",
        daemon=True,
    )
    thread.start()


@main.group()
def notifications() -> None:
    """Recovery records."""


@notifications.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=50, show_default=True)
def notifications_list(as_json: bool, limit: int) -> None:
    from receiver.bootstrap import build
    from receiver.web import views

    services = build(_settings())
    records = _store_call(lambda: services.store.recent(limit=limit))
    if as_json:
        click.echo(json.dumps({"notifications": [views.notification_summary(r) for r in records]}, indent=2))
        return
    click.echo(f"{'UUID':36}  {'TYPE':12}  {'HOST':14}  {'STATUS':8}  {'REASON':22}  CREATED")
    for r in records:
        click.echo(
            f"{r.notification_uuid:36}  {r.type.value:12}  {r.hostname or '-':14}  "
            f"{r.status.value:8}  {r.reason or '-':22}  {r.created_at[:19]}"
        )


@notifications.command("show")
@click.argument("uuid")
@click.option("--json", "as_json", is_flag=True)
def notifications_show(uuid: str, as_json: bool) -> None:
    from receiver.bootstrap import build
    from receiver.cli_render import render_notification
    from receiver.notify.ledger import DeliveryLedger
    from receiver.web import views

    services = build(_settings())
    stored = _store_call(lambda: services.store.get_full(uuid))
    ledger = DeliveryLedger(services.redis, services.settings.key_prefix)
    deliveries = _store_call(lambda: ledger.deliveries(uuid))
    if as_json:
        detail = views.notification_detail(stored, deliveries=deliveries)
        click.echo(json.dumps({"notification": detail}, indent=2))
        return
    click.echo(render_notification(stored, deliveries))


@main.group()
def inventory() -> None:
    """Segments and hosts."""


def _services() -> object:
    from receiver.bootstrap import build

    return build(_settings())


cli_operator.register(notifications, _services)
cli_inventory.register(main, _services)
cli_host_ops.register(cast(click.Group, main.commands["host"]), _services)


@inventory.command("apply")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def inventory_apply(file: Path) -> None:
    """Apply an inventory file idempotently; prints what changed."""
    from receiver.bootstrap import build, utc_now
    from receiver.inventory import load_inventory

    services = build(_settings())
    try:
        inv = load_inventory(file)
    except ConfigError as exc:
        raise click.ClickException(exc.message) from None
    if services.settings.nova.require_compute_hosts:
        from receiver.inventory_nova import require_compute_hosts

        stored = {view.spec.name for view in _store_call(services.inventory.hosts)}
        new = [h.name for segment in inv.segments for h in segment.hosts if h.name not in stored]
        _store_call(lambda: require_compute_hosts(services.compute(), new, field=f"{file}: hosts"))
    changes = _store_call(lambda: services.inventory.apply(inv, utc_now()))
    for line in changes or ["no changes"]:
        click.echo(line)


def _store_call(call: Any) -> Any:
    try:
        return call()
    except LazarusError as exc:
        raise click.ClickException(exc.message) from None


def _add_lab() -> None:
    try:
        from receiver.lab.cli import lab
    except ImportError:  # the lab is optional in a production image
        return
    main.add_command(lab)


_add_lab()
