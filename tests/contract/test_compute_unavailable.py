"""NovaCompute when Nova is down, silent, or behind a failing proxy: ComputeUnavailable, quickly.

Built with `NovaCompute.from_cloud` from a clouds.yaml, as production does. The "faulty Nova"
is a real HTTP server on a free port that answers the version document like Nova and then
fails the way a load balancer or an overloaded API does (5xx, an HTML error page, silence).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from receiver.adapters.nova import NovaCompute
from receiver.errors import ComputeRejected, ComputeUnavailable

pytestmark = [
    pytest.mark.integration,
    # openstacksdk 4.22 warns on its own internal calls; see test_compute_contract.py
    pytest.mark.filterwarnings("ignore:Support for InfluxDB requires:PendingDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'service_type' parameter is unnecesary:PendingDeprecationWarning"),
]

TOKEN = "contract-secret-token-6f1d"  # a test token that must never leak
BOUND_S = 30.0  # far above the configured timeouts; only catches a hang


def error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


def write_clouds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        "clouds:\n"
        "  contract:\n"
        "    auth_type: admin_token\n"
        f"    auth: {{endpoint: '{endpoint}', token: '{TOKEN}'}}\n"
        "    compute_api_version: '2.94'\n"
    )
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    monkeypatch.setenv("OS_CLOUD", "contract")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


class FaultyNova(BaseHTTPRequestHandler):
    """Answers the version document like Nova; every other request fails as `mode` says."""

    mode = "503"
    release = threading.Event()

    def do_GET(self) -> None:
        if self.mode == "down":
            self.reply(503, "<html><body>503 Service Unavailable</body></html>", "text/html")
        elif self.path.rstrip("/") == "/v2.1":
            base = f"http://127.0.0.1:{self.server.server_port}/v2.1/"
            links = [{"rel": "self", "href": base}]
            version = {
                "id": "v2.1",
                "status": "CURRENT",
                "version": "2.104",
                "min_version": "2.1",
                "links": links,
            }
            self.reply(200, json.dumps({"version": version}), "application/json")
        elif self.mode == "silent":
            self.release.wait(BOUND_S)
        elif self.mode == "503":
            fault = {"computeFault": {"code": 503, "message": "Service Unavailable"}}
            self.reply(503, json.dumps(fault), "application/json", request_id="req-faulty-503")
        elif self.mode == "502-html":
            self.reply(502, "<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
        elif self.mode == "403":
            fault = {
                "forbidden": {"code": 403, "message": "Policy doesn't allow os_compute_api:os-services:list"}
            }
            self.reply(403, json.dumps(fault), "application/json", request_id="req-faulty-403")

    do_PUT = do_POST = do_GET

    def reply(self, status: int, body: str, content_type: str, request_id: str | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if request_id:
            self.send_header("x-openstack-request-id", request_id)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def faulty_nova() -> Iterator[tuple[str, type[FaultyNova]]]:
    handler = type("Handler", (FaultyNova,), {"release": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v2.1", handler
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def timed_failure(compute: NovaCompute, expected: type[Exception]) -> tuple[Exception, float]:
    started = time.monotonic()
    with pytest.raises(expected) as info:
        compute.service("node-01")
    elapsed = time.monotonic() - started
    assert TOKEN not in error_text(info.value)
    assert "node-01" in str(info.value) and "nova-compute service" in str(info.value)
    return info.value, elapsed


def test_closed_port_is_unavailable_at_once(tmp_path, monkeypatch) -> None:
    write_clouds(tmp_path, monkeypatch, f"http://127.0.0.1:{closed_port()}/v2.1")
    compute = NovaCompute.from_cloud(None, timeout_s=5)  # OS_CLOUD names the cloud
    error, elapsed = timed_failure(compute, ComputeUnavailable)
    assert error.retryable and elapsed < BOUND_S


def test_silent_port_is_unavailable_after_the_timeout(tmp_path, monkeypatch, silent_listener) -> None:
    write_clouds(tmp_path, monkeypatch, f"http://127.0.0.1:{silent_listener}/v2.1")
    compute = NovaCompute.from_cloud("contract", timeout_s=1)
    error, elapsed = timed_failure(compute, ComputeUnavailable)
    assert error.retryable and elapsed < BOUND_S


def test_silent_api_after_discovery_is_unavailable_after_the_timeout(
    tmp_path, monkeypatch, faulty_nova
) -> None:
    endpoint, handler = faulty_nova
    handler.mode = "silent"
    write_clouds(tmp_path, monkeypatch, endpoint)
    error, elapsed = timed_failure(NovaCompute.from_cloud("contract", timeout_s=1), ComputeUnavailable)
    assert error.retryable and elapsed < BOUND_S


def test_503_is_unavailable_with_the_request_id(tmp_path, monkeypatch, faulty_nova) -> None:
    endpoint, handler = faulty_nova
    handler.mode = "503"
    write_clouds(tmp_path, monkeypatch, endpoint)
    error, _ = timed_failure(NovaCompute.from_cloud("contract", timeout_s=5), ComputeUnavailable)
    assert isinstance(error, ComputeUnavailable) and error.retryable
    assert (error.status, error.request_id) == (503, "req-faulty-503")
    assert "Service Unavailable" in str(error) and "req-faulty-503" in str(error)


def test_a_proxy_error_page_is_unavailable_and_cut_short(tmp_path, monkeypatch, faulty_nova) -> None:
    endpoint, handler = faulty_nova
    handler.mode = "502-html"
    write_clouds(tmp_path, monkeypatch, endpoint)
    error, _ = timed_failure(NovaCompute.from_cloud("contract", timeout_s=5), ComputeUnavailable)
    assert isinstance(error, ComputeUnavailable) and (error.status, error.request_id) == (502, None)
    assert "502 Bad Gateway" in str(error)


def test_403_is_rejected_not_retryable(tmp_path, monkeypatch, faulty_nova) -> None:
    endpoint, handler = faulty_nova
    handler.mode = "403"
    write_clouds(tmp_path, monkeypatch, endpoint)
    error, _ = timed_failure(NovaCompute.from_cloud("contract", timeout_s=5), ComputeRejected)
    assert isinstance(error, ComputeRejected) and not error.retryable
    assert (error.status, error.request_id) == (403, "req-faulty-403")
    assert "Policy doesn't allow" in str(error)


def test_the_adapter_recovers_when_nova_comes_back(tmp_path, monkeypatch, faulty_nova) -> None:
    """A failed first contact (version discovery) is not remembered: the next call tries again."""
    endpoint, handler = faulty_nova
    handler.mode = "down"
    write_clouds(tmp_path, monkeypatch, endpoint)
    compute = NovaCompute.from_cloud("contract", timeout_s=5)
    timed_failure(compute, ComputeUnavailable)
    handler.mode = "403"  # up again, answering the request itself
    error, _ = timed_failure(compute, ComputeRejected)
    assert isinstance(error, ComputeRejected) and error.request_id == "req-faulty-403"


def test_from_cloud_does_no_io_and_checks_the_microversion(tmp_path, monkeypatch) -> None:
    write_clouds(tmp_path, monkeypatch, f"http://127.0.0.1:{closed_port()}/v2.1")
    NovaCompute.from_cloud("contract")  # nothing listens: building must not connect
    with pytest.raises(ValueError, match=r"2\.59"):
        NovaCompute.from_cloud("contract", compute_api_version="2.53")
