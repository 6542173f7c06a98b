"""Shared state that keeps serving while Redis is away: the one place the gateway degrades.

`ResilientState` delegates to a `RedisState`. When Redis raises `StateUnavailable`, it marks
itself down (one log line, `trimtab_state_up` 0) and serves every call from a process-local
`MemoryState` (each counted in `trimtab_state_fallbacks_total{operation}`) without touching
Redis again until a background probe gets an answer. Then it re-seeds the budgets in Redis
and drops the process-local state (breakers, cache entries, assignments and counters made
during the outage). It also notices a Redis that came back empty without an outage seen here
(the seed marker is gone, `StateLost`) and re-seeds before the budget call goes on.

During an outage each process enforces its share (1 / `share`) of every rate limit and of
what remained of every budget when Redis went away; see docs/policy.md for the bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge

from trimtab.refresher import Periodic
from trimtab.state.base import BreakerCounts, Reservation, WindowDecision
from trimtab.state.errors import StateLost, StateUnavailable
from trimtab.state.ledger import Ledger
from trimtab.state.memory import MemoryState

if TYPE_CHECKING:
    from trimtab.state.redis import RedisState

log = logging.getLogger("trimtab.state")

T = TypeVar("T")

# a limit that never refuses (policy.budgets.UNLIMITED): holds reservations made elsewhere
UNLIMITED = 1e300

# budget key -> (settled spend, ttl_s): what the policy reads from the store to seed accounts
Seeds = dict[str, tuple[float, float]]
Seeder = Callable[[], Awaitable[Seeds]]


class ResilientState:
    """SharedState in Redis, falling back to process-local state while Redis is unreachable."""

    def __init__(
        self,
        primary: RedisState,
        *,
        share: int = 1,
        probe_interval_s: float = 1.0,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if share < 1:
            raise ValueError("share must be at least 1")
        self.primary = primary
        self._share = share
        self._probe_interval = probe_interval_s
        self._local = MemoryState()
        self._up = True
        self._epoch = 0  # bumped on every transition: a late failure of an older call is ignored
        self._seeder: Seeder | None = None
        self._generation = 0  # how many times the budgets were seeded into Redis
        self._lock = asyncio.Lock()  # one re-seed at a time
        # set except while Redis is being re-seeded: budget calls to Redis wait for it
        self._seeded = asyncio.Event()
        self._seeded.set()
        self._ledger = Ledger()
        # this outage: budget key -> settled spend its local account started from
        self._base: dict[str, float] = {}
        self._probe: Periodic | None = None
        self._local_seed: asyncio.Task[None] | None = None
        registry = registry if registry is not None else CollectorRegistry()
        self._fallbacks = Counter(
            "trimtab_state_fallbacks",
            "Shared-state calls served from process-local state because Redis was unreachable.",
            ["operation"],
            registry=registry,
        )
        up = Gauge(
            "trimtab_state_up",
            "1 while the shared state (Redis) answers; 0 while calls are served locally.",
            registry=registry,
        )
        up.set_function(lambda: 1.0 if self._up else 0.0)

    @property
    def up(self) -> bool:
        """Whether calls go to Redis (False: served from process-local state)."""
        return self._up

    @property
    def url(self) -> str:
        """Redis's URL, password redacted."""
        return self.primary.url

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Check Redis (serving locally from the start if it does not answer), start probing."""
        await self.primary.start()
        try:
            await self.primary.ping()
        except StateUnavailable as exc:
            self._down(exc, self._epoch)
        self._probe = Periodic(
            "trimtab-state-probe",
            self._probe_once,
            self._probe_interval,
            failed="shared-state probe failed",
            logger=log,
        )
        self._probe.start()

    async def close(self) -> None:
        """Stop probing, close the Redis pool, drop local state."""
        if self._probe is not None:
            await self._probe.stop()
        if self._local_seed is not None:
            self._local_seed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._local_seed
        await self.primary.close()
        await self._local.close()

    async def ping(self) -> None:
        """Raise StateUnavailable when Redis does not answer."""
        await self.primary.ping()

    async def seed_budgets(self, seeds: Seeds, seeder: Seeder) -> None:
        """Seed the budget accounts (raising each to the store's spend, never lowering it)
        and keep `seeder` to re-read the store when Redis lost them or comes back."""
        self._seeder = seeder
        if self._up:
            try:
                async with self._lock:
                    await self._apply_primary(seeds, sync=False)
                return
            except StateUnavailable as exc:
                self._down(exc, self._epoch)
        await self._apply_local(seeds)

    # -- transitions -------------------------------------------------------------------------

    def _down(self, exc: Exception, epoch: int) -> None:
        if not self._up or epoch != self._epoch:
            return
        self._up = False
        self._epoch += 1
        log.warning(
            "%s; serving breakers, cache, assignments, rate limits and budgets from "
            "process-local state until it answers again (probing every %g s)",
            exc,
            self._probe_interval,
        )
        if self._seeder is not None:
            self._local_seed = asyncio.create_task(self._seed_local(), name="trimtab-state-seed")

    async def _seed_local(self) -> None:
        """The store's spend into the local accounts, for what other processes settled."""
        assert self._seeder is not None
        try:
            seeds = await self._seeder()
        except Exception as exc:
            log.error("could not read budget spend from the store for the outage: %r", exc)
            return
        if not self._up:
            await self._apply_local(seeds)

    async def _recover(self) -> None:
        """Redis answers again: re-seed its budgets, then serve from it, dropping local state.

        Budget calls wait while this runs; the rest goes to Redis at once."""
        await self.primary.ping()
        seeds = await self._seeder() if self._seeder is not None else {}
        async with self._lock:
            self._seeded.clear()
            # from here on nothing is served locally: the outage's accounts are final
            old, bases = self._local, self._base
            self._local, self._base = MemoryState(), {}
            self._up = True
            self._epoch += 1
            if self._local_seed is not None:
                self._local_seed.cancel()
            try:
                # this process's settlements during the outage may not be in the store yet
                for key in bases:
                    status = await old.budget_status(key)
                    ttl = self._ledger.ttl_s(key)
                    if status is not None and status.spent > seeds.get(key, (0.0, ttl))[0]:
                        seeds[key] = (status.spent, ttl)
                # a Redis that kept its data still holds the reservations made before the
                # outage; one that lost it holds none
                if not await self.primary.seeded():
                    self._ledger.lost()
                await self._apply_primary(seeds, sync=True)
            except StateUnavailable as exc:
                # gone again: keep serving from the outage's local state
                self._local, self._base = old, bases
                self._down(exc, self._epoch)
                return
            finally:
                self._seeded.set()
            await old.close()
        log.warning(
            "shared state at %s answers again; %d budget accounts re-seeded, the process-local "
            "breakers, cache and assignments of the outage dropped",
            self.url,
            len(seeds),
        )

    async def _probe_once(self) -> None:
        """One probe (every `probe_interval_s`): recover, re-seed a Redis that lost its
        budgets, sweep the ledger."""
        epoch = self._epoch
        try:
            if not self._up:
                await self._recover()
            elif self._seeder is not None and not await self.primary.seeded():
                await self._reseed(self._generation)
            self._ledger.sweep()
        except StateUnavailable as exc:
            self._down(exc, epoch)

    async def _apply_primary(self, seeds: Seeds, *, sync: bool) -> None:
        """Raise Redis's accounts to `seeds` and to the highest spend Redis ever reported
        here, (with `sync`) make Redis hold exactly this process's outstanding reservations,
        then write (or take) the seed marker: until then a budget call of another process
        that noticed the loss finds it missing and does the same. Hold the lock."""
        targets = dict(seeds)
        for key, (spent, ttl) in self._ledger.spent_by_key().items():
            if spent > targets.get(key, (0.0, ttl))[0]:
                targets[key] = (spent, ttl)
        for key, (spent, ttl) in targets.items():
            await self.primary.budget_raise(key, spent, ttl)
            self._ledger.saw(key, spent, ttl)
        if sync:
            for key, delta in sorted(self._ledger.unsynced().items()):
                await self.primary.budget_hold(key, delta, self._ledger.ttl_s(key))
                self._ledger.synced(key)
        await self.primary.mark_seeded()
        self._generation += 1

    async def _apply_local(self, seeds: Seeds) -> None:
        for key, (spent, ttl) in seeds.items():
            self._ledger.saw(key, spent, ttl)
            if key in self._base:
                self._base[key] = max(self._base[key], spent)
                await self._local.budget_raise(key, spent, ttl)
            else:
                await self._local_budget(key, ttl)

    async def _reseed(self, generation: int) -> None:
        """Redis lost the seeded spend (and every reservation): read the store again and
        hold this process's reservations again, unless another call just did."""
        async with self._lock:
            if self._generation != generation:
                return
            seeds = await self._seeder() if self._seeder is not None else {}
            log.warning(
                "shared state at %s lost its data (seed marker gone); re-seeding %d budget "
                "accounts from the store",
                self.url,
                len(seeds),
            )
            self._seeded.clear()
            self._ledger.lost()
            try:
                await self._apply_primary(seeds, sync=True)
            finally:
                self._seeded.set()

    # -- the delegation ----------------------------------------------------------------------

    async def _either(
        self,
        operation: str,
        remote: Callable[[], Awaitable[T]],
        local: Callable[[], Awaitable[T]],
    ) -> T:
        if self._up:
            epoch = self._epoch
            try:
                return await remote()
            except StateUnavailable as exc:
                self._down(exc, epoch)
        self._fallbacks.labels(operation).inc()
        return await local()

    async def _budget(
        self, operation: str, remote: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]
    ) -> T:
        """Like _either; waits out a re-seed of Redis, and re-seeds once when Redis reports
        that it lost its data."""

        async def guarded() -> T:
            await self._seeded.wait()
            generation = self._generation
            try:
                return await remote()
            except StateLost:
                await self._reseed(generation)
                return await remote()

        return await self._either(operation, guarded, local)

    async def _local_budget(self, key: str, ttl_s: float) -> float:
        """The local account's starting spend, created on first use in this outage: the
        highest spend known here, holding this process's outstanding reservations."""
        base = self._base.get(key)
        if base is None:
            base = self._base[key] = self._ledger.spent(key)
            await self._local.budget_raise(key, base, ttl_s)
            outstanding = self._ledger.outstanding(key)
            if outstanding > 0:
                await self._local.budget_reserve(key, outstanding, UNLIMITED, ttl_s)
        return base

    # -- rate limits: each process counts its share of the limit while Redis is away --------

    async def window_acquire(
        self, key: str, amount: float, limit: float, window_s: float
    ) -> WindowDecision:
        """Add `amount` only if the window's total stays within `limit`."""
        return await self._either(
            "window_acquire",
            lambda: self.primary.window_acquire(key, amount, limit, window_s),
            lambda: self._local.window_acquire(key, amount, limit / self._share, window_s),
        )

    async def window_add(self, key: str, amount: float, window_s: float) -> None:
        """Add unconditionally (e.g. tokens, known only after the call)."""
        await self._either(
            "window_add",
            lambda: self.primary.window_add(key, amount, window_s),
            lambda: self._local.window_add(key, amount, window_s),
        )

    async def window_used(self, key: str, window_s: float) -> float:
        """The window's total; while Redis is away, `share` times this process's count."""

        async def local() -> float:
            return self._share * await self._local.window_used(key, window_s)

        return await self._either(
            "window_used", lambda: self.primary.window_used(key, window_s), local
        )

    # -- budgets: each process spends its share of what remained when Redis went away ---------

    async def budget_seed(self, key: str, spent: float, ttl_s: float) -> None:
        """Set the period's settled spend if nothing is known of it yet."""
        await self._either(
            "budget_seed",
            lambda: self.primary.budget_seed(key, spent, ttl_s),
            lambda: self._local.budget_seed(key, spent, ttl_s),
        )

    async def budget_reserve(
        self, key: str, amount: float, limit: float, ttl_s: float
    ) -> Reservation:
        """Reserve `amount` if spent + reserved is still below `limit` (locally: below the
        starting spend plus this process's share of what was left)."""

        async def remote() -> Reservation:
            got = await self.primary.budget_reserve(key, amount, limit, ttl_s)
            self._ledger.saw(key, got.spent, ttl_s)
            if got.ok:
                self._ledger.reserved(key, amount, ttl_s, in_redis=True)
            return got

        async def local() -> Reservation:
            base = await self._local_budget(key, ttl_s)
            share = base + max(limit - base, 0.0) / self._share
            got = await self._local.budget_reserve(key, amount, share, ttl_s)
            if got.ok:
                self._ledger.reserved(key, amount, ttl_s, in_redis=False)
            return got

        return await self._budget("budget_reserve", remote, local)

    async def budget_settle(
        self, key: str, reserved: float, actual: float, ttl_s: float
    ) -> tuple[float, float]:
        """Release a reservation and add the actual cost: (spent before, spent after)."""

        async def remote() -> tuple[float, float]:
            got = await self.primary.budget_settle(key, reserved, actual, ttl_s)
            self._ledger.saw(key, got[1], ttl_s)
            self._ledger.released(key, reserved, in_redis=True)
            return got

        async def local() -> tuple[float, float]:
            await self._local_budget(key, ttl_s)
            got = await self._local.budget_settle(key, reserved, actual, ttl_s)
            self._ledger.released(key, reserved, in_redis=False)
            return got

        return await self._budget("budget_settle", remote, local)

    async def budget_status(self, key: str) -> Reservation | None:
        """(spent, reserved) of a period, or None if never seeded or reserved."""

        async def local() -> Reservation | None:
            got = await self._local.budget_status(key)
            if got is None and self._ledger.known(key):
                return Reservation(True, self._ledger.spent(key), 0.0)
            return got

        return await self._budget("budget_status", lambda: self.primary.budget_status(key), local)

    # -- breakers, cache, assignments: process-local while Redis is away ----------------------

    async def breaker_record(self, key: str, ok: bool, window_s: float) -> BreakerCounts:
        """Count one outcome; return the counts in the last `window_s`."""
        return await self._either(
            "breaker_record",
            lambda: self.primary.breaker_record(key, ok, window_s),
            lambda: self._local.breaker_record(key, ok, window_s),
        )

    async def breaker_open_until(self, key: str) -> float:
        """Epoch seconds until which the breaker is open; 0 when closed."""
        return await self._either(
            "breaker_open_until",
            lambda: self.primary.breaker_open_until(key),
            lambda: self._local.breaker_open_until(key),
        )

    async def breaker_trip(self, key: str, until: float) -> None:
        """Open the breaker until `until`."""
        await self._either(
            "breaker_trip",
            lambda: self.primary.breaker_trip(key, until),
            lambda: self._local.breaker_trip(key, until),
        )

    async def breaker_claim_probe(self, key: str, hold_s: float) -> bool:
        """True for exactly one caller per `hold_s` (locally: one per process)."""
        return await self._either(
            "breaker_claim_probe",
            lambda: self.primary.breaker_claim_probe(key, hold_s),
            lambda: self._local.breaker_claim_probe(key, hold_s),
        )

    async def breaker_reset(self, key: str) -> None:
        """Close the breaker and forget its counts."""
        await self._either(
            "breaker_reset",
            lambda: self.primary.breaker_reset(key),
            lambda: self._local.breaker_reset(key),
        )

    async def cache_get(self, key: str) -> bytes | None:
        """The cached value, or None when missing or expired."""
        return await self._either(
            "cache_get", lambda: self.primary.cache_get(key), lambda: self._local.cache_get(key)
        )

    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store `value` for `ttl_s`."""
        await self._either(
            "cache_set",
            lambda: self.primary.cache_set(key, value, ttl_s),
            lambda: self._local.cache_set(key, value, ttl_s),
        )

    async def counter_add(self, key: str, amount: float, ttl_s: float) -> float:
        """Add to a counter; while Redis is away, this process counts on its own."""
        return await self._either(
            "counter_add",
            lambda: self.primary.counter_add(key, amount, ttl_s),
            lambda: self._local.counter_add(key, amount, ttl_s),
        )

    async def assign(self, rollout: str, caller: str, mark: bytes, ttl_s: float) -> bytes:
        """The caller's assignment in this rollout (locally: remembered in this process)."""
        return await self._either(
            "assign",
            lambda: self.primary.assign(rollout, caller, mark, ttl_s),
            lambda: self._local.assign(rollout, caller, mark, ttl_s),
        )
