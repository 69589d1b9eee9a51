"""Render Lazarus's Prometheus rules from rules/templates/ with one set of durations.

Every duration and threshold lives in rules/timings.yml; the templates name them as ``${name}``
(Prometheus's own templates use ``{{ $labels.x }}``, which this leaves alone). The rendered files in
rules/ are what operators deploy and what promtool tests; the demo renders the same templates with
seconds (`DEMO_TIMINGS`, used by receiver.lab.chain).

    python -m receiver.monitoring.rules            # re-render rules/*.rules.yml after an edit
    python -m receiver.monitoring.rules --check    # exit 1 when a rendered file is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "rules"
TEMPLATES_DIR = RULES_DIR / "templates"
TIMINGS_FILE = RULES_DIR / "timings.yml"
PLACEHOLDER = re.compile(r"\$\{([a-z0-9_]+)\}")

# The demo's chain scrapes and evaluates every second: windows of seconds. The mass-outage share is
# higher because the demo's cloud has 3 hosts (one down is 33 %); the minimum count keeps its meaning.
DEMO_TIMINGS: dict[str, str] = {
    "host_down_window": "3s",
    "host_down_for": "2s",
    "mass_outage_share": "0.5",
    "mass_outage_min_hosts": "2",
    "mass_outage_for": "2s",
    "signal_missing_for": "10s",
    "process_down_for": "3s",
    "instance_lookback": "30s",
    "instance_for": "3s",
    "bmc_unreachable_for": "5s",
    "receiver_down_for": "5s",
    "store_down_for": "5s",
    "queue_backlog_jobs": "20",
    "queue_backlog_for": "30s",
    "recovery_failed_window": "10m",
    "recovery_stuck_for": "2m",
    "watchdog_max_age_seconds": "60",
    "watchdog_missing_for": "10s",
    "delivery_failing_for": "30s",
    "no_free_spare_for": "10s",
}


class RulesError(ValueError):
    pass


def load_timings(path: Path = TIMINGS_FILE) -> dict[str, str]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise RulesError(f"{path}: expected a mapping of names to durations")
    return {str(k): str(v) for k, v in data.items()}


def render(template: str, timings: Mapping[str, str], name: str = "template") -> str:
    """Substitute every ``${name}``; a name without a value is an error, never an empty string."""

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in timings:
            raise RulesError(f"{name}: ${{{key}}} has no value in the timings")
        return timings[key]

    return PLACEHOLDER.sub(value, template)


def templates() -> list[Path]:
    return sorted(TEMPLATES_DIR.glob("*.rules.yml"))


def render_templates(timings: Mapping[str, str]) -> dict[str, str]:
    """Every template rendered, by file name; every timing must be used by some template."""
    used: set[str] = set()
    rendered = {}
    for template in templates():
        text = template.read_text()
        used.update(PLACEHOLDER.findall(text))
        rendered[template.name] = render(text, timings, template.name)
    unused = set(timings) - used
    if unused:
        raise RulesError(f"timings not used by any template: {', '.join(sorted(unused))}")
    return rendered


def write_rules(timings: Mapping[str, str], out_dir: Path) -> list[Path]:
    """Render every template into `out_dir` (the demo's chain uses this with DEMO_TIMINGS)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_templates(timings).items():
        target = out_dir / name
        target.write_text(text)
        written.append(target)
    return written


def expected_files(timings: Mapping[str, str]) -> dict[Path, str]:
    """What rules/*.rules.yml must contain: the rendered templates under a GENERATED header."""
    return {
        RULES_DIR / name: (
            f"# GENERATED from rules/templates/{name} with rules/timings.yml: edit those, then run\n"
            "# `.venv/bin/python -m receiver.monitoring.rules`.\n" + text
        )
        for name, text in render_templates(timings).items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail when a rendered file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in expected_files(load_timings()).items():
        if path.exists() and path.read_text() == text:
            continue
        if args.check:
            stale.append(path.name)
        else:
            path.write_text(text)
            print(f"rendered {path.relative_to(ROOT)}")
    if stale:
        print(f"out of date (run python -m receiver.monitoring.rules): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
