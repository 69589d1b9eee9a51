"""gunicorn hooks for `lazarus serve` (bind, workers and timeout come from the command line)."""

from __future__ import annotations

from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    # Multiprocess metrics: drop the live gauges of a worker that exited.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_fork(server: Any, worker: Any) -> None:
    from receiver.cli import configure_logging_from_env

    configure_logging_from_env()


def on_starting(server: Any) -> None:
    from receiver.cli import configure_logging_from_env

    configure_logging_from_env()
