"""The `lazarus` command: serve, worker, notifications, inventory, lab."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import click

from receiver.errors import ConfigError, LazarusError
from receiver.settings import Settings, load_settings


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
    jobs.configure(services)
    lease_ttl = settings.worker.lease_ttl_s
    try:
        reconcile_all(services.store, services.queue, lease_ttl)
    except LazarusError as exc:
        raise click.ClickException(f"cannot reach the store: {exc.message}") from None
    stop = threading.Event()

    def reconcile_forever() -> None:
        import logging

        while not stop.wait(settings.worker.reconcile_interval_s):
            try:
                reconcile_all(services.store, services.queue, lease_ttl)
            except Exception:  # the reconciler thread's boundary: log and keep going
                logging.getLogger("receiver.reconcile").exception("reconcile pass failed")

    if not burst:
        threading.Thread(target=reconcile_forever, name="reconciler", daemon=True).start()
    rq_worker = Worker([services.queue.queue], connection=services.redis, name=name)
    try:
        rq_worker.work(burst=burst, logging_level=settings.log_level, with_scheduler=False)
    finally:
        stop.set()


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
    from receiver.web import views

    services = build(_settings())
    stored = _store_call(lambda: services.store.get_full(uuid))
    if as_json:
        click.echo(json.dumps({"notification": views.notification_detail(stored)}, indent=2))
        return
    click.echo(render_notification(stored))


@main.group()
def inventory() -> None:
    """Segments and hosts."""


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
