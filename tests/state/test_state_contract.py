"""One contract, two backends: every test runs against MemoryState and RedisState.

Memory moves an injected clock; Redis waits for real (bounded, about a second or two) because
its scripts read the server's clock. Assertions are about behaviour, never about how long
anything took.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from trimtab.state.base import BreakerCounts, SharedState
from trimtab.state.errors import StateUnavailable
from trimtab.state.memory import MemoryState
from trimtab.state.redis import RedisState
from trimtab.testing.redis_server import RedisServer
from trimtab.testing.servers import free_port

HOUR = 3600.0


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = 1_000_000.37) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Env:
    """A backend under test, its clock, and a way to let time pass."""

    kind: str
    state: SharedState
    now: Callable[[], float]
    wait: Callable[[float], Awaitable[None]]
    make_peer: Callable[[], SharedState]  # another client of the same store
    peers: list[SharedState] = field(default_factory=list)

    def peer(self) -> SharedState:
        peer = self.make_peer()
        self.peers.append(peer)
        return peer


def _unique_prefix() -> str:
    return f"trimtab:test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture(params=["memory", "redis"])
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    if request.param == "memory":
        clock = FakeClock()
        memory = MemoryState(clock=clock)

        async def advance(seconds: float) -> None:
            clock.advance(max(seconds, 0.0))

        # One process, one store: a "peer" is the same object.
        yield Env("memory", memory, clock, advance, lambda: memory)
        await memory.close()
        return

    server: RedisServer = request.getfixturevalue("redis_server")
    prefix = _unique_prefix()
    redis = RedisState(server.url, prefix=prefix)

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))

    environment = Env(
        "redis", redis, time.time, sleep, lambda: RedisState(server.url, prefix=prefix)
    )
    yield environment
    for peer in environment.peers:
        await peer.close()
    await redis.close()


async def _to_fresh_window(env: Env) -> float:
    """Wait until just after a 1-second window starts; return that window's start."""
    now = env.now()
    await env.wait(math.floor(now) + 1.05 - now)
    return float(math.floor(env.now()))


# -- rate limits ---------------------------------------------------------------------------------


async def test_window_admits_up_to_the_limit_then_refuses(env: Env) -> None:
    s = env.state
    first = await s.window_acquire("k", 2, 5, HOUR)
    assert first.allowed and first.used == pytest.approx(2, abs=0.01)
    second = await s.window_acquire("k", 3, 5, HOUR)
    assert second.allowed and second.used == pytest.approx(5, abs=0.01)
    refused = await s.window_acquire("k", 1, 5, HOUR)
    assert not refused.allowed
    assert refused.used == pytest.approx(5, abs=0.01)
    assert refused.retry_after_s > 0
    assert await s.window_used("k", HOUR) == pytest.approx(5, abs=0.01)
    assert (await s.window_acquire("other", 5, 5, HOUR)).allowed  # keys are independent


async def test_window_add_is_unconditional(env: Env) -> None:
    s = env.state
    assert (await s.window_acquire("k", 5, 5, HOUR)).allowed
    await s.window_add("k", 4, HOUR)
    assert await s.window_used("k", HOUR) == pytest.approx(9, abs=0.01)
    refused = await s.window_acquire("k", 1, 5, HOUR)
    assert not refused.allowed and refused.used == pytest.approx(9, abs=0.01)
    assert await s.window_used("never-used", HOUR) == 0


async def test_window_capacity_returns_once_the_windows_pass(env: Env) -> None:
    s = env.state
    assert (await s.window_acquire("k", 3, 3, 1.0)).allowed
    assert not (await s.window_acquire("k", 1, 3, 1.0)).allowed
    await env.wait(2.05)  # two 1-second windows: nothing is current or previous any more
    again = await s.window_acquire("k", 3, 3, 1.0)
    assert again.allowed and again.used == pytest.approx(3)


async def test_sliding_estimate_weights_the_previous_window(env: Env) -> None:
    s = env.state
    start = await _to_fresh_window(env)
    assert (await s.window_acquire("k", 10, 10, 1.0)).allowed
    await env.wait(start + 1.25 - env.now())  # a quarter into the next window (or later)
    used = await s.window_used("k", 1.0)
    # A fixed window would say 0; the full previous window would say 10.
    assert 0 < used <= 7.5 + 1e-6
    refused = await s.window_acquire("k", 10, 10, 1.0)
    assert not refused.allowed
    assert 0 < refused.retry_after_s <= 0.75 + 1e-6  # by the end of this window it has faded
    await env.wait(refused.retry_after_s + 0.01)
    assert (await s.window_acquire("k", 10, 10, 1.0)).allowed


async def test_memory_sliding_arithmetic_is_exact() -> None:
    clock = FakeClock(60.0 * 1000)
    s = MemoryState(clock=clock)
    assert (await s.window_acquire("k", 10, 10, 60)).allowed
    clock.advance(60 + 15)  # 25% into the next window: 10 * 0.75 of the previous remains
    assert await s.window_used("k", 60) == pytest.approx(7.5)
    refused = await s.window_acquire("k", 3, 10, 60)
    # 7 of room once the previous window's weight is down to 7: at 30%, 3 s from now
    assert not refused.allowed and refused.retry_after_s == pytest.approx(3.0)
    allowed = await s.window_acquire("k", 2, 10, 60)
    assert allowed.allowed and allowed.used == pytest.approx(9.5)
    refused = await s.window_acquire("k", 9, 10, 60)
    # 2 already current: this window's 45 s left, then 3 s of the next one until 2*(1-f) <= 1
    assert not refused.allowed and refused.retry_after_s == pytest.approx(45 + 30)


# -- budgets -------------------------------------------------------------------------------------


async def test_budget_seed_sets_once(env: Env) -> None:
    s = env.state
    assert await s.budget_status("b") is None
    await s.budget_seed("b", 10, HOUR)
    await s.budget_seed("b", 20, HOUR)
    status = await s.budget_status("b")
    assert status is not None
    assert (status.spent, status.reserved) == (10, 0)


async def test_budget_reserves_while_below_the_limit(env: Env) -> None:
    s = env.state
    await s.budget_seed("b", 8, HOUR)
    first = await s.budget_reserve("b", 1, 10, HOUR)
    assert (first.ok, first.spent, first.reserved) == (True, 8, 1)
    second = await s.budget_reserve("b", 1, 10, HOUR)
    assert (second.ok, second.spent, second.reserved) == (True, 8, 2)
    refused = await s.budget_reserve("b", 1, 10, HOUR)
    assert (refused.ok, refused.spent, refused.reserved) == (False, 8, 2)


async def test_budget_settle_releases_and_adds_the_actual(env: Env) -> None:
    s = env.state
    assert (await s.budget_reserve("b", 5, 100, HOUR)).ok
    assert await s.budget_settle("b", 5, 3, HOUR) == (0, 3)
    status = await s.budget_status("b")
    assert status is not None and (status.spent, status.reserved) == (3, 0)
    assert (await s.budget_reserve("b", 2, 100, HOUR)).reserved == 2
    assert await s.budget_settle("b", 2, 2.5, HOUR) == (3, 5.5)
    # releasing more than is outstanding (a lost reservation) leaves zero, never negative
    assert await s.budget_settle("b", 7, 0, HOUR) == (5.5, 5.5)
    status = await s.budget_status("b")
    assert status is not None and status.reserved == 0


async def test_budget_expires_after_its_ttl(env: Env) -> None:
    s = env.state
    await s.budget_seed("b", 1, 0.2)
    await env.wait(0.3)
    assert await s.budget_status("b") is None
    await s.budget_seed("b", 2, HOUR)
    status = await s.budget_status("b")
    assert status is not None and status.spent == 2


async def test_budget_reserve_is_atomic_under_concurrency(env: Env) -> None:
    s = env.state
    results = await asyncio.gather(*(s.budget_reserve("b", 1, 50, HOUR) for _ in range(200)))
    assert sum(r.ok for r in results) == 50
    status = await s.budget_status("b")
    assert status is not None and status.reserved == 50


async def test_budget_reserve_is_atomic_across_clients(env: Env) -> None:
    clients = [env.state, env.peer()]
    calls = [c.budget_reserve("b", 1, 50, HOUR) for _ in range(100) for c in clients]
    results = await asyncio.gather(*calls)
    assert sum(r.ok for r in results) == 50


_WORKER = """
import asyncio, sys, time
from trimtab.state.redis import RedisState

async def main(url, prefix, start_at):
    state = RedisState(url, prefix=prefix)
    try:
        await state.ping()
        await asyncio.sleep(max(0.0, start_at - time.time()))  # start together, to overlap
        calls = [state.budget_reserve("b", 1, 50, 3600) for _ in range(100)]
        print(sum(r.ok for r in await asyncio.gather(*calls)))
    finally:
        await state.close()

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
"""


def test_budget_reserve_is_atomic_across_processes(redis_server: RedisServer) -> None:
    prefix = _unique_prefix()
    start_at = repr(time.time() + 1.5)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, redis_server.url, prefix, start_at],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    granted = 0
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        granted += int(out.strip())
    assert granted == 50

    async def status() -> tuple[float, float] | None:
        state = RedisState(redis_server.url, prefix=prefix)
        try:
            got = await state.budget_status("b")
        finally:
            await state.close()
        return None if got is None else (got.spent, got.reserved)

    assert asyncio.run(status()) == (0, 50)


# -- circuit breakers ----------------------------------------------------------------------------


async def test_breaker_counts_outcomes_in_the_window(env: Env) -> None:
    s = env.state
    assert await s.breaker_record("d", True, 60) == BreakerCounts(1, 0)
    assert await s.breaker_record("d", False, 60) == BreakerCounts(2, 1)
    assert await s.breaker_record("d", True, 60) == BreakerCounts(total=3, failures=1)
    assert await s.breaker_record("other", False, 60) == BreakerCounts(1, 1)


async def test_breaker_forgets_outcomes_older_than_the_window(env: Env) -> None:
    s = env.state
    assert await s.breaker_record("d", False, 1) == BreakerCounts(1, 1)
    await env.wait(1.1)
    assert await s.breaker_record("d", True, 1) == BreakerCounts(1, 0)


async def test_breaker_trip_open_until_and_reset(env: Env) -> None:
    s = env.state
    assert await s.breaker_open_until("d") == 0
    until = env.now() + 30.25
    await s.breaker_trip("d", until)
    assert await s.breaker_open_until("d") == until
    assert await env.peer().breaker_open_until("d") == until
    await s.breaker_record("d", False, 60)
    await s.breaker_reset("d")
    assert await s.breaker_open_until("d") == 0
    assert await s.breaker_record("d", True, 60) == BreakerCounts(1, 0)


async def test_breaker_lapsed_open_until_still_reads_back(env: Env) -> None:
    s = env.state
    until = env.now() + 0.1
    await s.breaker_trip("d", until)
    await env.wait(0.2)
    # past `until` the breaker is half-open, not forgotten: the caller decides on a probe
    assert await s.breaker_open_until("d") == until


async def test_breaker_probe_is_claimed_once_per_hold(env: Env) -> None:
    s, peer = env.state, env.peer()
    claims = await asyncio.gather(
        *(c.breaker_claim_probe("d", 30) for _ in range(50) for c in (s, peer))
    )
    assert sum(claims) == 1
    assert not await s.breaker_claim_probe("d", 30)
    await s.breaker_trip("d", env.now() + 30)  # a new open period gets a fresh probe
    assert await s.breaker_claim_probe("d", 30)
    await s.breaker_reset("d")
    assert await s.breaker_claim_probe("d", 30)


async def test_breaker_probe_claim_lapses_after_the_hold(env: Env) -> None:
    s = env.state
    assert await s.breaker_claim_probe("d", 0.2)
    assert not await s.breaker_claim_probe("d", 0.2)
    await env.wait(0.3)
    assert await s.breaker_claim_probe("d", 0.2)


# -- response cache ------------------------------------------------------------------------------


async def test_cache_set_get_and_expiry(env: Env) -> None:
    s = env.state
    assert await s.cache_get("c") is None
    await s.cache_set("c", b"\x00reply", HOUR)
    assert await s.cache_get("c") == b"\x00reply"
    await s.cache_set("c", b"newer", HOUR)
    assert await s.cache_get("c") == b"newer"
    await s.cache_set("short", b"x", 0.2)
    await env.wait(0.3)
    assert await s.cache_get("short") is None
    assert await s.cache_get("c") == b"newer"


async def test_memory_cache_evicts_the_least_recently_used() -> None:
    s = MemoryState(cache_max_entries=3)
    for key in ("a", "b", "c"):
        await s.cache_set(key, key.encode(), HOUR)
    assert await s.cache_get("a") == b"a"  # now "b" is the oldest
    await s.cache_set("d", b"d", HOUR)
    assert await s.cache_get("b") is None
    assert [await s.cache_get(k) for k in ("a", "c", "d")] == [b"a", b"c", b"d"]


async def test_memory_expired_entries_are_swept() -> None:
    clock = FakeClock()
    s = MemoryState(clock=clock, sweep_interval_s=1.0)
    for i in range(100):
        await s.window_acquire(f"w{i}", 1, 10, 60)
        await s.budget_reserve(f"b{i}", 1, 10, 120)
        await s.breaker_record(f"d{i}", False, 30)
        await s.breaker_claim_probe(f"d{i}", 30)
        await s.cache_set(f"c{i}", b"v", 300)
        await s.assign(f"r{i % 3}", f"u{i}", b"s", 300)
    assert s.entries() == 600
    clock.advance(301)
    await s.window_used("any", 60)  # any call may sweep
    assert s.entries() == 0


# -- sticky rollout assignments ------------------------------------------------------------------


async def test_assign_keeps_the_first_mark(env: Env) -> None:
    s = env.state
    assert await s.assign("ro1", "user:a", b"s", HOUR) == b"s"
    assert await s.assign("ro1", "user:a", b"c", HOUR) == b"s"
    assert await s.assign("ro1", "user:b", b"c", HOUR) == b"c"
    # another rollout is another assignment
    assert await s.assign("ro2", "user:a", b"c", HOUR) == b"c"


async def test_assign_is_atomic_across_clients(env: Env) -> None:
    clients = [env.state, env.peer()]
    marks = [b"s", b"c"] * 50
    results = await asyncio.gather(
        *(clients[i % 2].assign("ro", "user:x", m, HOUR) for i, m in enumerate(marks))
    )
    assert len(set(results)) == 1


async def test_assign_lapses_after_its_ttl_from_the_last_use(env: Env) -> None:
    s = env.state
    await s.assign("ro", "user:a", b"s", 0.6)
    await env.wait(0.4)
    assert await s.assign("ro", "user:a", b"c", 0.6) == b"s"  # used again: kept longer
    await env.wait(0.4)
    assert await s.assign("ro", "user:a", b"c", 0.6) == b"s"
    await env.wait(0.8)
    assert await s.assign("ro", "user:a", b"c", 0.6) == b"c"


async def test_memory_assignments_survive_cache_churn_and_stop_at_their_bound() -> None:
    s = MemoryState(cache_max_entries=2, assignments_max=3)
    for caller in ("a", "b", "c"):
        await s.assign("ro", caller, b"s", HOUR)
    for i in range(10):  # the response cache's evictions do not touch assignments
        await s.cache_set(f"k{i}", b"v", HOUR)
    assert [await s.assign("ro", c, b"c", HOUR) for c in ("a", "b", "c")] == [b"s"] * 3
    # past the bound a new caller is not remembered; the known ones still are
    assert await s.assign("ro", "d", b"s", HOUR) == b"s"
    assert await s.assign("ro", "d", b"c", HOUR) == b"c"
    assert await s.assign("ro", "a", b"c", HOUR) == b"s"


# -- counters ------------------------------------------------------------------------------------


async def test_counter_adds_reads_and_is_shared_by_clients(env: Env) -> None:
    s, peer = env.state, env.peer()
    assert await s.counter_add("sess:a", 1, HOUR) == 1
    assert await peer.counter_add("sess:a", 0.25, HOUR) == 1.25
    assert await s.counter_add("sess:a", 0, HOUR) == 1.25  # adding 0 reads
    assert await s.counter_add("sess:b", 0, HOUR) == 0
    results = await asyncio.gather(*(peer.counter_add("sess:c", 1, HOUR) for _ in range(50)))
    assert sorted(results) == [float(n) for n in range(1, 51)]  # atomic: each total once


async def test_counter_lapses_after_its_ttl_from_the_last_add(env: Env) -> None:
    s = env.state
    await s.counter_add("sess:t", 2, 0.6)
    await env.wait(0.4)
    assert await s.counter_add("sess:t", 1, 0.6) == 3  # used again: kept longer
    await env.wait(0.4)
    assert await s.counter_add("sess:t", 0, 0.6) == 3
    await env.wait(0.8)
    assert await s.counter_add("sess:t", 0, 0.6) == 0


# -- reachability --------------------------------------------------------------------------------


async def test_ping_answers(env: Env) -> None:
    await env.state.ping()


async def test_ping_raises_when_nothing_listens() -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    state = RedisState(url, timeout_s=1.0)
    try:
        with pytest.raises(StateUnavailable, match="unavailable") as info:
            await state.ping()
        message = str(info.value)
        assert "127.0.0.1" in message and "s3cret" not in message
        with pytest.raises(StateUnavailable):
            await state.window_acquire("k", 1, 1, 60)
    finally:
        await state.close()
