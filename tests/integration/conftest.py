"""Fixtures every integration suite may use without importing them."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def lab_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Lab options on top of the suite's fast lab (hosts, spares, recovery_method,
    host_capacity, ...); parametrize indirectly to change them."""
    return dict(getattr(request, "param", {}))
