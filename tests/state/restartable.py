"""A private Redis that a test can kill and start again, empty, on the same port (the
session's Redis is shared by other tests and is never killed)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from trimtab.testing.servers import RedisServer, ServerUnavailable


class Restartable:
    """redis-server without persistence on a fixed loopback port."""

    def __init__(self) -> None:
        self.server = RedisServer().start()
        self.port = self.server.port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        """SIGKILL: no goodbye to the clients, whatever it held is gone."""
        os.kill(self.server.pid, signal.SIGKILL)
        self.server.stop()

    def start(self) -> None:
        self.server = RedisServer(port=self.port).start()

    def restart(self) -> None:
        self.kill()
        self.start()


def restartable_redis() -> Iterator[Restartable]:
    """The body of a fixture: a Restartable, skipped (outside CI) without redis-server."""
    try:
        server = Restartable()
    except ServerUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"redis-server not available: {exc}")
    yield server
    server.server.stop()
