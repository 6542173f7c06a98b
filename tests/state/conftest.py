"""A throwaway Redis for the shared-state tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from trimtab.testing.servers import RedisServer, ServerUnavailable


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    try:
        server = RedisServer().start()
    except ServerUnavailable as exc:
        if os.environ.get("CI"):
            raise  # CI installs redis-server: a missing server there is a failure, not a skip
        pytest.skip(f"redis-server not available: {exc}")
    try:
        yield server
    finally:
        server.stop()
