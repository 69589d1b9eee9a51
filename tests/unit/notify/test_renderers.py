"""Slack Block Kit, the PagerDuty event and the webhook body, from one message."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from receiver.adapters.notifiers import pagerduty, slack, webhook
from receiver.domain.events import EventKind
from receiver.domain.record import MoveStatus
from receiver.notify.message import Message, build_message
from tests.unit.notify.records import (
    UUID,
    diagnosed,
    evacuation_failed_record,
    fence_failed_record,
    fenced,
    finished_record,
    new_record,
    partial_finished_record,
    with_moves,
)

pytestmark = pytest.mark.unit

URL = f"https://lazarus.example/v1/notifications/{UUID}"


def message(kind: EventKind, record: Any, seq: int = 1) -> Message:
    return build_message(kind, record, seq=seq, segment="rack-a", record_url=URL)


def texts(body: dict[str, Any]) -> str:
    return json.dumps(body["blocks"], ensure_ascii=False)


def test_slack_failure_has_every_part_a_human_needs() -> None:
    body = slack.render(message(EventKind.FAILED, evacuation_failed_record()))
    header, fields, failed, did, fencing, instances, context = body["blocks"]
    assert header["text"]["text"] == ":red_circle: node-01: recovery failed (evacuation_failed)"
    assert "*Segment:*\nrack-a" in [f["text"] for f in fields["fields"]]
    assert "compute host node-01 is down" in failed["text"]["text"]
    assert "fence succeeded" in did["text"]["text"]
    assert "power on → off, *off_confirmed*" in fencing["text"]["text"]
    assert "1 of 2 moved, 1 failed" in instances["text"]["text"]
    assert "vm-0 `inst-0000-uuid` → node-02" in instances["text"]["text"]
    assert "vm-1 `inst-0001-uuid`: instance went to ERROR" in instances["text"]["text"]
    assert f"<{URL}|record {UUID}>" in context["elements"][0]["text"]
    assert body["text"].startswith("node-01: recovery failed (evacuation_failed): ")


def test_slack_finished_is_a_short_summary_by_default() -> None:
    body = slack.render(message(EventKind.FINISHED, finished_record(3)))
    header, summary, context = body["blocks"]
    assert header["text"]["text"] == ":white_check_mark: node-01 recovered: 3 instances moved"
    assert "*Instances:* 3 of 3 moved" in summary["text"]["text"]
    assert "ipmi 127.0.0.1:6231: power off (off_confirmed)" in summary["text"]["text"]
    assert URL in context["elements"][0]["text"]
    full = slack.render(message(EventKind.FINISHED, finished_record(3)), finished="full")
    assert len(full["blocks"]) == 7


def test_slack_fence_failure_says_no_instance_moved_and_why() -> None:
    blocks = texts(slack.render(message(EventKind.FAILED, fence_failed_record())))
    assert "power on → on, *power_still_on*" in blocks
    assert "none moved: fencing failed, nothing evacuated" in blocks


def test_slack_keeps_within_block_kit_limits_for_a_huge_host() -> None:
    record = with_moves(fenced(new_record("x" * 300)), *([MoveStatus.FAILED] * 400))
    body = slack.render(message(EventKind.FAILED, record))
    for block in body["blocks"]:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
    assert len(body["blocks"]) <= 50
    assert "…and 380 more (see the record)" in texts(body)
    assert len(json.dumps(body)) < 13_000  # Slack's real limit for the whole message


def test_slack_escapes_mrkdwn_control_characters() -> None:
    record = evacuation_failed_record()
    record = replace(record, message="a <b> & c")
    blocks = texts(slack.render(message(EventKind.FAILED, record)))
    assert "a &lt;b&gt; &amp; c" in blocks


def test_pagerduty_trigger_carries_dedup_key_severity_and_evidence() -> None:
    event = pagerduty.event(message(EventKind.FAILED, evacuation_failed_record()), "KEY", "trigger")
    assert (event["routing_key"], event["event_action"], event["dedup_key"]) == ("KEY", "trigger", UUID)
    payload = event["payload"]
    assert (payload["source"], payload["severity"], payload["group"]) == ("node-01", "critical", "rack-a")
    assert payload["class"] == "evacuation_failed"
    assert payload["summary"].startswith("node-01: recovery failed")
    details = payload["custom_details"]
    assert details["fencing"] == ["ipmi 127.0.0.1:6231: power on -> off (off_confirmed)"]
    assert details["instances"] == "1 of 2 moved, 1 failed"
    assert "vm-1 inst-0001-uuid failed -> node-01: instance went to ERROR" in details["instances_detail"]
    assert event["links"] == [{"href": URL, "text": "Lazarus recovery record"}]


def test_pagerduty_resolve_is_just_the_key_and_dedup_key() -> None:
    event = pagerduty.event(message(EventKind.FINISHED, finished_record()), "KEY", "resolve")
    assert event == {"routing_key": "KEY", "event_action": "resolve", "dedup_key": UUID}


@pytest.mark.parametrize(
    ("kind", "action"),
    [
        (EventKind.FAILED, "trigger"),
        (EventKind.REFUSED, "trigger"),
        (EventKind.NEEDS_APPROVAL, "trigger"),
        (EventKind.FINISHED, "resolve"),
        (EventKind.STARTED, None),
        (EventKind.REINSTATED, None),
    ],
)
def test_pagerduty_actions(kind: EventKind, action: str | None) -> None:
    assert pagerduty.event_action(kind) == action


def test_webhook_carries_the_record_and_an_idempotency_key() -> None:
    msg = message(EventKind.FAILED, evacuation_failed_record(), seq=4)
    body = webhook.payload(msg)
    assert body["record"]["notification_uuid"] == UUID
    assert body["record"]["vmoves"][1]["status"] == "failed"
    assert (body["event"], body["seq"], body["severity"]) == ("recovery_failed", 4, "critical")
    assert webhook.idempotency_key(msg) == f"{UUID}:4"
    json.dumps(body)  # plain JSON all the way down


def test_slack_shows_the_diagnosis_short_and_full() -> None:
    failed = texts(slack.render(message(EventKind.FAILED, diagnosed(evacuation_failed_record()))))
    assert "*Diagnosis:* node-01: 1 of 2 instances moved; Nova error for 1 instance: vm-1" in failed
    partial = slack.render(message(EventKind.FINISHED, partial_finished_record()))
    header, _fields, failed_block, *_rest = partial["blocks"]  # in full: someone must act
    assert header["text"]["text"] == ":warning: node-01 partly recovered: 1 instance moved"
    assert "*Diagnosis:* node-01: 1 of 2 instances moved; not enough capacity" in failed_block["text"]["text"]
    complete = texts(slack.render(message(EventKind.FINISHED, diagnosed(finished_record(3)))))
    assert "Diagnosis" not in complete


def test_pagerduty_carries_the_diagnosis_and_a_partial_finish_triggers() -> None:
    failed = message(EventKind.FAILED, diagnosed(evacuation_failed_record()))
    event = pagerduty.event(failed, "KEY", pagerduty.action_for(failed) or "")
    assert event["payload"]["custom_details"]["diagnosis"] == failed.diagnosis
    assert event["payload"]["summary"].endswith(failed.diagnosis)
    partial = message(EventKind.FINISHED, partial_finished_record())
    assert pagerduty.action_for(partial) == "trigger"
    assert pagerduty.event(partial, "KEY", "trigger")["payload"]["severity"] == "warning"
    assert pagerduty.action_for(message(EventKind.FINISHED, diagnosed(finished_record(3)))) == "resolve"
    assert pagerduty.action_for(message(EventKind.FINISHED, finished_record(3))) == "resolve"


def test_webhook_carries_the_diagnosis() -> None:
    body = webhook.payload(message(EventKind.FAILED, diagnosed(evacuation_failed_record())))
    assert body["diagnosis"].startswith("node-01: 1 of 2 instances moved; Nova error")
    assert body["record"]["diagnosis"]["findings"][0]["cause"] == "nova_error"
    assert webhook.payload(message(EventKind.FAILED, evacuation_failed_record()))["diagnosis"] is None
