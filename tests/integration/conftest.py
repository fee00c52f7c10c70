"""Fixtures of the integration tests."""

from __future__ import annotations

import pytest

from service.runtime import Services
from tests.integration.kit import register_city


@pytest.fixture
def city(services: Services) -> Services:
    """The kit's small city (tests/integration/kit.py), on either store."""
    return register_city(services)
