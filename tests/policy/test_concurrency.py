"""Concurrent requests against a nearly spent budget overspend by at most one request's cost.

Each request reserves its estimate before the call and settles a real cost no higher than
that estimate (the condition of the guarantee in docs/policy.md), after a random delay so
that admissions and settlements interleave.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.policy.support import PolicyFactory, StateFactory, config, pricing
from trimtab.errors import LimitExceeded
from trimtab.policy.service import Ask, Policy
from trimtab.state.redis import RedisState
from trimtab.store.engine import make_engine
from trimtab.testing.redis_server import RedisServer

LIMIT = 1.0
ALREADY_SPENT = 0.95
# 1000 input + 1000 output tokens of gpt-big: $0.01 + $0.03 reserved per request
ESTIMATE = (1000 * 10 + 1000 * 30) / 1e6
KEY = "budget:tenant:{}:month:{}"


def budgets(tenant: str) -> list[dict[str, Any]]:
    return [{"scope": f"tenant:{tenant}", "period": "month", "usd": LIMIT, "on_exceed": "block"}]


async def one_request(policy: Policy, tenant: str, rng: random.Random) -> float | None:
    """Admit, 'call the provider', settle. The cost charged, or None when refused."""
    ask = Ask(tenant, "key_1", "gpt-big", None, None, 1000, 1000)
    try:
        admission = await policy.admit(ask, pricing)
    except LimitExceeded as err:
        assert err.code == "budget_exceeded", err.message
        return None
    await asyncio.sleep(rng.uniform(0, 0.01))
    cost = rng.choice([ESTIMATE, rng.uniform(0.2, 1.0) * ESTIMATE])
    await policy.settle(admission, ask, cost, 1000, 1000)
    return cost


def month_key(policy: Policy, tenant: str) -> str:
    return KEY.format(tenant, policy.now().strftime("%Y-%m"))


async def test_one_policy(new_policy: PolicyFactory) -> None:
    for seed in range(3):
        tenant = f"t{seed}"
        policy = await new_policy(budgets=budgets(tenant))
        rng = random.Random(seed)
        await policy._state.budget_seed(month_key(policy, tenant), ALREADY_SPENT, 3600)
        charged = await asyncio.gather(*(one_request(policy, tenant, rng) for _ in range(100)))
        await check(policy, tenant, charged)


@pytest.mark.parametrize("instances", [2, 4])
async def test_several_policies_on_one_state(
    new_policy: PolicyFactory, new_state: StateFactory, instances: int
) -> None:
    """With Redis each Policy has its own client: gateway processes sharing one Redis."""
    tenant = f"t{instances}"
    policies = [await new_policy(new_state(), budgets=budgets(tenant)) for _ in range(instances)]
    await policies[0]._state.budget_seed(month_key(policies[0], tenant), ALREADY_SPENT, 3600)
    rng = random.Random(instances)
    charged = await asyncio.gather(
        *(one_request(policies[i % instances], tenant, rng) for i in range(100))
    )
    for policy in policies:
        await check(policy, tenant, charged)


async def check(policy: Policy, tenant: str, charged: list[float | None]) -> None:
    admitted = [c for c in charged if c is not None]
    status = await policy._state.budget_status(month_key(policy, tenant))
    assert status is not None
    assert status.reserved == pytest.approx(0.0, abs=1e-9)  # every reservation released
    assert status.spent == pytest.approx(ALREADY_SPENT + sum(admitted))
    # the guarantee: over the limit by less than the cost of one request
    assert status.spent < LIMIT + max(admitted)
    assert admitted and len(admitted) < 100  # some went through, most were refused


# -- two real processes on one Redis ---------------------------------------------------------


def process_worker(
    redis_url: str, prefix: str, store: str, start_at: float, seed: int
) -> list[float | None]:
    """One gateway process: its own Policy, its own Redis client, 50 concurrent requests."""

    async def main() -> list[float | None]:
        engine = make_engine(store)
        state = RedisState(redis_url, prefix=prefix)
        policy = Policy(config(budgets=budgets("acme")), state, engine)
        await policy.start()
        rng = random.Random(seed)
        await asyncio.sleep(max(start_at - time.time(), 0))  # both processes start together
        try:
            return await asyncio.gather(*(one_request(policy, "acme", rng) for _ in range(50)))
        finally:
            await policy.close()
            await state.close()
            engine.dispose()

    return asyncio.run(main())


async def test_two_processes_on_one_redis(
    redis_server: RedisServer, sqlite_engine: Engine, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    store = str(sqlite_engine.url)
    state = RedisState(redis_server.url, prefix=prefix)
    policy = Policy(config(budgets=budgets("acme")), state, sqlite_engine)
    try:
        await state.budget_seed(month_key(policy, "acme"), ALREADY_SPENT, 3600)
        start_at = time.time() + 3.0
        loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(2, mp_context=context) as pool:
            results = await asyncio.gather(
                *(
                    loop.run_in_executor(
                        pool, process_worker, redis_server.url, prefix, store, start_at, seed
                    )
                    for seed in (1, 2)
                )
            )
        charged = [c for result in results for c in result]
        assert len(charged) == 100
        await check(policy, "acme", charged)
    finally:
        await state.close()
