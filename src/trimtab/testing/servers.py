"""Throwaway servers for tests: the shared process life cycle and free loopback ports.

:class:`trimtab.testing.postgres_server.PostgresServer` and
:class:`trimtab.testing.redis_server.RedisServer` build on :class:`ProcessServer`. Each is
started from the installed binaries on a free loopback port, with its data in a private
temporary directory that is removed on :meth:`ProcessServer.stop`. Nothing here ever connects
to or modifies a server the user runs::

    with PostgresServer() as pg, RedisServer() as redis:
        engine = sqlalchemy.create_engine(pg.sqlalchemy_url)
        ...

When a binary (or, as root, the ``postgres`` system user) is missing, :meth:`start` raises
:class:`ServerUnavailable`, which a test-suite can turn into a skip. Any other failure to start
raises :class:`ServerStartError` with the tail of the server's log.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import types
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Self

__all__ = [
    "LOOPBACK",
    "ProcessServer",
    "RunAs",
    "ServerStartError",
    "ServerUnavailable",
    "free_port",
    "port_open",
]

LOOPBACK = "127.0.0.1"
_PORT_ATTEMPTS = 3


class ServerUnavailable(RuntimeError):
    """A binary (or system user) needed to run a throwaway server is not installed."""


class ServerStartError(RuntimeError):
    """A throwaway server was found but failed to start."""


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on ``host`` that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class RunAs:
    """Credentials for running a child process as another user (root only)."""

    name: str
    uid: int
    gid: int


def _terminate(
    proc: subprocess.Popen[bytes], sig: signal.Signals, directory: str, log: IO[bytes]
) -> None:
    """Stop ``proc`` with ``sig`` (then SIGKILL), close its log and remove ``directory``."""
    try:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
    finally:
        log.close()
        _remove(directory)


def _remove(directory: str) -> None:
    """Remove ``directory``: it is renamed away at once (so it is gone when this returns)
    and its files are deleted by a detached ``rm`` — a test PostgreSQL with a few hundred
    databases holds ~90,000 files, whose deletion took 9-19 s at the end of every test
    worker. Deleted in place when it cannot be renamed."""
    doomed = f"{directory}.removed"
    try:
        Path(directory).rename(doomed)
    except OSError:
        shutil.rmtree(directory, ignore_errors=True)
        return
    try:  # the shell backgrounds rm and exits: nothing is left to wait for
        subprocess.run(
            ["sh", "-c", 'rm -rf -- "$1" >/dev/null 2>&1 &', "sh", doomed],
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except OSError:
        shutil.rmtree(doomed, ignore_errors=True)


class ProcessServer:
    """Shared lifecycle of a server process living in a private temporary directory."""

    _name = "server"
    _stop_signal = signal.SIGTERM

    def __init__(self, *, port: int | None, startup_timeout: float) -> None:
        self.host = LOOPBACK
        self._requested_port = port
        self._port: int | None = None
        self.startup_timeout = startup_timeout
        self._dir: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    # -- public ---------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        if self._port is None:
            raise RuntimeError(f"{self._name} is not started")
        return self._port

    @property
    def directory(self) -> Path:
        """The private temporary directory holding the server's files."""
        if self._dir is None:
            raise RuntimeError(f"{self._name} is not started")
        return Path(self._dir)

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        """PID of the server process."""
        if self._proc is None:
            raise RuntimeError(f"{self._name} is not started")
        return self._proc.pid

    def log_text(self) -> str:
        """What the server has written to its log so far."""
        if self._dir is None:
            return ""
        try:
            return (Path(self._dir) / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> Self:
        """Start the server and wait until it serves requests."""
        if self._proc is not None:
            raise RuntimeError(f"{self._name} already started")
        self._check_binaries()
        self._dir = tempfile.mkdtemp(prefix=f"trimtab-{self._name}-")
        try:
            self._prepare(Path(self._dir))
            self._launch_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server and remove its directory (idempotent)."""
        if self._finalizer is not None:
            self._finalizer()
        elif self._dir is not None:
            _remove(self._dir)
        self._finalizer = None
        self._proc = None
        self._log = None
        self._dir = None

    def __enter__(self) -> Self:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    # -- hooks ----------------------------------------------------------------------------------

    def _check_binaries(self) -> None:
        """Raise ServerUnavailable if something needed is missing."""
        raise NotImplementedError

    def _prepare(self, directory: Path) -> None:
        """One-off setup of the directory before the first launch."""

    def _command(self, port: int) -> list[str]:
        """The server command line for ``port``."""
        raise NotImplementedError

    def _run_as(self) -> RunAs | None:
        """The user to run the server as (None: the current user)."""
        return None

    def _ready(self) -> bool:
        """Whether the server answers requests yet."""
        raise NotImplementedError

    def _after_ready(self) -> None:
        """Setup once the server is up."""

    # -- internals ------------------------------------------------------------------------------

    def _popen_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that run a child as ``_run_as()`` inside our directory."""
        kwargs: dict[str, Any] = {"cwd": self._dir, "stdin": subprocess.DEVNULL}
        run_as = self._run_as()
        if run_as is not None:
            kwargs.update(user=run_as.uid, group=run_as.gid, extra_groups=[])
        return kwargs

    def _launch_until_ready(self) -> None:
        """Launch the process, retrying on a port race when the port was chosen by us."""
        assert self._dir is not None
        attempts = 1 if self._requested_port is not None else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._requested_port or free_port()
            log = open(Path(self._dir) / "server.log", "ab")  # noqa: SIM115 - closed by finalizer
            proc = subprocess.Popen(
                self._command(port), stdout=log, stderr=subprocess.STDOUT, **self._popen_kwargs()
            )
            self._proc, self._log, self._port = proc, log, port
            self._finalizer = weakref.finalize(
                self, _terminate, proc, self._stop_signal, self._dir, log
            )
            if self._wait_ready(proc):
                self._after_ready()
                return
            log_text = self.log_text()
            # The server exited: forget this process, but keep the directory for a retry.
            self._finalizer.detach()
            self._finalizer = None
            log.close()
            self._proc = self._log = None
            if "already in use" in log_text and attempt < attempts:
                continue
            raise ServerStartError(
                f"{self._name} exited with status {proc.returncode} while starting on port "
                f"{port}; log:\n{log_text[-3000:]}"
            )

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> bool:
        """Poll until ready (True) or the process exits (False); raise on timeout."""
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            if self._ready():
                return True
            time.sleep(0.05)
        raise ServerStartError(
            f"{self._name} did not become ready within {self.startup_timeout:g}s; "
            f"log:\n{self.log_text()[-3000:]}"
        )
