"""Lab recoveries (simulated Nova over HTTP, BMCs over IPMI) reach Slack, PagerDuty and a webhook."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from receiver import jobs
from receiver.bootstrap import build, utc_now
from receiver.domain.record import Status
from receiver.operator import Operator
from receiver.settings import Settings
from tests.integration.core.lab_fixtures import LabRig, lab_rig
from tests.integration.notify.delivery_helpers import drain, wire
from tests.integration.notify.endpoints import Endpoint

pytestmark = pytest.mark.integration
__all__ = ["lab_rig"]

PUBLIC_URL = "https://lazarus.example.internal"


@pytest.fixture
def lab_settings(request: pytest.FixtureRequest, notifier_settings: list[dict[str, Any]]) -> dict[str, Any]:
    """Overrides lab_rig's settings: the three notifiers, fast retries, a public URL for links
    (plus any settings given by indirect parametrization)."""
    return {
        "notifiers": notifier_settings,
        "notify": {"backoff_s": [0.2], "max_attempts": 3},
        "public_url": PUBLIC_URL,
        **getattr(request, "param", {}),
    }


def blocks_text(body: dict[str, Any]) -> str:
    return json.dumps(body["blocks"], ensure_ascii=False)


def test_finished_recovery_is_told_in_short(
    lab_rig: LabRig, slack: Endpoint, pagerduty: Endpoint, hook: Endpoint
) -> None:
    # The HA-enabled ones (the other stays, left by policy).
    moved = sum(1 for s in lab_rig.servers_on("node-01") if s["metadata"].get("HA_Enabled") == "True")
    lab_rig.control.kill("node-01")
    uuid = lab_rig.alert("node-01")
    record = lab_rig.run(uuid)
    assert record.status is Status.FINISHED, record.message
    wire(lab_rig.services)
    drain(lab_rig.services)

    started, finished = slack.bodies()
    assert started["blocks"][0]["text"]["text"].endswith("node-01: host is down, Lazarus is recovering")
    header, summary, context = finished["blocks"]
    assert header["text"]["text"] == f":white_check_mark: node-01 recovered: {moved} instances moved"
    assert f"*Instances:* {moved} of {moved} moved" in summary["text"]["text"]
    assert "power off (off_confirmed)" in summary["text"]["text"]
    assert f"<{PUBLIC_URL}/v1/notifications/{uuid}|record {uuid}>" in context["elements"][0]["text"]
    # PagerDuty was told "resolve" only: nothing was ever open for this recovery.
    assert [(b["event_action"], b["dedup_key"]) for b in pagerduty.bodies()] == [("resolve", uuid)]
    assert pagerduty.open_incidents() == []
    assert [b["event"] for b in hook.bodies()] == ["recovery_started", "recovery_finished"]
    assert hook.bodies()[1]["record"]["status"] == "finished"


def test_failed_fence_pages_with_the_evidence(lab_rig: LabRig, slack: Endpoint, pagerduty: Endpoint) -> None:
    lab_rig.control.hang("node-01")  # Nova sees it down; its BMC still answers ON...
    lab_rig.control.bmc_fault("node-01", "refuse")  # ...but refuses to power it off
    uuid = lab_rig.alert("node-01")
    record = lab_rig.run(uuid)
    assert (record.status, record.reason) == (Status.FAILED, "bmc_refused")
    wire(lab_rig.services)
    drain(lab_rig.services)

    _, failed = slack.bodies()
    text = blocks_text(failed)
    assert failed["blocks"][0]["text"]["text"] == ":red_circle: node-01: recovery failed (bmc_refused)"
    assert "*Severity:*\\ncritical" in text
    assert "*bmc_refused*" in text  # the fence attempts, as the BMC answered
    assert "none moved: fencing failed, nothing evacuated" in text
    [trigger] = pagerduty.bodies()
    assert (trigger["event_action"], trigger["dedup_key"]) == ("trigger", uuid)
    payload = trigger["payload"]
    assert (payload["severity"], payload["source"], payload["class"]) == (
        "critical",
        "node-01",
        "bmc_refused",
    )
    assert payload["custom_details"]["fencing"]
    assert all("bmc_refused" in line for line in payload["custom_details"]["fencing"])
    assert pagerduty.open_incidents() == [uuid]


def test_a_crashed_recovery_pages_and_its_rerun_resolves_the_same_incident(
    lab_rig: LabRig,
    slack: Endpoint,
    pagerduty: Endpoint,
    make_settings: Callable[..., Settings],
    lab_settings: dict[str, Any],
) -> None:
    lab_rig.control.kill("node-01")
    uuid = lab_rig.alert("node-01")
    # A worker whose nova.cloud names no cloud: it crashes as soon as it needs Nova.
    broken = build(
        make_settings(
            nova={"cloud": "no-such-cloud"},
            queue_name=lab_rig.services.settings.queue_name,
            **lab_settings,
        )
    )
    jobs.configure(broken)
    with pytest.raises(Exception):  # noqa: B017 - whatever openstacksdk raises; the record says "error"
        jobs.run_recovery(uuid)
    assert lab_rig.services.store.get(uuid).status is Status.ERROR
    wire(lab_rig.services)
    drain(lab_rig.services)
    assert pagerduty.open_incidents() == [uuid]  # a human is paged while it is broken

    record = lab_rig.run(uuid)  # the fixed worker re-runs it (the reconciler's one re-run)
    assert record.status is Status.FINISHED, record.message
    drain(lab_rig.services)

    assert [(b["event_action"], b["dedup_key"]) for b in pagerduty.bodies()] == [
        ("trigger", uuid),
        ("resolve", uuid),
    ]
    assert pagerduty.incidents[uuid] == ["trigger", "resolve"]
    assert pagerduty.open_incidents() == []
    titles = [b["blocks"][0]["text"]["text"] for b in slack.bodies()]
    assert [t.split(" ", 1)[1] for t in titles] == [
        "node-01: host is down, Lazarus is recovering",
        "node-01: recovery crashed (internal_error)",
        "node-01: host is down, Lazarus is recovering",
        f"node-01 recovered: {sum(1 for m in record.vmoves if m.status == 'succeeded')} instances moved",
    ]
    crashed = blocks_text(slack.bodies()[1])
    assert "*Fencing evidence*" in crashed
    assert "none moved: internal error" in crashed


@pytest.mark.parametrize("lab_settings", [{"approval": {"required": True}}], indirect=True)
def test_waiting_for_approval_pages_and_the_approved_recovery_resolves_it(
    lab_rig: LabRig, slack: Endpoint, pagerduty: Endpoint
) -> None:
    lab_rig.control.kill("node-01")
    uuid = lab_rig.alert("node-01")
    waiting = lab_rig.run(uuid)
    assert waiting.reason == "awaiting_approval"
    wire(lab_rig.services)
    drain(lab_rig.services)
    [trigger] = pagerduty.bodies()
    assert (trigger["event_action"], trigger["dedup_key"]) == ("trigger", uuid)
    assert trigger["payload"]["severity"] == "critical"
    assert "waiting for approval" in trigger["payload"]["summary"]
    approval = slack.bodies()[1]
    assert approval["blocks"][0]["text"]["text"] == (
        ":raising_hand: node-01: recovery waits for an operator's approval"
    )
    assert "*Instances:* not moved yet: waiting for an operator's approval" in blocks_text(approval)

    Operator(
        lab_rig.services.store, lab_rig.services.queue, lab_rig.services.settings.worker.lease_ttl_s
    ).approve(uuid, "alice", utc_now())
    assert lab_rig.run(uuid).status is Status.FINISHED
    drain(lab_rig.services)
    assert pagerduty.incidents[uuid] == ["trigger", "resolve"]
    assert pagerduty.open_incidents() == []
