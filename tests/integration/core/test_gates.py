"""The gates before any fence, and operator control, against the lab (real HTTP and IPMI)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from receiver.bootstrap import utc_now
from receiver.domain.events import EventKind
from receiver.domain.record import MoveStatus, Notification, Status
from receiver.errors import InputError
from receiver.inventory import parse_inventory
from receiver.operator import Operator
from tests.integration.core.lab_fixtures import LabRig, lab_rig, lab_settings

pytestmark = pytest.mark.integration
__all__ = ["lab_rig", "lab_settings"]


class Events:
    def __init__(self) -> None:
        self.kinds: list[str] = []

    def publish(self, kind: EventKind, record: Notification) -> None:
        self.kinds.append(kind.value)


def operator(rig: LabRig) -> Operator:
    return Operator(rig.services.store, rig.services.queue, rig.services.settings.worker.lease_ttl_s)


def untouched(rig: LabRig, host: str = "node-01") -> None:
    """Zero BMC power changes and zero Nova writes for this host."""
    assert not [c for c in rig.power.calls if c[0] != "power_state"]
    service = rig.service(host)
    assert (service["forced_down"], service["status"]) == (False, "enabled")
    assert rig.evacuations() == []


@pytest.mark.parametrize("lab_settings", [{"verify": {"wait_s": 1.5}}], indirect=True)
def test_a_host_nova_still_sees_up_is_not_fenced(lab_rig: LabRig) -> None:
    record = lab_rig.run(lab_rig.alert("node-01"))  # the host is fine: the alert is wrong
    assert (record.status, record.reason) == (Status.IGNORED, "not_verified")
    assert "0 of 1 signals" in record.message and "nova: UP" in record.message
    untouched(lab_rig)


@pytest.mark.parametrize("lab_settings", [{"shadow": True}], indirect=True)
def test_shadow_mode_records_what_it_would_do_and_touches_nothing(lab_rig: LabRig) -> None:
    lab_rig.control.kill("node-01")
    servers = {s["id"] for s in lab_rig.servers_on("node-01")}
    record = lab_rig.run(lab_rig.alert("node-01"))
    assert (record.status, record.reason) == (Status.FINISHED, "shadow_mode")
    assert "would fence node-01 via ipmi at 127.0.0.1:" in record.message
    assert {m.instance_uuid for m in record.vmoves} == servers
    assert all(m.status is MoveStatus.IGNORED for m in record.vmoves)
    would = [m for m in record.vmoves if "would evacuate" in m.message]
    assert len(would) == 3 and [m.reason for m in record.vmoves if m not in would] == ["not_ha_enabled"]
    assert lab_rig.power.calls == []
    service = lab_rig.service("node-01")
    assert (service["forced_down"], service["status"]) == (False, "enabled")
    assert lab_rig.evacuations() == []
    assert {s["id"] for s in lab_rig.servers_on("node-01")} == servers


@pytest.mark.parametrize("lab_settings", [{"approval": {"required": True}}], indirect=True)
def test_approval_then_success(lab_rig: LabRig) -> None:
    events = Events()
    lab_rig.services.events = events
    lab_rig.control.kill("node-01")
    uuid = lab_rig.alert("node-01")
    waiting = lab_rig.run(uuid)
    assert (waiting.status, waiting.reason) == (Status.RUNNING, "awaiting_approval")
    assert "would fence node-01" in waiting.message and "evacuate 3 instances" in waiting.message
    assert waiting.wake_at is not None
    assert events.kinds == ["recovery_started", "needs_approval"]
    untouched(lab_rig)
    assert lab_rig.run(uuid).status is Status.RUNNING  # a rerun keeps waiting, asks nothing twice
    assert events.kinds == ["recovery_started", "needs_approval"]
    operator(lab_rig).approve(uuid, "alice", utc_now())
    done = lab_rig.run(uuid)
    assert done.status is Status.FINISHED, done.message
    assert done.marks["approved_by"] == "alice"
    assert any(s.name == "approval" and "approved by alice" in s.message for s in done.steps)
    with pytest.raises(InputError):
        operator(lab_rig).approve(uuid, "bob", utc_now())


@pytest.mark.parametrize("lab_settings", [{"approval": {"required": True}}], indirect=True)
def test_rejection(lab_rig: LabRig) -> None:
    lab_rig.control.kill("node-01")
    uuid = lab_rig.alert("node-01")
    lab_rig.run(uuid)
    operator(lab_rig).reject(uuid, "bob", utc_now())
    record = lab_rig.run(uuid)
    assert (record.status, record.reason) == (Status.IGNORED, "approval_rejected")
    assert "rejected by bob" in record.message
    untouched(lab_rig)


@pytest.mark.parametrize("lab_settings", [{"approval": {"required": True, "expire_s": 1}}], indirect=True)
def test_unapproved_recoveries_expire_to_failed(lab_rig: LabRig) -> None:
    lab_rig.control.kill("node-01")
    uuid = lab_rig.alert("node-01")
    assert lab_rig.run(uuid).status is Status.RUNNING
    time.sleep(1.2)
    record = lab_rig.run(uuid)
    assert (record.status, record.reason) == (Status.FAILED, "approval_expired")
    untouched(lab_rig)


@pytest.mark.parametrize("lab_settings", [{"approval": {"max_instances": 2}}], indirect=True)
def test_a_large_blast_radius_needs_approval(lab_rig: LabRig) -> None:
    lab_rig.control.kill("node-01")
    record = lab_rig.run(lab_rig.alert("node-01"))  # 4 instances > 2
    assert (record.status, record.reason) == (Status.RUNNING, "awaiting_approval")
    assert "3 instances to evacuate (more than 2)" in record.message  # HA-enabled ones


def test_a_host_without_fence_method_is_recovered_only_through_approval(lab_rig: LabRig) -> None:
    inventory = lab_rig.services.inventory.load().model_dump()
    for host in inventory["segments"][0]["hosts"]:
        if host["name"] == "node-01":
            host["bmc"] = None
    lab_rig.services.inventory.apply(parse_inventory(inventory), utc_now())
    lab_rig.control.kill("node-01")
    uuid = lab_rig.alert("node-01")
    waiting = lab_rig.run(uuid)
    assert waiting.reason == "awaiting_approval"
    assert "an operator must confirm it is powered off" in waiting.message
    operator(lab_rig).approve(uuid, "carol", utc_now())
    done = lab_rig.run(uuid)
    assert done.status is Status.FINISHED, done.message
    [evidence] = done.fencing
    assert (evidence.method, evidence.outcome) == ("operator", "operator_confirmed_off")
    assert "carol confirmed node-01 is powered off" in evidence.message
    assert lab_rig.power.calls == []


def test_abort_before_the_job_runs(lab_rig: LabRig) -> None:
    lab_rig.control.kill("node-01")
    uuid = lab_rig.alert("node-01")
    aborted = operator(lab_rig).abort(uuid, "dave", utc_now())
    assert (aborted.status, aborted.reason) == (Status.FAILED, "aborted")
    assert lab_rig.run(uuid).status is Status.FAILED
    untouched(lab_rig)


def test_abort_mid_evacuation_stops_before_the_next_step(lab_rig: LabRig) -> None:
    lab_rig.services.settings = lab_rig.services.settings.model_copy(
        update={"evacuation": lab_rig.services.settings.evacuation.model_copy(update={"concurrency": 1})}
    )
    lab_rig.control.settings(evacuate_delay=1.5)
    lab_rig.control.kill("node-01")
    uuid = lab_rig.alert("node-01")
    thread = threading.Thread(target=lab_rig.run, args=(uuid,))
    thread.start()
    deadline = time.monotonic() + 60
    while not any(m.status is MoveStatus.ONGOING for m in lab_rig.services.store.get(uuid).vmoves):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    operator(lab_rig).abort(uuid, "erin", utc_now())
    thread.join(60)
    record = lab_rig.services.store.get(uuid)
    assert (record.status, record.reason) == (Status.FAILED, "aborted")
    assert "aborted by erin" in record.message
    assert 1 <= len(lab_rig.evacuations()) < len(record.vmoves)  # the first move went out, no more after


def test_retry_of_failed_instance_moves(lab_rig: LabRig) -> None:
    victim = lab_rig.servers_on("node-01")[0]["id"]
    lab_rig.control.fail_evacuation(victim)
    lab_rig.control.kill("node-01")
    uuid = lab_rig.alert("node-01")
    assert lab_rig.run(uuid).status is Status.FAILED
    lab_rig.control.fail_evacuation(victim, fail=False)
    retried = operator(lab_rig).retry(uuid, "frank", utc_now())
    assert retried.status is Status.RUNNING and retried.attempt == 1
    record = lab_rig.run(uuid)
    assert record.status is Status.FINISHED, record.message
    assert all(m.status is MoveStatus.SUCCEEDED or m.reason == "not_ha_enabled" for m in record.vmoves)


class _FakePrometheus(BaseHTTPRequestHandler):
    firing: bool = True

    def do_GET(self) -> None:
        result = [{"metric": {"alertname": "LazarusHostDown"}, "value": [0, "1"]}] if self.firing else []
        body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[tuple[str, type[_FakePrometheus]]]:
    handler = type("Handler", (_FakePrometheus,), {"firing": True})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()


def test_prometheus_must_still_see_the_alert(lab_rig: LabRig, prometheus: tuple[str, Any]) -> None:
    url, handler = prometheus
    verify = lab_rig.services.settings.verify.model_copy(update={"prometheus_url": url, "wait_s": 1.0})
    lab_rig.services.settings = lab_rig.services.settings.model_copy(update={"verify": verify})
    lab_rig.control.kill("node-01")
    handler.firing = False
    time.sleep(4)  # Nova agrees once its service_down_time passed; Prometheus does not
    record = lab_rig.run(lab_rig.alert("node-01"))
    assert (record.status, record.reason) == (Status.IGNORED, "not_verified")
    assert "1 of 2 signals" in record.message
    handler.firing = True
    record = lab_rig.run(lab_rig.alert("node-01", starts_at="2026-11-25T13:00:00Z"))
    assert record.status is Status.FINISHED, record.message
    assert any("2 of 2 signals agree" in s.message for s in record.steps)


@pytest.mark.parametrize(("flag", "status", "reason"), [
    ("requires_approval", Status.RUNNING, "awaiting_approval"),
    ("shadow", Status.FINISHED, "shadow_mode"),
])  # fmt: skip
def test_segment_level_controls(lab_rig: LabRig, flag: str, status: Status, reason: str) -> None:
    inventory = lab_rig.services.inventory.load().model_dump(mode="json")
    inventory["segments"][0][flag] = True
    lab_rig.services.inventory.apply(parse_inventory(inventory), utc_now())
    lab_rig.control.kill("node-01")
    record = lab_rig.run(lab_rig.alert("node-01"))
    assert (record.status, record.reason) == (status, reason)
    untouched(lab_rig)


@pytest.mark.parametrize("lab_settings", [{"approval": {"on_fence_failure": True}}], indirect=True)
def test_a_failed_fence_waits_for_an_operator_to_confirm_the_host_is_off(lab_rig: LabRig) -> None:
    lab_rig.control.hang("node-01")
    lab_rig.control.bmc_fault("node-01", "refuse")
    uuid = lab_rig.alert("node-01")
    waiting = lab_rig.run(uuid)
    assert (waiting.status, waiting.reason) == (Status.RUNNING, "awaiting_approval")
    assert "every fence method failed" in waiting.message or "fencing failed" in waiting.message
    assert lab_rig.evacuations() == []  # stopped before Nova (rule 1)
    assert lab_rig.service("node-01")["forced_down"] is False
    operator(lab_rig).approve(uuid, "grace", utc_now())
    done = lab_rig.run(uuid)
    assert done.status is Status.FINISHED, done.message
    assert [a.outcome for a in done.fencing][-1] == "operator_confirmed_off"
    assert "grace confirmed node-01 is powered off" in done.fencing[-1].message
