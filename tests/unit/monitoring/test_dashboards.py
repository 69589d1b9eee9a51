"""The generated Grafana dashboards: committed files up to date, and shaped for file provisioning.
(Every panel's query is evaluated through a real Prometheus in tests/e2e/chain/.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from receiver.monitoring.dashboards import DASHBOARDS_DIR, dashboards, queries, render

pytestmark = pytest.mark.unit
PROVISIONING = DASHBOARDS_DIR.parent / "provisioning"


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_committed_dashboard_is_up_to_date(name: str) -> None:
    current = (DASHBOARDS_DIR / name).read_text()
    assert current == render(dashboards()[name]), "stale: run python -m receiver.monitoring.dashboards"


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_every_panel_uses_the_datasource_variable(name: str) -> None:
    board = json.loads((DASHBOARDS_DIR / name).read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert "__inputs" not in board  # file provisioning does not resolve ${DS_...} inputs
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
    assert queries(board)


def test_panels_do_not_overlap() -> None:
    for board in dashboards().values():
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            g = panel["gridPos"]
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & mine, panel["title"]
            cells |= mine


def test_provisioning_points_at_the_dashboards() -> None:
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "lazarus.yaml").read_text())["providers"][0]
    assert provider["type"] == "file"
    assert Path(provider["options"]["path"]).name == "lazarus"
    source = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())["datasources"][0]
    assert source["type"] == "prometheus"
