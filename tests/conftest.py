"""Shared fixtures: a mock provider, throwaway PostgreSQL, and gateways on real sockets."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import psycopg
import pytest
from sqlalchemy import Engine, func, select

from trimtab.app import create_app
from trimtab.config import Config, parse_config
from trimtab.store.tables import requests
from trimtab.testing.mock_upstream import MockUpstream
from trimtab.testing.outage import RestartableRedis, StoppablePostgres
from trimtab.testing.postgres_server import PostgresServer
from trimtab.testing.redis_server import RedisServer
from trimtab.testing.servers import ServerUnavailable, free_port
from trimtab.testing.serving import ServerThread

ADMIN_KEY = "tt-admin-acme-0001"
APP_KEY = "tt-app-acme-0001"
VIEWER_KEY = "tt-viewer-acme-0001"
GLOBEX_APP_KEY = "tt-app-globex-0001"
GLOBEX_VIEWER_KEY = "tt-viewer-globex-0001"


@pytest.fixture(scope="session")
def upstream() -> Iterator[MockUpstream]:
    with MockUpstream() as mock:
        yield mock


class _Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=_Stoppable)


def started(start: Callable[[], S], what: str) -> Iterator[S]:
    """A fixture's body: the server `start()` returns, stopped afterwards; skipped when its
    binaries are missing, except under CI, which installs them (a failure there, not a skip)."""
    try:
        server = start()
    except ServerUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{what} not available: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One throwaway Redis for the session; tests keep apart by key prefix or FLUSHDB."""
    yield from started(lambda: RedisServer().start(), "redis-server")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    yield from started(lambda: PostgresServer().start(), "PostgreSQL")


@pytest.fixture
def doomed_postgres() -> Iterator[StoppablePostgres]:
    """A PostgreSQL of the test's own, which the test stops (and may start again)."""
    yield from started(lambda: StoppablePostgres().start(), "PostgreSQL")


@pytest.fixture
def killable_redis() -> Iterator[RestartableRedis]:
    """A Redis of the test's own, which the test kills and starts again, empty."""
    yield from started(RestartableRedis, "redis-server")


def _new_database(server: PostgresServer) -> str:
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@127.0.0.1:{server.port}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests against the embedded store and a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/trimtab.db"
    return _new_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/trimtab.db"


def base_config(upstream_url: str, store: str, spill: Path, **extra: Any) -> dict[str, Any]:
    """The README's sample configuration plus models that fail in every way we test."""
    closed = free_port()
    faulty = {
        "gpt-500": "fail-500",
        "gpt-503": "fail-503",
        "gpt-429": "fail-429",
        "gpt-400": "fail-400",
        "gpt-reset": "reset",
        "gpt-badjson": "bad-json",
        "gpt-cut": "cut-stream",
    }
    models: dict[str, Any] = {
        "gpt-mock": {
            "provider": "upstream",
            "model": "mock-1",
            "pricing": {"input_per_mtok": 0.15, "output_per_mtok": 0.60},
        },
        "claude-mock": {
            "provider": "claude",
            "model": "claude-x",
            "pricing": {"input_per_mtok": 3.0, "output_per_mtok": 15.0},
        },
        "sim-1": {"provider": "sim"},
        "embed-mock": {"provider": "upstream", "model": "embed-1"},
        "gpt-hang": {"provider": "upstream", "model": "hang", "timeout_s": 0.5},
        "gpt-down": {"provider": "down", "model": "mock-1"},
        "claude-cut": {"provider": "claude", "model": "cut-stream"},
        "claude-500": {"provider": "claude", "model": "fail-500"},
        **{name: {"provider": "upstream", "model": m} for name, m in faulty.items()},
    }
    config: dict[str, Any] = {
        "store": {"url": store},
        "telemetry": {"spill_path": str(spill), "flush_interval_s": 0.02},
        "providers": {
            "upstream": {"kind": "openai", "base_url": upstream_url + "/v1", "api_key": "sk-up"},
            "claude": {"kind": "anthropic", "base_url": upstream_url, "api_key": "sk-ant-test"},
            "down": {"kind": "openai", "base_url": f"http://127.0.0.1:{closed}/v1"},
            "sim": {"kind": "simulator"},
        },
        "models": models,
    }
    for key, value in extra.items():
        config[key] = value
    return config


KEYS = [
    {"key": ADMIN_KEY, "tenant": "acme", "role": "admin", "owner": "ops@acme"},
    {"key": APP_KEY, "tenant": "acme", "role": "app", "owner": "support-bot"},
    {"key": VIEWER_KEY, "tenant": "acme", "role": "viewer"},
    {"key": GLOBEX_APP_KEY, "tenant": "globex", "role": "app"},
    {"key": GLOBEX_VIEWER_KEY, "tenant": "globex", "role": "viewer"},
]


@dataclass
class Running:
    """A gateway serving on a real socket."""

    server: ServerThread
    config: Config

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def engine(self) -> Engine:
        engine: Engine = self.server_app.state.engine
        return engine

    server_app: Any = None

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(requests)).scalar_one())

    def wait_for_rows(self, n: int, timeout_s: float = 15.0) -> int:
        """Wait until at least n request rows are stored (the writer is asynchronous)."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = self.count()
            if got >= n or time.monotonic() > deadline:
                return got
            time.sleep(0.02)


GatewayFactory = Callable[..., Running]


@pytest.fixture
def gateway(upstream: MockUpstream, sqlite_url: str, tmp_path: Path) -> Iterator[GatewayFactory]:
    """Start gateways: `gateway(store=url, keys=[...], **config_overrides)`."""
    started: list[ServerThread] = []

    def start(store: str | None = None, **extra: Any) -> Running:
        data = base_config(upstream.url, store or sqlite_url, tmp_path / "spill.jsonl", **extra)
        config = parse_config(data, "test-config")
        app = create_app(config)
        server = ServerThread(app).start()
        started.append(server)
        return Running(server=server, config=config, server_app=app)

    yield start
    for server in started:
        server.stop()
