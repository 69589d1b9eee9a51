"""Fixtures of the Masakari API tests: our app on a private redis-server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from receiver.bootstrap import Services, build
from receiver.settings import Settings
from receiver.web.app import create_app


@pytest.fixture
def app_services(make_settings: Callable[..., Settings], redis_client: Any) -> Services:
    return build(make_settings())


@pytest.fixture
def api(app_services: Services) -> FlaskClient:
    return create_app(app_services).test_client()
