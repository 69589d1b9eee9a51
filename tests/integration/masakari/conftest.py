"""Fixtures of the Masakari API tests: our app on a private redis-server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from receiver.bootstrap import Services, build
from receiver.settings import Settings
from receiver.web.app import create_app

# These tests are about the API and the store, without a Nova: the check that a host is a
# nova-compute host Nova knows has its own tests, on the lab (test_compute_host_check.py).
WITHOUT_NOVA = {"require_compute_hosts": False}


@pytest.fixture
def app_services(make_settings: Callable[..., Settings], redis_client: Any) -> Services:
    return build(make_settings(nova=WITHOUT_NOVA))


@pytest.fixture
def api(app_services: Services) -> FlaskClient:
    return create_app(app_services).test_client()
