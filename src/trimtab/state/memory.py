"""Shared state inside one process: plain dicts, for a single event loop.

No method awaits, so each one runs to completion before another starts: atomic by construction.
Memory stays bounded: windows, budgets and counts expire by their TTL (swept lazily), the
response cache is an LRU with a maximum entry count, and sticky rollout assignments stop
being remembered beyond their own maximum (they are never evicted: a forgotten assignment
could move a caller between versions).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from trimtab.state.base import BreakerCounts, Reservation, WindowDecision

# A tolerance for float sums (0.1 + 0.2 > 0.3) when comparing a window's total with its limit.
WINDOW_EPSILON = 1e-9
# An open breaker's entry outlives its `until` so a lapsed breaker still reads as half-open.
BREAKER_OPEN_GRACE_S = 86_400.0


def window_over(used: float, amount: float, limit: float) -> bool:
    """Whether adding `amount` to `used` would exceed `limit` (with a float tolerance)."""
    return used + amount - limit > WINDOW_EPSILON * max(1.0, abs(limit))


def window_retry_after(
    current: float, previous: float, elapsed: float, amount: float, limit: float, window_s: float
) -> float:
    """Seconds until `amount` fits, if nothing else is added meanwhile.

    `elapsed` is the fraction of the current window that has passed. Mirrored in Lua in redis.py.
    """
    room = limit - amount - current
    if room >= 0 and previous > 0:
        # The previous window's weight fades linearly; wait until it is down to `room`.
        return max(1.0 - room / previous - elapsed, 0.0) * window_s
    rest = (1.0 - elapsed) * window_s
    if limit - amount < 0 or current <= 0:
        return rest + window_s  # never fits: report when both windows are empty
    # In the next window this window's total becomes the fading previous one.
    return rest + max(1.0 - (limit - amount) / current, 0.0) * window_s


@dataclass(slots=True)
class _Window:
    window_id: int
    current: float = 0.0
    previous: float = 0.0
    expires: float = 0.0


@dataclass(slots=True)
class _Budget:
    spent: float | None = None
    reserved: float = 0.0
    expires: float = 0.0


@dataclass(slots=True)
class _Assignments:
    marks: dict[str, bytes] = field(default_factory=dict)  # caller -> mark
    expires: float = 0.0


@dataclass(slots=True)
class _Counts:
    buckets: dict[int, list[int]] = field(default_factory=dict)  # second -> [total, failures]
    expires: float = 0.0


class MemoryState:
    """SharedState for a single process."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        cache_max_entries: int = 10_000,
        assignments_max: int = 1_000_000,
        sweep_interval_s: float = 5.0,
    ) -> None:
        if cache_max_entries < 1:
            raise ValueError("cache_max_entries must be at least 1")
        if assignments_max < 0:
            raise ValueError("assignments_max must be at least 0")
        self._clock = clock
        self._cache_max = cache_max_entries
        self._assignments_max = assignments_max
        self._assigned = 0  # callers remembered across all rollouts
        self._rollouts: dict[str, _Assignments] = {}
        self._sweep_interval = sweep_interval_s
        self._next_sweep = 0.0
        self._windows: dict[str, _Window] = {}
        self._budgets: dict[str, _Budget] = {}
        self._counts: dict[str, _Counts] = {}
        self._open: dict[str, tuple[float, float]] = {}  # key -> (until, expires)
        self._probes: dict[str, float] = {}  # key -> held until
        self._cache: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # key -> (expires, v)
        self._counters: dict[str, tuple[float, float]] = {}  # key -> (expires, total)

    async def start(self) -> None:
        """Nothing to start."""

    async def close(self) -> None:
        """Drop everything held."""
        for table in (self._windows, self._budgets, self._counts, self._open, self._probes):
            table.clear()
        self._cache.clear()
        self._counters.clear()
        self._rollouts.clear()
        self._assigned = 0

    async def ping(self) -> None:
        """Always reachable."""

    def entries(self) -> int:
        """How many entries are held across all tables (after a sweep of expired ones)."""
        self.sweep(self._clock())
        tables = (self._windows, self._budgets, self._counts, self._open, self._probes)
        held = len(self._cache) + len(self._counters) + self._assigned
        return sum(len(t) for t in tables) + held

    def sweep(self, now: float) -> None:
        """Remove every expired entry."""
        self._next_sweep = now + self._sweep_interval
        for table in (self._windows, self._budgets, self._counts):
            for key in [k for k, v in table.items() if v.expires <= now]:
                del table[key]
        for key in [k for k, (_, expires) in self._open.items() if expires <= now]:
            del self._open[key]
        for key in [k for k, held in self._probes.items() if held <= now]:
            del self._probes[key]
        for key in [k for k, (expires, _) in self._cache.items() if expires <= now]:
            del self._cache[key]
        for key in [k for k, (expires, _) in self._counters.items() if expires <= now]:
            del self._counters[key]
        for key in [k for k, v in self._rollouts.items() if v.expires <= now]:
            self._assigned -= len(self._rollouts.pop(key).marks)

    def _now(self) -> float:
        now = self._clock()
        if now >= self._next_sweep:
            self.sweep(now)
        return now

    # -- rate limits -----------------------------------------------------------------------------

    def _window(self, key: str, window_s: float, now: float, create: bool) -> _Window | None:
        window_id = math.floor(now / window_s)
        win = self._windows.get(key)
        if win is None:
            if not create:
                return None
            win = self._windows[key] = _Window(window_id)
        elif win.window_id == window_id - 1:
            win.previous, win.current, win.window_id = win.current, 0.0, window_id
        elif win.window_id < window_id:
            win.previous, win.current, win.window_id = 0.0, 0.0, window_id
        return win

    async def window_acquire(
        self, key: str, amount: float, limit: float, window_s: float
    ) -> WindowDecision:
        """Add `amount` only if the window's total stays within `limit`."""
        now = self._now()
        win = self._window(key, window_s, now, create=True)
        assert win is not None
        elapsed = now / window_s - win.window_id
        used = win.current + win.previous * (1.0 - elapsed)
        if window_over(used, amount, limit):
            retry = window_retry_after(win.current, win.previous, elapsed, amount, limit, window_s)
            return WindowDecision(False, used, retry)
        win.current += amount
        win.expires = now + 2 * window_s
        return WindowDecision(True, used + amount, 0.0)

    async def window_add(self, key: str, amount: float, window_s: float) -> None:
        """Add unconditionally (e.g. tokens, known only after the call)."""
        now = self._now()
        win = self._window(key, window_s, now, create=True)
        assert win is not None
        win.current += amount
        win.expires = now + 2 * window_s

    async def window_used(self, key: str, window_s: float) -> float:
        """The window's estimated total now."""
        now = self._now()
        win = self._window(key, window_s, now, create=False)
        if win is None:
            return 0.0
        return win.current + win.previous * (1.0 - (now / window_s - win.window_id))

    # -- budgets ---------------------------------------------------------------------------------

    def _budget(self, key: str, now: float) -> _Budget | None:
        budget = self._budgets.get(key)
        if budget is not None and budget.expires <= now:
            del self._budgets[key]
            return None
        return budget

    async def budget_seed(self, key: str, spent: float, ttl_s: float) -> None:
        """Set the period's settled spend if nothing is known of it yet."""
        now = self._now()
        budget = self._budget(key, now)
        if budget is None:
            budget = self._budgets[key] = _Budget()
        if budget.spent is None:
            budget.spent = spent
            budget.expires = now + ttl_s

    async def budget_raise(self, key: str, spent: float, ttl_s: float) -> None:
        """Raise the period's settled spend to at least `spent` (never lower it)."""
        now = self._now()
        budget = self._budget(key, now)
        if budget is None:
            budget = self._budgets[key] = _Budget()
        if budget.spent is None or budget.spent < spent:
            budget.spent = spent
        budget.expires = now + ttl_s

    async def budget_reserve(
        self, key: str, amount: float, limit: float, ttl_s: float
    ) -> Reservation:
        """Reserve `amount` if spent + reserved is still below `limit`."""
        now = self._now()
        budget = self._budget(key, now)
        spent = 0.0 if budget is None or budget.spent is None else budget.spent
        reserved = 0.0 if budget is None else budget.reserved
        if spent + reserved >= limit:
            return Reservation(False, spent, reserved)
        if budget is None:
            budget = self._budgets[key] = _Budget()
        budget.reserved = reserved + amount
        budget.expires = now + ttl_s
        return Reservation(True, spent, budget.reserved)

    async def budget_settle(
        self, key: str, reserved: float, actual: float, ttl_s: float
    ) -> tuple[float, float]:
        """Release a reservation and add the actual cost: (spent before, spent after)."""
        now = self._now()
        budget = self._budget(key, now)
        if budget is None:
            budget = self._budgets[key] = _Budget()
        before = budget.spent or 0.0
        budget.spent = before + actual
        budget.reserved = _released(budget.reserved, reserved)
        budget.expires = now + ttl_s
        return before, budget.spent

    async def budget_status(self, key: str) -> Reservation | None:
        """(spent, reserved) of a period, or None if never seeded or reserved; `ok` is True."""
        budget = self._budget(key, self._now())
        if budget is None:
            return None
        return Reservation(True, budget.spent or 0.0, budget.reserved)

    # -- circuit breakers ------------------------------------------------------------------------

    async def breaker_record(self, key: str, ok: bool, window_s: float) -> BreakerCounts:
        """Count one outcome; return the counts in the last `window_s` (whole seconds)."""
        now = self._now()
        second = math.floor(now)
        span = max(math.ceil(window_s), 1)
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = _Counts()
        bucket = counts.buckets.setdefault(second, [0, 0])
        bucket[0] += 1
        if not ok:
            bucket[1] += 1
        total = failures = 0
        for sec in list(counts.buckets):
            if sec <= second - span:
                del counts.buckets[sec]
            else:
                total += counts.buckets[sec][0]
                failures += counts.buckets[sec][1]
        counts.expires = now + span + 1
        return BreakerCounts(total, failures)

    async def breaker_open_until(self, key: str) -> float:
        """Epoch seconds until which the breaker is open; 0 when closed."""
        entry = self._open.get(key)
        if entry is None or entry[1] <= self._now():
            return 0.0
        return entry[0]

    async def breaker_trip(self, key: str, until: float) -> None:
        """Open the breaker until `until`; the next half-open period gets a fresh probe."""
        now = self._now()
        self._open[key] = (until, max(until, now) + BREAKER_OPEN_GRACE_S)
        self._probes.pop(key, None)

    async def breaker_claim_probe(self, key: str, hold_s: float) -> bool:
        """True for exactly one caller per `hold_s`: the half-open probe."""
        now = self._now()
        if self._probes.get(key, 0.0) > now:
            return False
        self._probes[key] = now + hold_s
        return True

    async def breaker_reset(self, key: str) -> None:
        """Close the breaker and forget its counts."""
        self._open.pop(key, None)
        self._probes.pop(key, None)
        self._counts.pop(key, None)

    # -- response cache --------------------------------------------------------------------------

    async def cache_get(self, key: str) -> bytes | None:
        """The cached value, or None when missing or expired."""
        entry = self._cache.get(key)
        if entry is None:
            return None
        if entry[0] <= self._now():
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return entry[1]

    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store `value` for `ttl_s`, evicting the least recently used beyond the bound."""
        self._cache[key] = (self._now() + ttl_s, value)
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_max:
            self._cache.popitem(last=False)

    async def counter_add(self, key: str, amount: float, ttl_s: float) -> float:
        """Add `amount` and return the new total, kept `ttl_s` after this add."""
        now = self._now()
        entry = self._counters.get(key)
        total = (entry[1] if entry is not None and entry[0] > now else 0.0) + amount
        self._counters[key] = (now + ttl_s, total)
        return total

    async def assign(self, rollout: str, caller: str, mark: bytes, ttl_s: float) -> bytes:
        """The first mark given for this caller in this rollout. Past `assignments_max`
        callers, new ones are not remembered (their mark is returned as given)."""
        now = self._now()
        entry = self._rollouts.get(rollout)
        if entry is not None and entry.expires <= now:
            self._assigned -= len(self._rollouts.pop(rollout).marks)
            entry = None
        if entry is None:
            entry = self._rollouts[rollout] = _Assignments()
        entry.expires = now + ttl_s
        seen = entry.marks.get(caller)
        if seen is not None:
            return seen
        if self._assigned < self._assignments_max:
            entry.marks[caller] = mark
            self._assigned += 1
        return mark


def _released(outstanding: float, reserved: float) -> float:
    """Outstanding reservations after releasing `reserved`, never below zero.

    A reservation can outlive its period key (the TTL lapsed); going negative would then admit
    spend beyond the limit. Residue below 1e-12 is float noise from adding and removing amounts.
    """
    left = outstanding - reserved
    return left if left > 1e-12 else 0.0
