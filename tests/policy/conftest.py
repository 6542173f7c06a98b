"""Fixtures for the policy tests: a migrated store, shared state (memory or Redis), a Policy."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from trimtab.config import Config, Pricing, parse_config
from trimtab.policy.service import Policy
from trimtab.state.base import SharedState
from trimtab.state.memory import MemoryState
from trimtab.state.redis import RedisState
from trimtab.store.engine import make_engine, migrate
from trimtab.testing.redis_server import RedisServer

PRICES = {
    "gpt-big": Pricing(input_per_mtok=10.0, output_per_mtok=30.0),
    "gpt-small": Pricing(input_per_mtok=1.0, output_per_mtok=2.0),
    "gpt-tiny": Pricing(input_per_mtok=0.1, output_per_mtok=0.2),
}


def pricing(model: str) -> Pricing:
    return PRICES[model]


def config(**extra: Any) -> Config:
    data: dict[str, Any] = {
        "providers": {"sim": {"kind": "simulator"}},
        "models": {
            name: {"provider": "sim", "pricing": p.model_dump()} for name, p in PRICES.items()
        },
        **extra,
    }
    return parse_config(data, "policy-test")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path}/policy.db")
    migrate(eng)
    yield eng
    eng.dispose()


StateFactory = Callable[[], SharedState]


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


PolicyFactory = Callable[..., Awaitable[Policy]]


@pytest.fixture
async def new_policy(new_state: StateFactory, engine: Engine) -> AsyncIterator[PolicyFactory]:
    """Start policies: `await new_policy(limits=[...], budgets=[...], alerts={...})`."""
    started: list[Policy] = []

    async def make(state: SharedState | None = None, **extra: Any) -> Policy:
        options = {
            k: extra.pop(k)
            for k in ("clock", "default_output_tokens", "webhook_backoff_s", "close_timeout_s")
            if k in extra
        }
        policy = Policy(config(**extra), state or new_state(), engine, **options)
        await policy.start()
        started.append(policy)
        return policy

    yield make
    for policy in started:
        await policy.close()
