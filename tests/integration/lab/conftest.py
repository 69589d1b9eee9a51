"""Fixtures for the lab's own integration tests: a small, fast lab in a subprocess and an
openstacksdk connection to it, configured exactly as for the real Nova test bed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack
import pytest

from receiver.lab.manifest import LabManifest
from receiver.lab.testing import LabControl, running_lab

FAST = {
    "hosts": ("node-01", "node-02", "spare-01"),
    "service_down_time": 3.0,
    "report_interval": 0.5,
    "evacuate_delay": 0.3,
    "action_delay": 0.1,
    "bmc": False,
}


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LabManifest]:
    with running_lab(tmp_path / "lab", **FAST) as manifest:
        yield manifest


@pytest.fixture
def control(lab: LabManifest) -> LabControl:
    return LabControl(lab)


@pytest.fixture
def conn(lab: LabManifest) -> Iterator[Any]:
    connection = openstack.connect(**lab.openstack_auth())
    yield connection
    connection.close()
