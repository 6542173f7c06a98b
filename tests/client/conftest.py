"""The server the client tests talk to: the release gateway (routes, rollouts, keys)."""

from __future__ import annotations

import pytest

from tests.support import Running


@pytest.fixture
def running(rollouts_running: Running) -> Running:
    """The gateway of tests/conftest.py's `rollouts_running`."""
    return rollouts_running
