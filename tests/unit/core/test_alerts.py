"""Parsing Alertmanager's webhook: the captured 0.25 payloads, and errors that name the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from receiver.domain.alerts import AlertStatus, FailureKind, LabelNames, classify, parse_webhook
from receiver.errors import InputError

pytestmark = pytest.mark.unit

LABELS = LabelNames()


def body(name: str, fixtures_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((fixtures_dir / "alertmanager" / name).read_text())["body"]
    return data


@pytest.mark.parametrize(
    "name",
    [
        "firing_host_down.json",
        "resolved_host_down.json",
        "grouped_3_alerts.json",
        "truncated_max_alerts_2.json",
        "bearer_auth_firing.json",
    ],
)
def test_every_captured_payload_parses(name: str, fixtures_dir: Path) -> None:
    raw = body(name, fixtures_dir)
    message = parse_webhook(raw)
    assert len(message.alerts) == len(raw["alerts"])
    assert message.truncated_alerts == raw["truncatedAlerts"]
    for alert, source in zip(message.alerts, raw["alerts"], strict=True):
        assert alert.fingerprint == source["fingerprint"]
        assert alert.status.value == source["status"]


def test_firing_alert_has_no_end_and_a_stable_dedup_key(fixtures_dir: Path) -> None:
    alert = parse_webhook(body("firing_host_down.json", fixtures_dir)).alerts[0]
    assert alert.status is AlertStatus.FIRING
    assert alert.ends_at is None  # Go's zero time means "not ended"
    assert alert.dedup_key == "a7794cc51fa75379:20261125T123910.003612Z"


def test_unknown_fields_are_ignored(fixtures_dir: Path) -> None:
    raw = body("firing_host_down.json", fixtures_dir)
    raw["notification_reason"] = "first notification"  # Alertmanager >= 0.32
    raw["routeLabels"] = {"x": "y"}  # >= 0.34
    raw["alerts"][0]["somethingNew"] = 1
    assert parse_webhook(raw).alerts[0].fingerprint == "a7794cc51fa75379"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.update(version="3"), "version"),
        (lambda b: b.pop("version"), "version"),
        (lambda b: b.update(alerts={}), "alerts"),
        (lambda b: b.update(status="bogus"), "status"),
        (lambda b: b["alerts"][0].pop("fingerprint"), "alerts[0].fingerprint"),
        (lambda b: b["alerts"][0].update(startsAt="yesterday"), "alerts[0].startsAt"),
        (lambda b: b["alerts"][0].update(labels=[]), "alerts[0].labels"),
        (lambda b: b["alerts"][0]["labels"].update(host=5), "alerts[0].labels.host"),
        (lambda b: b["alerts"][0].update(status="pending"), "alerts[0].status"),
        (lambda b: b.update(truncatedAlerts=-1), "truncatedAlerts"),
    ],
)
def test_bad_fields_are_named(mutate: Any, field: str, fixtures_dir: Path) -> None:
    raw = copy.deepcopy(body("firing_host_down.json", fixtures_dir))
    mutate(raw)
    with pytest.raises(InputError) as caught:
        parse_webhook(raw)
    assert caught.value.field == field
    assert field in str(caught.value)


def test_body_must_be_an_object() -> None:
    with pytest.raises(InputError, match="body"):
        parse_webhook([1, 2])


def _alert(labels: dict[str, str]) -> Any:
    raw = {
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "startsAt": "2026-11-25T12:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "f1",
            }
        ],
    }
    return parse_webhook(raw).alerts[0]


def test_classify_by_labels() -> None:
    host = classify(_alert({"recovery": "host", "host": "node-01"}), LABELS)
    assert (host.kind, host.hostname, host.problem) == (FailureKind.HOST, "node-01", None)
    vm = classify(_alert({"recovery": "instance", "uuid": "abc", "host": "node-01"}), LABELS)
    assert (vm.kind, vm.instance_id) == (FailureKind.INSTANCE, "abc")
    proc = classify(_alert({"recovery": "process", "host": "node-01", "process": "nova-compute"}), LABELS)
    assert (proc.kind, proc.process_name) == (FailureKind.PROCESS, "nova-compute")


def test_classify_names_missing_or_bad_labels() -> None:
    assert classify(_alert({"alertname": "X"}), LABELS).problem == "no 'recovery' label"
    assert "not one of" in (classify(_alert({"recovery": "rack"}), LABELS).problem or "")
    assert "'host' label" in (classify(_alert({"recovery": "host"}), LABELS).problem or "")


def test_label_names_come_from_settings() -> None:
    names = LabelNames(recovery="action", host="hostname")
    event = classify(_alert({"action": "host", "hostname": "compute-01"}), names)
    assert (event.kind, event.hostname) == (FailureKind.HOST, "compute-01")
