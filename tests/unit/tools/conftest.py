"""Trafficgen tests: real service instances (see tests/unit/conftest.py)."""
import pytest


@pytest.fixture
def serve(running_service):
    """serve(**env) -> base URL of a running service on an ephemeral loopback port."""
    return lambda **env: running_service(**env).url
