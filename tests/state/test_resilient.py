"""ResilientState against a real Redis that is killed and restarted (its own server, so the
session's Redis is left alone): calls keep being answered, budgets keep a bound, and Redis is
re-seeded when it comes back or turns out to have lost its data."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from trimtab.state.redis import RedisState
from trimtab.state.resilient import ResilientState, Seeds
from trimtab.testing.outage import RestartableRedis

HOUR = 3600.0
KEY = "budget:tenant:acme:day:2026-12-01"


class Store:
    """What the policy's seeder reads: settled spend per account, as the store has it."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self.reads = 0

    async def seeds(self) -> Seeds:
        self.reads += 1
        return {key: (usd, HOUR) for key, usd in self.spent.items()}


@pytest.fixture
async def made(killable_redis: RestartableRedis) -> AsyncIterator[list[ResilientState]]:
    states: list[ResilientState] = []
    yield states
    for state in states:
        await state.close()


def resilient(
    killable_redis: RestartableRedis, made: list[ResilientState], share: int = 1
) -> tuple[ResilientState, CollectorRegistry]:
    registry = CollectorRegistry()
    state = ResilientState(
        RedisState(killable_redis.url, timeout_s=1.0),
        share=share,
        probe_interval_s=0.05,
        registry=registry,
    )
    made.append(state)
    return state, registry


async def until(check: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def fallbacks(registry: CollectorRegistry, operation: str) -> float:
    value = registry.get_sample_value("trimtab_state_fallbacks_total", {"operation": operation})
    return value or 0.0


async def test_calls_are_answered_locally_while_redis_is_down_then_shared_again(
    killable_redis: RestartableRedis, made: list[ResilientState]
) -> None:
    state, registry = resilient(killable_redis, made)
    await state.start()
    assert registry.get_sample_value("trimtab_state_up") == 1.0
    await state.cache_set("before", b"1", HOUR)

    killable_redis.kill()
    assert await state.cache_get("before") is None  # Redis's entries are out of reach
    assert not state.up
    assert registry.get_sample_value("trimtab_state_up") == 0.0
    await state.cache_set("during", b"2", HOUR)
    assert await state.cache_get("during") == b"2"
    await state.breaker_trip("dep", time.time() + HOUR)
    assert await state.breaker_open_until("dep") > time.time()
    assert await state.assign("r1", "user-1", b"c", HOUR) == b"c"
    assert await state.assign("r1", "user-1", b"s", HOUR) == b"c"  # sticky in this process
    decision = await state.window_acquire("rl:rpm:tenant:acme", 1, 10, 60)
    assert decision.allowed
    for operation in ("cache_get", "cache_set", "breaker_trip", "assign", "window_acquire"):
        assert fallbacks(registry, operation) >= 1, operation

    killable_redis.start()  # empty: no persistence
    await until(lambda: state.up)
    assert registry.get_sample_value("trimtab_state_up") == 1.0
    # the outage's local state is dropped; what is written now is shared with other clients
    assert await state.cache_get("during") is None
    assert await state.breaker_open_until("dep") == 0.0
    await state.cache_set("after", b"3", HOUR)
    peer = RedisState(killable_redis.url)
    try:
        assert await peer.cache_get("after") == b"3"
    finally:
        await peer.close()
    served_locally = fallbacks(registry, "cache_get")
    await state.cache_get("after")
    assert fallbacks(registry, "cache_get") == served_locally


async def test_redis_down_at_start_serves_locally_and_joins_when_it_answers(
    killable_redis: RestartableRedis, made: list[ResilientState]
) -> None:
    killable_redis.kill()
    state, _ = resilient(killable_redis, made)
    store = Store()
    store.spent[KEY] = 0.5
    await state.start()
    await state.seed_budgets(await store.seeds(), store.seeds)
    assert not state.up
    got = await state.budget_reserve(KEY, 0.1, 1.0, HOUR)
    assert got.ok and got.spent == 0.5
    await state.budget_settle(KEY, 0.1, 0.1, HOUR)
    killable_redis.start()
    await until(lambda: state.up)
    # this process's outage spend (not in the store yet) is carried into Redis
    status = await state.primary.budget_status(KEY)
    assert status is not None and status.spent == pytest.approx(0.6)


async def test_a_budget_spends_only_its_share_of_what_was_left_during_an_outage(
    killable_redis: RestartableRedis, made: list[ResilientState]
) -> None:
    state, registry = resilient(killable_redis, made, share=2)
    store = Store()
    store.spent[KEY] = 0.2
    await state.start()
    await state.seed_budgets(await store.seeds(), store.seeds)
    got = await state.budget_reserve(KEY, 0.4, 1.0, HOUR)
    assert got.ok and got.spent == pytest.approx(0.2)
    await state.budget_settle(KEY, 0.4, 0.4, HOUR)  # Redis: 0.6 settled

    killable_redis.kill()
    admitted = 0
    while (await state.budget_reserve(KEY, 0.05, 1.0, HOUR)).ok:
        admitted += 1
        await state.budget_settle(KEY, 0.05, 0.05, HOUR)
        assert admitted < 100
    # half of the $0.40 left: 0.6 + 0.2, passed by at most one request
    spent = (await state.budget_status(KEY) or pytest.fail("no status")).spent
    assert 0.8 <= spent < 0.8 + 0.05 + 1e-9
    assert fallbacks(registry, "budget_reserve") == admitted + 1

    killable_redis.start()  # empty
    await until(lambda: state.up)
    status = await state.primary.budget_status(KEY)
    assert status is not None and status.spent == pytest.approx(spent)


async def test_a_redis_restart_unseen_by_this_process_is_reseeded_from_the_store(
    killable_redis: RestartableRedis, made: list[ResilientState]
) -> None:
    state, registry = resilient(killable_redis, made)
    state._probe_interval = HOUR  # only the budget script may notice the restart
    store = Store()
    await state.start()
    await state.seed_budgets({}, store.seeds)
    assert (await state.budget_reserve(KEY, 0.3, 1.0, HOUR)).ok
    await state.budget_settle(KEY, 0.3, 0.3, HOUR)
    store.spent[KEY] = 0.3  # the telemetry writer has stored the call

    killable_redis.restart()  # back empty before this process made a call: no outage seen here
    reads = store.reads
    got = await state.budget_reserve(KEY, 0.1, 1.0, HOUR)
    assert got.ok and got.spent == pytest.approx(0.3)
    assert store.reads == reads + 1
    assert state.up and fallbacks(registry, "budget_reserve") == 0


async def test_the_probe_notices_an_empty_redis_while_idle(
    killable_redis: RestartableRedis, made: list[ResilientState]
) -> None:
    state, _ = resilient(killable_redis, made)
    store = Store()
    store.spent[KEY] = 0.7
    await state.start()
    await state.seed_budgets(await store.seeds(), store.seeds)
    killable_redis.restart()
    peer = RedisState(killable_redis.url)
    try:
        await until(lambda: store.reads >= 2)

        async def seeded() -> bool:
            got = await peer.budget_status(KEY)
            return got is not None and got.spent == pytest.approx(0.7)

        deadline = time.monotonic() + 10
        while not await seeded():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    finally:
        await peer.close()


async def test_reservations_in_flight_are_held_again_when_redis_lost_them(
    killable_redis: RestartableRedis, made: list[ResilientState]
) -> None:
    state, _ = resilient(killable_redis, made)
    store = Store()
    await state.start()
    await state.seed_budgets({}, store.seeds)
    assert (await state.budget_reserve(KEY, 0.3, 1.0, HOUR)).ok  # in flight across the restart
    killable_redis.restart()
    got = await state.budget_reserve(KEY, 0.1, 1.0, HOUR)
    assert got.ok and got.reserved == pytest.approx(0.4)
    await state.budget_settle(KEY, 0.3, 0.25, HOUR)
    status = await state.primary.budget_status(KEY)
    assert status is not None
    assert (status.spent, status.reserved) == pytest.approx((0.25, 0.1))


async def test_every_process_holds_its_reservations_again_after_redis_lost_them(
    killable_redis: RestartableRedis, made: list[ResilientState]
) -> None:
    store = Store()
    a, b = resilient(killable_redis, made)[0], resilient(killable_redis, made)[0]
    for state in (a, b):
        state._probe_interval = HOUR  # only the budget scripts may notice the restart
        await state.start()
        await state.seed_budgets({}, store.seeds)
    assert (await a.budget_reserve(KEY, 0.3, 1.0, HOUR)).ok
    assert (await b.budget_reserve(KEY, 0.2, 1.0, HOUR)).ok
    killable_redis.restart()
    await a.budget_settle(KEY, 0.3, 0.3, HOUR)  # a notices first and seeds Redis again
    store.spent[KEY] = 0.3
    # b finds a marker it did not write: Redis lost b's reservation too, b holds it again
    got = await b.budget_reserve(KEY, 0.1, 0.5, HOUR)
    assert not got.ok
    assert (got.spent, got.reserved) == pytest.approx((0.3, 0.2))
    await b.budget_settle(KEY, 0.2, 0.1, HOUR)
    status = await a.budget_status(KEY)
    assert status is not None
    assert (status.spent, status.reserved) == pytest.approx((0.4, 0.0))


async def test_a_redis_that_kept_its_data_releases_what_settled_during_the_outage(
    killable_redis: RestartableRedis, made: list[ResilientState]
) -> None:
    """Redis stops answering for a while (paused), keeping its data: a reservation made
    before and settled during the outage is released in Redis when it answers again."""
    state, registry = resilient(killable_redis, made)
    store = Store()
    await state.start()
    await state.seed_budgets({}, store.seeds)
    assert (await state.budget_reserve(KEY, 0.3, 1.0, HOUR)).ok
    pauser = RedisState(killable_redis.url)
    try:
        await pauser._redis.execute_command("CLIENT", "PAUSE", "3000", "ALL")  # type: ignore[no-untyped-call]
        assert await state.cache_get("anything") is None  # times out: served locally
        assert not state.up
        await state.budget_settle(KEY, 0.3, 0.2, HOUR)
        assert fallbacks(registry, "budget_settle") == 1
        await until(lambda: state.up)
        status = await state.budget_status(KEY)  # waits until Redis is re-seeded
        assert status is not None
        assert (status.spent, status.reserved) == pytest.approx((0.2, 0.0))
        assert fallbacks(registry, "budget_status") == 0
    finally:
        await pauser.close()


async def test_two_processes_spend_at_most_the_budget_and_a_request_each_during_an_outage(
    killable_redis: RestartableRedis, made: list[ResilientState]
) -> None:
    store = Store()
    store.spent[KEY] = 0.2
    states = [resilient(killable_redis, made, share=2)[0] for _ in range(2)]
    for state in states:
        await state.start()
        await state.seed_budgets(await store.seeds(), store.seeds)
    killable_redis.kill()
    cost = 0.07
    spent = {id(s): 0.0 for s in states}
    for _ in range(100):
        progress = False
        for state in states:
            if (await state.budget_reserve(KEY, cost, 1.0, HOUR)).ok:
                await state.budget_settle(KEY, cost, cost, HOUR)
                spent[id(state)] += cost
                progress = True
        if not progress:
            break
    total = 0.2 + sum(spent.values())
    assert all(s > 0 for s in spent.values())
    assert 1.0 <= total < 1.0 + 2 * cost
    # the telemetry writers have stored every call by the time Redis is back (empty)
    store.spent[KEY] = total
    killable_redis.start()
    await until(lambda: all(s.up for s in states))
    status = await states[0].primary.budget_status(KEY)
    assert status is not None and status.spent == pytest.approx(total)
    assert not (await states[1].budget_reserve(KEY, cost, 1.0, HOUR)).ok
