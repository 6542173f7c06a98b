"""Throwaway PostgreSQL and Redis servers for tests.

Each server is started from the installed binaries on a free loopback port, with its data (and
the PostgreSQL unix socket) in a private temporary directory that is removed on :meth:`stop`.
Nothing here ever connects to or modifies a server the user runs::

    with PostgresServer() as pg, RedisServer() as redis:
        engine = sqlalchemy.create_engine(pg.sqlalchemy_url)
        ...

When a binary (or, as root, the ``postgres`` system user) is missing, :meth:`start` raises
:class:`ServerUnavailable`, which a test-suite can turn into a skip. Any other failure to start
raises :class:`ServerStartError` with the tail of the server's log.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
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

import psycopg
from psycopg import sql

__all__ = [
    "PostgresServer",
    "RedisServer",
    "ServerStartError",
    "ServerUnavailable",
    "find_postgres_bindir",
    "find_redis_server",
    "free_port",
]

_LOOPBACK = "127.0.0.1"
_PORT_ATTEMPTS = 3


class ServerUnavailable(RuntimeError):
    """A binary (or system user) needed to run a throwaway server is not installed."""


class ServerStartError(RuntimeError):
    """A throwaway server was found but failed to start."""


def free_port(host: str = _LOOPBACK) -> int:
    """Return a TCP port on ``host`` that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_open(port: int, host: str = _LOOPBACK) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class _RunAs:
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
        shutil.rmtree(directory, ignore_errors=True)


class _ProcessServer:
    """Shared lifecycle of a server process living in a private temporary directory."""

    _name = "server"
    _stop_signal = signal.SIGTERM

    def __init__(self, *, port: int | None, startup_timeout: float) -> None:
        self.host = _LOOPBACK
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
            shutil.rmtree(self._dir, ignore_errors=True)
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

    def _run_as(self) -> _RunAs | None:
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


# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------


def _version_key(path: str) -> tuple[int, ...]:
    """Sort key for /usr/lib/postgresql/<version>/bin paths."""
    match = re.search(r"/postgresql/([\d.]+)/", path)
    if match is None:
        return (0,)
    return tuple(int(part) for part in match.group(1).split(".") if part)


def _has_server_binaries(bindir: Path) -> bool:
    """Whether ``bindir`` holds executable initdb and postgres."""
    return all(os.access(bindir / name, os.X_OK) for name in ("initdb", "postgres"))


def find_postgres_bindir() -> Path:
    """Locate initdb/postgres: ``pg_config --bindir``, newest /usr/lib/postgresql, then PATH."""
    tried: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            tried.append(f"{out} (pg_config --bindir)")
            if _has_server_binaries(Path(out)):
                return Path(out)
    else:
        tried.append("pg_config (not on PATH)")
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        tried.append(candidate)
        if _has_server_binaries(Path(candidate)):
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb is not None:
        for bindir in (Path(initdb).parent, Path(initdb).resolve().parent):
            tried.append(f"{bindir} (PATH)")
            if _has_server_binaries(bindir):
                return bindir
    else:
        tried.append("initdb on PATH")
    raise ServerUnavailable(
        "PostgreSQL server binaries (initdb and postgres) not found; looked in: "
        + ", ".join(tried)
        + ". Install the PostgreSQL server package (e.g. apt-get install postgresql)."
    )


class PostgresServer(_ProcessServer):
    """A private PostgreSQL cluster on a free loopback port, user ``postgres`` with trust auth."""

    _name = "postgres"
    _stop_signal = signal.SIGQUIT  # immediate shutdown: the cluster is thrown away anyway

    def __init__(
        self,
        *,
        port: int | None = None,
        database: str = "trimtab",
        bindir: str | os.PathLike[str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        """Configure (but do not start) the server; port None picks a free port."""
        super().__init__(port=port, startup_timeout=startup_timeout)
        self.user = "postgres"
        self.database = database
        self._bindir = Path(bindir) if bindir is not None else None
        self._user: _RunAs | None = None

    @property
    def bindir(self) -> Path:
        """Directory of the PostgreSQL binaries in use."""
        if self._bindir is None:
            self._bindir = find_postgres_bindir()
        return self._bindir

    @property
    def url(self) -> str:
        """libpq/psycopg URL, e.g. ``postgresql://postgres@127.0.0.1:PORT/trimtab``."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def sqlalchemy_url(self) -> str:
        """SQLAlchemy URL using the psycopg 3 driver."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def socket_dir(self) -> Path:
        """Directory holding the server's unix socket."""
        return self.directory

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.directory / "data"

    def _check_binaries(self) -> None:
        """Find the binaries and, as root, the ``postgres`` user (initdb refuses root)."""
        if self._bindir is not None and not _has_server_binaries(self._bindir):
            raise ServerUnavailable(f"initdb/postgres not found in {self._bindir}")
        _ = self.bindir
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                raise ServerUnavailable(
                    "running as root, but there is no 'postgres' system user to run initdb and "
                    "postgres as (initdb refuses to run as root)"
                ) from None
            self._user = _RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)

    def _run_as(self) -> _RunAs | None:
        """The ``postgres`` user when we are root."""
        return self._user

    def _prepare(self, directory: Path) -> None:
        """Hand the directory to the server user and run initdb into it."""
        if self._user is not None:
            os.chown(directory, self._user.uid, self._user.gid)
        command = [
            str(self.bindir / "initdb"),
            "-D",
            str(directory / "data"),
            "-U",
            self.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=max(self.startup_timeout, 120.0),
                check=False,
                **self._popen_kwargs(),
            )
        except subprocess.TimeoutExpired as exc:
            raise ServerStartError(f"initdb timed out: {' '.join(command)}") from exc
        if result.returncode != 0:
            raise ServerStartError(
                f"initdb failed with status {result.returncode}:\n"
                f"{(result.stdout + result.stderr)[-3000:]}"
            )

    def _command(self, port: int) -> list[str]:
        """postgres with speed-over-safety settings."""
        return [
            str(self.bindir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(port),
            "-k",
            str(self.socket_dir),
            "-h",
            self.host,
            "-F",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]

    def _connect(self, dbname: str) -> psycopg.Connection[Any]:
        """A short-timeout autocommit connection through our private unix socket.

        Going through the socket in our own directory guarantees we talk to the server we
        started, even if some other server grabbed the TCP port in the meantime.
        """
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=self.user,
            dbname=dbname,
            connect_timeout=2,
            autocommit=True,
        )

    def _ready(self) -> bool:
        """Whether our server accepts connections (it binds TCP before the unix socket)."""
        if not (self.socket_dir / f".s.PGSQL.{self.port}").exists():
            return False
        try:
            with self._connect("postgres") as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return _port_open(self.port)

    def _after_ready(self) -> None:
        """Create the test database."""
        with self._connect("postgres") as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))


# ---------------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------------


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


def _redis_ping(port: int, host: str = _LOOPBACK, timeout: float = 1.0) -> bool:
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


class RedisServer(_ProcessServer):
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
