"""A throwaway PostgreSQL cluster for tests (private data directory and unix socket)."""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from trimtab.testing.servers import (
    ProcessServer,
    RunAs,
    ServerStartError,
    ServerUnavailable,
    port_open,
)

__all__ = ["PostgresServer", "find_postgres_bindir"]


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


class PostgresServer(ProcessServer):
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
        self._user: RunAs | None = None

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
            self._user = RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)

    def _run_as(self) -> RunAs | None:
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
        return port_open(self.port)

    def _after_ready(self) -> None:
        """Create the test database."""
        with self._connect("postgres") as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
