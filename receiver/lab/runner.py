"""Runs a whole lab in one process: the cloud, its ticker, the HTTP API and the BMC fleet.

    lab = Lab(workdir, LabOptions(...)); manifest = lab.start(); ...; lab.stop()
or `serve(workdir, options)` in the foreground until SIGTERM / SIGINT.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from receiver.lab.cloud import Cloud
from receiver.lab.exporters import with_exporters
from receiver.lab.manifest import MANIFEST, PASSWORD_FILE, HostBmc, LabManifest, write_lab_files
from receiver.lab.nova_api import LabContext, create_app, new_token
from receiver.lab.topology import LabOptions, build_cloud

log = logging.getLogger(__name__)
BIND_ADDRESS = "127.0.0.1"
TICK_SECONDS = 0.05  # how often queued state changes are checked for being due
# 15 random bytes are 20 URL-safe characters: IPMI 2.0's longest password, and 120 bits.
BMC_PASSWORD_BYTES = 15


class _KeepAliveHandler(WSGIRequestHandler):
    """HTTP/1.1 with keep-alive, as Nova's gunicorn speaks; clients reuse connections."""

    protocol_version = "HTTP/1.1"


class Lab:
    """One running lab. Not reusable: start() once, stop() once."""

    def __init__(self, workdir: Path, options: LabOptions | None = None) -> None:
        self.workdir = workdir.resolve()
        self.options = options or LabOptions()
        self.cloud: Cloud | None = None
        self.manifest: LabManifest | None = None
        self._server: BaseWSGIServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._fleet: Any = None

    def start(self) -> LabManifest:
        options = self.options
        self.workdir.mkdir(parents=True, exist_ok=True)
        cloud = self.cloud = build_cloud(options)
        token = options.token or new_token()
        password = secrets.token_urlsafe(BMC_PASSWORD_BYTES)
        bmc_ports = self._start_bmcs(cloud, password)
        context = LabContext(cloud=cloud, token=token, bmc=self._fleet)
        if not options.log_requests:
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # Exporter-like /metrics of every host under /exporters (receiver.lab.exporters), for Prometheus.
        app = with_exporters(create_app(context), cloud, lambda host: context.bmc_faults.get(host, "none"))
        self._server = make_server(
            BIND_ADDRESS, options.port, app, threaded=True, request_handler=_KeepAliveHandler
        )
        port = self._server.server_port
        self._spawn("lab-http", self._server.serve_forever)
        self._spawn("lab-ticker", self._tick_forever)
        base = f"http://{BIND_ADDRESS}:{port}"
        self.manifest = LabManifest(
            workdir=self.workdir,
            nova_endpoint=f"{base}/v2.1",
            token=token,
            control_url=f"{base}/lab",
            bmc_username=options.bmc_username,
            bmc_password_file=self.workdir / PASSWORD_FILE,
            hosts={
                name: (HostBmc(BIND_ADDRESS, bmc_ports[name]) if name in bmc_ports else None)
                for name in cloud.hosts
            },
            pid=os.getpid(),
            spares=options.spare_names(),
            recovery_method=options.recovery_method,
            shared_storage=options.shared_storage,
        )
        write_lab_files(self.manifest, password)
        log.info("lab ready: %d hosts, %d servers, %d BMCs, API on %s",
                 len(cloud.hosts), len(cloud.servers), len(bmc_ports), base)  # fmt: skip
        return self.manifest

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._fleet is not None:
            self._fleet.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        if self.manifest is not None:
            # A manifest left behind would describe a lab that no longer listens.
            (self.workdir / MANIFEST).unlink(missing_ok=True)

    def __enter__(self) -> LabManifest:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _start_bmcs(self, cloud: Cloud, password: str) -> dict[str, int]:
        names = self.options.bmc_host_names()
        if not names:
            return {}
        # Imported here: pyghmi keeps process-wide state, so only a process that serves BMCs loads it.
        from receiver.lab.bmc import BmcFleet

        fleet = BmcFleet(cloud, self.options.bmc_username, password, address=BIND_ADDRESS)
        self._fleet = fleet
        ports = {name: fleet.add(name) for name in names}
        fleet.start()
        return ports

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _tick_forever(self) -> None:
        assert self.cloud is not None
        while not self._stopping.wait(TICK_SECONDS):
            self.cloud.tick()


def serve(workdir: Path, options: LabOptions) -> None:
    """Run a lab in the foreground until SIGTERM or SIGINT, then stop it cleanly."""
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("lab stopping on signal %d", signum)
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    lab = Lab(workdir, options)
    try:
        manifest = lab.start()
        print(
            f"lab ready: {manifest.nova_endpoint} (manifest {manifest.workdir / 'manifest.json'})", flush=True
        )
        stop.wait()
    finally:
        lab.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
