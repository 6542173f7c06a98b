"""A small budget under concurrency is spent to within one request of its limit (issue 11).

The issue's scenario: a budget worth about 25 requests, 80 requests sent by 4 concurrent
clients, none of which sets `max_tokens`. The provider takes a few ms and a refusal none,
so a client refused because reservations in flight fill the budget sends its next request
at once. Reserving 1,024 output tokens for answers of ~50 (the old estimate) let one or
two requests in flight while the others burnt the 80 on refusals, and the spend stopped
well short of the limit. Reserving the model's recent p95 spends the budget to within
about one request of its limit, and the spend stays inside both bounds docs/policy.md
states, checked here with the very reservations and costs of the run.

Each request's in-flight set is taken wide (every request admitted and not yet settled
while its `admit` ran), so the bounds checked are never tighter than the stated ones.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.policy.support import PolicyFactory, StateFactory, pricing
from trimtab.alerts.events import list_events
from trimtab.errors import LimitExceeded
from trimtab.policy.service import Ask, Policy

INPUT = 20  # tokens, estimated exactly, so the test measures the output estimate
OUT_LOW, OUT_HIGH = 45, 55  # output tokens of an answer, uniform: 1,024 is 20x too many
WORKERS, REQUESTS = 4, 80
WARM = 20  # answers of the model seen before the scenario: the estimator's min_samples
BIG = pricing("gpt-big")
MEAN_COST = BIG.cost(INPUT, (OUT_LOW + OUT_HIGH) // 2) or 0.0
LIMIT = 25.5 * MEAN_COST  # worth about 25 requests; the half keeps off float ties


def budget(tenant: str) -> list[dict[str, Any]]:
    return [{"scope": f"tenant:{tenant}", "period": "day", "usd": LIMIT, "on_exceed": "block"}]


def ask(tenant: str) -> Ask:
    return Ask(tenant, "key_1", "gpt-big", None, None, INPUT, None)  # no max_tokens


@dataclass
class Run:
    """What happened to each request: reservation, cost, and who was in flight around it."""

    reserved: dict[int, float] = field(default_factory=dict)
    cost: dict[int, float] = field(default_factory=dict)
    refused: list[int] = field(default_factory=list)
    around: dict[int, set[int]] = field(default_factory=dict)  # in flight during its admit
    in_flight: set[int] = field(default_factory=set)
    admitting: set[int] = field(default_factory=set)

    def admitted(self, i: int, reserved: float) -> None:
        self.reserved[i] = reserved
        for j in self.admitting:
            self.around[j].add(i)  # admitted while j's admit ran: maybe before j's
        self.in_flight.add(i)


async def warm_up(policy: Policy, rng: random.Random) -> None:
    """Answers of the model for a tenant without a budget: the model has a history."""
    for _ in range(WARM):
        a = ask("other")
        admission = await policy.admit(a, pricing)
        out = rng.randint(OUT_LOW, OUT_HIGH)
        await policy.settle(admission, a, BIG.cost(INPUT, out), INPUT, out)


async def scenario(policies: list[Policy], tenant: str, rng: random.Random) -> Run:
    run = Run()
    todo = iter(range(REQUESTS))

    async def client(w: int) -> None:
        policy = policies[w % len(policies)]
        for i in todo:
            a = ask(tenant)
            run.around[i] = set(run.in_flight)
            run.admitting.add(i)
            try:
                admission = await policy.admit(a, pricing)
            except LimitExceeded as err:
                assert err.code == "budget_exceeded", err.message
                run.refused.append(i)
                continue  # a refusal is instant: the client sends its next request
            finally:
                run.admitting.discard(i)
            run.admitted(i, admission.holds[0].reserved)
            await asyncio.sleep(
                rng.uniform(0.002, 0.006)
            )  # the provider answers; a refusal is faster
            out = rng.randint(OUT_LOW, OUT_HIGH)
            cost = BIG.cost(INPUT, out) or 0.0
            await policy.settle(admission, a, cost, INPUT, out)
            run.cost[i] = cost
            run.in_flight.discard(i)

    await asyncio.gather(*(client(w) for w in range(WORKERS)))
    return run


async def check(run: Run, policy: Policy, tenant: str, engine: Engine) -> None:
    key = f"budget:tenant:{tenant}:day:{policy.now():%Y-%m-%d}"
    status = await policy._state.budget_status(key)
    assert status is not None and status.reserved == pytest.approx(0.0, abs=1e-12)
    spent = status.spent
    assert spent == pytest.approx(sum(run.cost.values()))
    assert len(run.cost) + len(run.refused) == REQUESTS and run.refused
    # the upper bound, for the last request admitted: its cost, plus what the requests in
    # flight when it was admitted cost beyond their reservations. Which request the state
    # admitted last is not visible here; it is one of them, so the largest bound holds
    bound = max(
        run.cost[k] + sum(max(0.0, run.cost[j] - run.reserved[j]) for j in run.around[k])
        for k in run.cost
    )
    assert spent < LIMIT + bound
    # the lower bound, for every refused request: settled + reserved had reached the limit,
    # and each reservation then in flight settled at its cost
    for r in run.refused:
        under = sum(max(0.0, run.reserved[j] - run.cost[j]) for j in run.around[r])
        assert spent >= LIMIT - under - 1e-12
    # what the issue asks: within about one request of the limit, either side (above it,
    # by the last request plus the few tokens answers above the p95 add)
    assert LIMIT - min(run.cost.values()) < spent < LIMIT + 1.1 * max(run.cost.values()), (
        f"spent {spent / LIMIT:.0%} of the limit with {len(run.cost)} requests served"
    )
    # and the 80 % alert fired (the pipeline records it in the background)
    for _ in range(500):
        events = list_events(engine, None, {f"tenant:{tenant}"}, 10)
        if any(e["threshold"] == 0.8 for e in events):
            break
        await asyncio.sleep(0.01)
    assert 0.8 in {e["threshold"] for e in events}


async def test_one_policy_spends_a_small_budget_to_its_limit(
    new_policy: PolicyFactory, sqlite_engine: Engine
) -> None:
    for seed in range(3):
        tenant = f"small{seed}"
        policy = await new_policy(budgets=budget(tenant))
        rng = random.Random(seed)
        await warm_up(policy, rng)
        run = await scenario([policy], tenant, rng)
        await check(run, policy, tenant, sqlite_engine)


async def test_two_policies_on_one_state_spend_it_to_its_limit(
    new_policy: PolicyFactory, new_state: StateFactory, sqlite_engine: Engine
) -> None:
    """With Redis each Policy has its own client and its own estimator: two gateways."""
    tenant = "shared"
    policies = [await new_policy(new_state(), budgets=budget(tenant)) for _ in range(2)]
    rng = random.Random(7)
    for policy in policies:
        await warm_up(policy, rng)
    run = await scenario(policies, tenant, rng)
    for policy in policies:
        await check(run, policy, tenant, sqlite_engine)


async def test_what_a_request_reserves(new_policy: PolicyFactory) -> None:
    """The cap or 1,024 until the model has 20 answers; then their p95, capped; per model."""
    policy = await new_policy(budgets=budget("acme"))
    key = f"budget:tenant:acme:day:{policy.now():%Y-%m-%d}"

    async def reserved(model: str = "gpt-big", cap: int | None = None) -> float:
        a = Ask("acme", "key_1", model, None, None, INPUT, cap)
        admission = await policy.admit(a, pricing)
        status = await policy._state.budget_status(key)
        assert status is not None
        await policy.settle(admission, a, None, INPUT, 5000)  # a failure: nothing learnt
        return status.reserved

    async def answer(out: int, model: str = "gpt-big") -> None:
        a = Ask("other", None, model, None, None, INPUT, None)
        admission = await policy.admit(a, pricing)
        await policy.settle(admission, a, pricing(model).cost(INPUT, out), INPUT, out)

    assert await reserved() == pytest.approx(BIG.cost(INPUT, 1024))
    assert await reserved(cap=4000) == pytest.approx(BIG.cost(INPUT, 4000))
    for out in range(1, 20):  # 19 answers: still cold
        await answer(out * 10)
    assert await reserved() == pytest.approx(BIG.cost(INPUT, 1024))
    await answer(200)  # 10, 20, ..., 200: the 19th of 20 is 190
    assert await reserved() == pytest.approx(BIG.cost(INPUT, 190))
    assert await reserved(cap=4000) == pytest.approx(BIG.cost(INPUT, 190))
    assert await reserved(cap=50) == pytest.approx(BIG.cost(INPUT, 50))
    # a call cut short is charged, but its length is not learnt
    cut = Ask("acme", "key_1", "gpt-big", None, None, INPUT, None)
    one = BIG.cost(INPUT, 1)
    assert one is not None
    before = await policy._state.budget_status(key)
    for _ in range(40):
        admission = await policy.admit(cut, pricing)
        await policy.settle(admission, cut, one, INPUT, 1, completed=False)
    after = await policy._state.budget_status(key)
    assert before is not None and after is not None
    assert after.spent == pytest.approx(before.spent + 40 * one)
    # the failures reserved() settled taught nothing; another model has its own answers
    assert await reserved() == pytest.approx(BIG.cost(INPUT, 190))
    small = pricing("gpt-small")
    assert await reserved("gpt-small") == pytest.approx(small.cost(INPUT, 1024))
