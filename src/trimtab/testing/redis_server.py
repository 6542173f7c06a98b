"""A throwaway, non-persistent redis-server for tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
from pathlib import Path

from trimtab.testing.servers import LOOPBACK, ProcessServer, ServerUnavailable

__all__ = ["RedisServer", "find_redis_server"]


def find_redis_server() -> Path:
    """Locate redis-server on PATH or in the usual install locations."""
    found = shutil.which("redis-server")
    if found is not None:
        return Path(found)
    for candidate in ("/usr/bin/redis-server", "/usr/local/bin/redis-server"):
        if os.access(candidate, os.X_OK):
            return Path(candidate)
    raise ServerUnavailable(
        "redis-server not found on PATH, /usr/bin or /usr/local/bin; "
        "install it (e.g. apt-get install redis-server)"
    )


def _redis_ping(port: int, host: str = LOOPBACK, timeout: float = 1.0) -> bool:
    """Send a raw RESP PING over TCP; True on +PONG."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            return _ping_on(sock)
    except OSError:
        return False


def _redis_ping_unix(path: Path, timeout: float = 1.0) -> bool:
    """Send a raw RESP PING over a unix socket; True on +PONG."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            return _ping_on(sock)
    except OSError:
        return False


def _ping_on(sock: socket.socket) -> bool:
    """PING on a connected socket."""
    sock.sendall(b"PING\r\n")
    return sock.recv(64).startswith(b"+PONG")


class RedisServer(ProcessServer):
    """A private, non-persistent redis-server on a free loopback port."""

    _name = "redis"
    _stop_signal = signal.SIGTERM

    def __init__(
        self,
        *,
        port: int | None = None,
        binary: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        """Configure (but do not start) the server; port None picks a free port."""
        super().__init__(port=port, startup_timeout=startup_timeout)
        self._binary = Path(binary) if binary is not None else None

    @property
    def binary(self) -> Path:
        """The redis-server executable in use."""
        if self._binary is None:
            self._binary = find_redis_server()
        return self._binary

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{self.host}:{self.port}/0"

    def _check_binaries(self) -> None:
        """Find redis-server."""
        if self._binary is not None and not os.access(self._binary, os.X_OK):
            raise ServerUnavailable(f"redis-server not found at {self._binary}")
        _ = self.binary

    def _command(self, port: int) -> list[str]:
        """redis-server without persistence, bound to loopback."""
        return [
            str(self.binary),
            "--port",
            str(port),
            "--bind",
            self.host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--daemonize",
            "no",
            "--unixsocket",
            str(self.directory / "redis.sock"),
            "--unixsocketperm",
            "700",
        ]

    def _ready(self) -> bool:
        """Whether PING answers +PONG on our private unix socket, then on the TCP port.

        redis-server binds TCP before the unix socket and exits if it cannot, so an answer on
        the socket in our own directory means the TCP port is ours, not some other server's.
        """
        return _redis_ping_unix(self.directory / "redis.sock", timeout=0.5) and _redis_ping(
            self.port, timeout=0.5
        )

    def ping(self) -> bool:
        """Send a raw PING; True on +PONG."""
        return _redis_ping(self.port)
