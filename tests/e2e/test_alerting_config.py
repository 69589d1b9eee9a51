"""The rules and the Alertmanager config, checked by the real promtool and amtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (apt-get install prometheus prometheus-alertmanager; `make deps`)")
    return path


def run(*args: str, cwd: Path = ROOT) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_rules_pass_promtool_check() -> None:
    rules = sorted((ROOT / "rules").glob("*.rules.yml"))
    assert rules
    assert "SUCCESS" in run(tool("promtool"), "check", "rules", *map(str, rules))


def test_rule_unit_tests_pass() -> None:
    tests = sorted((ROOT / "rules" / "tests").glob("*.test.yml"))
    assert tests
    assert "SUCCESS" in run(
        tool("promtool"), "test", "rules", *(t.name for t in tests), cwd=ROOT / "rules" / "tests"
    )


def test_alertmanager_config_passes_amtool() -> None:
    config = ROOT / "deploy" / "alertmanager.yml"
    assert "SUCCESS" in run(tool("amtool"), "check-config", str(config))


def test_host_down_alert_reaches_lazarus_and_humans() -> None:
    out = run(
        tool("amtool"),
        "config",
        "routes",
        "test",
        f"--config.file={ROOT / 'deploy' / 'alertmanager.yml'}",
        "alertname=LazarusHostDown",
        "recovery=host",
        "host=node-01",
        "severity=critical",
    )
    assert out.splitlines()[0].strip() == "lazarus,humans"
