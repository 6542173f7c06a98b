"""Throwaway servers that tests and drills break on purpose: a PostgreSQL stopped and started
again on the same port and data, a Redis killed and started again empty on the same port."""

from __future__ import annotations

import os
import signal
from typing import Any

from trimtab.testing.postgres_server import PostgresServer
from trimtab.testing.redis_server import RedisServer


class StoppablePostgres(PostgresServer):
    """`halt()` shuts the server down (fast shutdown: clients are disconnected and new
    connections refused); `resume()` starts it again with the same cluster and port."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._created = False

    def halt(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise RuntimeError("postgres is not running")
        proc.send_signal(signal.SIGINT)  # "fast" shutdown
        proc.wait(timeout=30)

    def resume(self) -> None:
        if self.running:
            raise RuntimeError("postgres is still running")
        # the stopped process's finalizer would remove the cluster's directory
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._log is not None:
            self._log.close()
            self._log = None
        self._requested_port = self.port
        self._launch_until_ready()

    def _after_ready(self) -> None:
        if not self._created:  # on a resume the database exists already
            super()._after_ready()
            self._created = True


class RestartableRedis:
    """redis-server without persistence on a fixed loopback port: `kill()` loses whatever
    it held, `start()` brings it back empty on the same port."""

    def __init__(self) -> None:
        self.server = RedisServer().start()
        self.port = self.server.port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        """SIGKILL: no goodbye to the clients."""
        os.kill(self.server.pid, signal.SIGKILL)
        self.server.stop()

    def start(self) -> None:
        self.server = RedisServer(port=self.port).start()

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        self.server.stop()
