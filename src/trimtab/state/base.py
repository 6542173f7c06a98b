"""Shared state: what several gateway processes must agree on, behind one small interface.

In-process by default (`memory.py`); with `state.url: redis://…` it lives in Redis
(`redis.py`) so replicas enforce one limit, one budget and one breaker per deployment.
Every method that decides (acquire, reserve, claim) is atomic in both implementations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class WindowDecision:
    """The outcome of a rate-limit check over a sliding window."""

    allowed: bool
    used: float  # the window's total, including this amount when allowed
    retry_after_s: float  # when refused: how long until the amount would fit


@dataclass(frozen=True, slots=True)
class Reservation:
    """The outcome of reserving an estimated cost against a budget."""

    ok: bool
    spent: float  # settled spend in the period
    reserved: float  # outstanding reservations, including this one when ok


@dataclass(frozen=True, slots=True)
class BreakerCounts:
    total: int
    failures: int


class SharedState(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise when the state backend is unreachable."""
        ...

    # -- rate limits: sliding window (the current and the previous fixed window, weighted)

    async def window_acquire(
        self, key: str, amount: float, limit: float, window_s: float
    ) -> WindowDecision:
        """Add `amount` only if the window's total stays within `limit`."""
        ...

    async def window_add(self, key: str, amount: float, window_s: float) -> None:
        """Add unconditionally (e.g. tokens, known only after the call)."""
        ...

    async def window_used(self, key: str, window_s: float) -> float: ...

    # -- budgets: settled spend and outstanding reservations per period key

    async def budget_seed(self, key: str, spent: float, ttl_s: float) -> None:
        """Set the period's settled spend if nothing is known of it yet."""
        ...

    async def budget_reserve(
        self, key: str, amount: float, limit: float, ttl_s: float
    ) -> Reservation:
        """Reserve `amount` if spent + reserved is still below `limit`."""
        ...

    async def budget_settle(
        self, key: str, reserved: float, actual: float, ttl_s: float
    ) -> tuple[float, float]:
        """Release a reservation and add the actual cost: (spent before, spent after)."""
        ...

    async def budget_status(self, key: str) -> Reservation | None:
        """(spent, reserved) of a period, or None if never seeded or reserved."""
        ...

    # -- circuit breakers per deployment

    async def breaker_record(self, key: str, ok: bool, window_s: float) -> BreakerCounts:
        """Count one outcome; return the counts in the last `window_s`."""
        ...

    async def breaker_open_until(self, key: str) -> float:
        """Epoch seconds until which the breaker is open; 0 when closed."""
        ...

    async def breaker_trip(self, key: str, until: float) -> None: ...

    async def breaker_claim_probe(self, key: str, hold_s: float) -> bool:
        """True for exactly one caller per `hold_s`: the half-open probe."""
        ...

    async def breaker_reset(self, key: str) -> None:
        """Close the breaker and forget its counts."""
        ...

    # -- response cache

    async def cache_get(self, key: str) -> bytes | None: ...

    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    # -- sticky rollout assignments

    async def assign(self, rollout: str, caller: str, mark: bytes, ttl_s: float) -> bytes:
        """The caller's assignment in this rollout: the first `mark` given for it wins and
        is returned to every later call (kept at least `ttl_s` after its last use)."""
        ...

    # -- counters (guardrail session ceilings)

    async def counter_add(self, key: str, amount: float, ttl_s: float) -> float:
        """Add `amount` (0 reads) and return the new total; the counter is forgotten
        `ttl_s` after its last add."""
        ...
