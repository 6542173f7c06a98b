"""A block budget keeps its spend across a Redis restart: burst 1 spends about half of it,
Redis restarts empty (quickly, unseen by the gateway; or after an outage the gateway served
through), burst 2 runs into the limit. Settled spend stays within one request's cost of the
limit, the bound docs/policy.md states for one process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.policy.support import MSGS, models
from tests.support import APP_KEY, KEYS, GatewayFactory, Running
from trimtab.store.tables import requests
from trimtab.testing.mock_upstream import MockUpstream
from trimtab.testing.outage import RestartableRedis

LIMIT = 1.0


def spend(running: Running) -> tuple[float, float]:
    """(total, largest single) settled cost in the store."""
    with running.engine.connect() as conn:
        total, largest = conn.execute(
            select(func.coalesce(func.sum(requests.c.cost_usd), 0.0), func.max(requests.c.cost_usd))
        ).one()
    return float(total), float(largest or 0.0)


def burst(running: Running, n: int) -> list[str]:
    """n concurrent calls: "ok", "spent" (refused: the budget's settled spend reached the
    limit) or "taken" (refused: reservations of calls in flight stand in the way)."""

    async def run() -> list[str]:
        async with httpx.AsyncClient(timeout=30) as http:

            async def one() -> str:
                resp = await http.post(
                    running.url + "/v1/chat/completions",
                    json={"model": "pricey", "messages": MSGS, "max_tokens": 10},
                    headers={"authorization": f"Bearer {APP_KEY}"},
                )
                if resp.status_code == 200:
                    return "ok"
                assert resp.status_code == 429, resp.text
                return "spent" if " is spent: " in resp.json()["error"]["message"] else "taken"

            return list(await asyncio.gather(*(one() for _ in range(n))))

    return asyncio.run(run())


@pytest.mark.parametrize("how", ["restart", "outage"])
def test_a_block_budget_survives_a_redis_restart(
    gateway: GatewayFactory,
    upstream: MockUpstream,
    tmp_path: Path,
    killable_redis: RestartableRedis,
    how: str,
) -> None:
    running = gateway(
        keys=KEYS,
        models=models(upstream, tmp_path),
        state={"url": killable_redis.url, "probe_interval_s": 0.05},
        budgets=[{"scope": "tenant:acme", "period": "day", "usd": LIMIT, "on_exceed": "block"}],
    )
    sent = 0
    while spend(running)[0] < LIMIT / 2:
        assert burst(running, 1) == ["ok"]
        sent += 1
        assert running.wait_for_rows(sent) == sent
    assert spend(running)[0] < LIMIT  # burst 1 left room

    if how == "restart":
        killable_redis.restart()  # back empty before the gateway's next call
    else:
        killable_redis.kill()
        outcomes = burst(running, 10)  # served and counted in the process
        assert "ok" in outcomes
        sent += len(outcomes)
        killable_redis.start()  # empty
    # burst 2, in waves until the budget refuses because it is spent
    for _ in range(20):
        outcomes = burst(running, 10)
        sent += len(outcomes)
        if "spent" in outcomes:
            break
    assert "spent" in outcomes
    assert running.wait_for_rows(sent) == sent
    total, largest = spend(running)
    assert LIMIT <= total <= LIMIT + largest + 1e-9
