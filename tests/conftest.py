"""Shared fixtures: a mock provider, throwaway PostgreSQL, and gateways on real sockets.

The constants and helpers tests share are in tests/support.py (and a package's own in
tests/<package>/support.py); the names below from there are kept for older imports."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
from sqlalchemy import Engine

from tests.policy.support import PolicyFactory, StateFactory, config
from tests.rollouts.support import FAST, STEPWISE, WIDENING_FIRST_SEEN
from tests.support import (
    ROUTE_KEYS,
    GatewayFactory,
    Running,
    base_config,
    new_database,
)
from trimtab.app import create_app
from trimtab.config import StoreConfig, TelemetryConfig, default_config, parse_config
from trimtab.policy.service import Policy
from trimtab.state.base import SharedState
from trimtab.state.memory import MemoryState
from trimtab.state.redis import RedisState
from trimtab.store.engine import make_engine, migrate
from trimtab.testing.mock_upstream import MockUpstream
from trimtab.testing.outage import RestartableRedis, StoppablePostgres
from trimtab.testing.postgres_server import PostgresServer
from trimtab.testing.redis_server import RedisServer
from trimtab.testing.servers import ServerUnavailable
from trimtab.testing.serving import ServerThread


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


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests against the embedded store and a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/trimtab.db"
    return new_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/trimtab.db"


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


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    """A migrated store, on SQLite and on PostgreSQL."""
    made = make_engine(store_url)
    migrate(made)
    yield made
    made.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite store of the test's own."""
    eng = make_engine(f"sqlite:///{tmp_path}/policy.db")
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture(params=["memory", "redis"])
async def new_state(request: pytest.FixtureRequest) -> AsyncIterator[StateFactory]:
    """Make states that share one backend: one MemoryState, or Redis clients on one prefix
    (as separate gateway processes would)."""
    made: list[SharedState] = []
    if request.param == "memory":
        memory = MemoryState()

        def factory() -> SharedState:
            return memory

    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        prefix = f"t{uuid.uuid4().hex[:10]}:"

        def factory() -> SharedState:
            state = RedisState(server.url, prefix=prefix)
            made.append(state)
            return state

    yield factory
    for state in made:
        await state.close()


@pytest.fixture
async def new_policy(
    new_state: StateFactory, sqlite_engine: Engine
) -> AsyncIterator[PolicyFactory]:
    """Start policies on `sqlite_engine`: `await new_policy(limits=[...], budgets=[...])`."""
    started: list[Policy] = []

    async def make(state: SharedState | None = None, **extra: Any) -> Policy:
        options = {
            k: extra.pop(k)
            for k in ("clock", "default_output_tokens", "webhook_backoff_s", "close_timeout_s")
            if k in extra
        }
        policy = Policy(config(**extra), state or new_state(), sqlite_engine, **options)
        await policy.start()
        started.append(policy)
        return policy

    yield make
    for policy in started:
        await policy.close()


@pytest.fixture
def rollouts_running(gateway: GatewayFactory, upstream: MockUpstream, tmp_path: Path) -> Running:
    """A gateway for releases: the route keys, a flaky and a 20 ms simulated model, the
    rollout plans `fast` and `stepwise`, the controller checking every 50 ms."""
    config = base_config(upstream.url, "sqlite://", tmp_path / "x")
    providers = config["providers"]
    providers["sim-flaky"] = {"kind": "simulator", "error_rate": 0.1, "seed": 7}
    models = config["models"]
    models["sim-bad"] = {"provider": "sim-flaky", "model": "sim-1"}
    # a model whose latency is its own (20 ms), not the test machine's scheduling noise
    providers["sim-20ms"] = {"kind": "simulator", "latency_ms": 20}
    models["sim-slow"] = {"provider": "sim-20ms", "model": "sim-1"}
    return gateway(
        keys=ROUTE_KEYS,
        providers=providers,
        models=models,
        rollouts={
            "check_interval_s": 0.05,
            "plans": {"fast": FAST, "stepwise": STEPWISE, "first-seen": WIDENING_FIRST_SEEN},
        },
    )


@pytest.fixture
def embedded_default(tmp_path: Path) -> Iterator[str]:
    """`make run`'s configuration, with its SQLite file and spill file in a scratch folder."""
    config = default_config().model_copy(
        update={
            "store": StoreConfig(url=f"sqlite:///{tmp_path}/trimtab.db"),
            "telemetry": TelemetryConfig(spill_path=str(tmp_path / "spill.jsonl")),
        }
    )
    server = ServerThread(create_app(config)).start()
    try:
        yield server.url
    finally:
        server.stop()
