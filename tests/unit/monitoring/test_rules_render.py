"""The rule templates, their one set of durations, and the rendered files operators deploy."""

from __future__ import annotations

import pytest
import yaml

from receiver.monitoring.rules import (
    DEMO_TIMINGS,
    RulesError,
    expected_files,
    load_timings,
    render,
    render_templates,
)

pytestmark = pytest.mark.unit


def test_rendered_rules_are_up_to_date() -> None:
    for path, text in expected_files(load_timings()).items():
        assert path.exists(), f"{path.name} missing: run python -m receiver.monitoring.rules"
        assert path.read_text() == text, f"{path.name} is stale: run python -m receiver.monitoring.rules"


def test_demo_and_production_timings_name_the_same_things() -> None:
    assert set(DEMO_TIMINGS) == set(load_timings())


@pytest.mark.parametrize("timings", [DEMO_TIMINGS, None], ids=["demo", "production"])
def test_placeholders_filled_prometheus_templates_kept(timings: dict[str, str] | None) -> None:
    rendered = render_templates(timings or load_timings())
    assert rendered
    for name, text in rendered.items():
        assert "${" not in text, name
        groups = yaml.safe_load(text)["groups"]
        assert groups, name
    host = yaml.safe_load(rendered["lazarus-host.rules.yml"])["groups"][0]["rules"]
    down = next(r for r in host if r.get("alert") == "LazarusHostDown")
    assert down["labels"]["recovery"] == "host"
    assert "{{ $labels.host }}" in down["annotations"]["summary"]


def test_demo_windows_are_seconds() -> None:
    rendered = render_templates(DEMO_TIMINGS)["lazarus-host.rules.yml"]
    assert 'max_over_time(up{job="node"}[3s])' in rendered
    assert "for: 2s" in rendered


def test_an_unknown_name_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(RulesError, match=r"\$\{host_down_windw\} has no value"):
        render("expr: up[${host_down_windw}]", {"host_down_window": "2m"})


def test_an_unused_timing_is_an_error() -> None:
    with pytest.raises(RulesError, match="not used by any template: spare"):
        render_templates({**DEMO_TIMINGS, "spare": "1m"})
