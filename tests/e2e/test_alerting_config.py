"""The rules and the Alertmanager config, checked by the real promtool and amtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from receiver.monitoring.rules import DEMO_TIMINGS, write_rules

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


def test_demo_rules_pass_promtool_check(tmp_path: Path) -> None:
    rules = write_rules(DEMO_TIMINGS, tmp_path)
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


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (
            ("alertname=LazarusHostDown", "recovery=host", "host=node-01", "severity=critical"),
            "lazarus,humans",
        ),
        (
            ("alertname=LazarusProcessDown", "recovery=process", "host=node-01", "process=nova-compute",
             "severity=warning"),
            "lazarus,humans",
        ),
        (
            ("alertname=LazarusInstanceVanished", "recovery=instance", "host=node-01", "uuid=u-1",
             "severity=warning"),
            "lazarus,humans",
        ),
        (("alertname=Watchdog", "severity=none"), "lazarus-watchdog"),
        (("alertname=LazarusManyHostsDown", "severity=critical"), "humans"),
        (("alertname=LazarusWatchdogMissing", "severity=critical"), "humans"),
    ],
)  # fmt: skip
def test_routes(labels: tuple[str, ...], receivers: str) -> None:
    out = run(
        tool("amtool"),
        "config",
        "routes",
        "test",
        f"--config.file={ROOT / 'deploy' / 'alertmanager.yml'}",
        *labels,
    )
    assert out.splitlines()[0].strip() == receivers
