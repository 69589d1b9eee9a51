"""Fixtures for the Redfish tests: sushy-emulator in subprocesses, and a leak check."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.integration.redfish.emulator import Emulator, running_emulator

# Systems of the shared HTTPS emulator. Each test uses its own, so none depends on the
# power state another left behind.
FLEET_SYSTEMS = {**{f"node-{n:02d}": "On" for n in range(1, 11)}, "off-01": "Off"}


@pytest.fixture(scope="session")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """Plain HTTP, one system: found without naming it."""
    with running_emulator(tmp_path_factory.mktemp("redfish-single"), {"solo": "On"}) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """HTTPS with a certificate from a throwaway CA, several systems: each named in its address."""
    with running_emulator(tmp_path_factory.mktemp("redfish-fleet"), FLEET_SYSTEMS, tls=True) as emulator:
        yield emulator


@pytest.fixture
def leak_check(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Iterator[set[str]]:
    """Yield a set to add secrets to; after the test, none may appear in any log record (at
    DEBUG) or in anything written to stdout/stderr."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="receiver")
    watched: set[str] = set()
    yield watched
    out, err = capfd.readouterr()
    for secret in watched:
        for record in caplog.records:
            text = record.getMessage() + repr(record.args) + (record.exc_text or "")
            assert secret not in text, f"secret in log record from {record.name}"
        assert secret not in caplog.text
        assert secret not in out
        assert secret not in err
