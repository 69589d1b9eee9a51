"""Fixtures for the lab's unit tests: a cloud on a fake clock (no threads, no HTTP)."""

from __future__ import annotations

import pytest

from receiver.lab.cloud import Cloud, CloudSettings
from receiver.lab.model import Flavor
from tests.unit.lab.helpers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cloud(clock: FakeClock) -> Cloud:
    """Three hosts, 8 vCPU / 16 GiB each; service_down_time 10 s, heartbeat 1 s, evacuation 2 s."""
    settings = CloudSettings(service_down_time=10, report_interval=1, evacuate_delay=2, action_delay=1)
    cloud = Cloud(settings, clock=clock)
    cloud.add_flavor(Flavor(id="2", name="m1.small", vcpus=1, ram=2048, disk=20))
    for name in ("node-01", "node-02", "spare-01"):
        cloud.add_host(name, vcpus=8, memory_mb=16384, local_gb=200)
    return cloud
