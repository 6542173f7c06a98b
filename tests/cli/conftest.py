"""The server most CLI tests talk to: a gateway with the route commands' keys."""

from __future__ import annotations

import pytest

from tests.support import ROUTE_KEYS, GatewayFactory, Running


@pytest.fixture
def running(gateway: GatewayFactory, sqlite_url: str) -> Running:
    return gateway(store=sqlite_url, keys=ROUTE_KEYS)
