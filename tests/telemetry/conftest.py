"""Fixtures of the telemetry tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    """The engines a test opens, disposed of after it."""
    made: list[Engine] = []
    yield made
    for engine in made:
        engine.dispose()
