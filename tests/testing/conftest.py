"""Fixtures of the mock upstream tests: a fresh mock upstream per test (its counters and
recorded requests start empty), and a plain HTTP client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from trimtab.testing.mock_upstream import MockUpstream


@pytest.fixture
def upstream() -> Iterator[MockUpstream]:
    """A running mock upstream."""
    with MockUpstream() as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """A plain HTTP client with a short timeout."""
    with httpx.Client(timeout=10) as http:
        yield http
