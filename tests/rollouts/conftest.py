"""Fixtures of the rollout tests: the release gateway under its package name, and a rollout
store over a migrated store (SQLite and PostgreSQL) holding the route's v1 and v2."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.registry.support import OPERATOR, routes_file
from tests.support import Running
from trimtab.registry.store import RouteStore
from trimtab.rollouts.store import RolloutStore


@pytest.fixture
def running(rollouts_running: Running) -> Running:
    """The gateway of tests/conftest.py's `rollouts_running`."""
    return rollouts_running


@pytest.fixture
def store(engine: Engine) -> RolloutStore:
    routes = RouteStore(engine)
    routes.apply(routes_file("Policy A: {{policy}}", tier=0), applier=OPERATOR, message="v1")
    routes.apply(routes_file("Policy B: {{policy}}", tier=0), applier=OPERATOR, message="v2")
    return RolloutStore(engine)
