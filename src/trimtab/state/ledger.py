"""What one process knows of its budget accounts, kept beside the shared state.

For each account it has touched: the highest settled spend Redis reported (where a local
account starts when Redis goes away), this process's outstanding reservations, and how much
of them Redis holds. The difference is what Redis must hold again (reservations made while
it was away, or all of them after it lost its data) or release (reservations it holds that
settled while it was away). Plain data, no I/O; entries go when their period has lapsed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# float residue of adding and removing the same amounts (see memory._released)
RESIDUE = 1e-12


@dataclass(slots=True)
class _Account:
    spent: float = 0.0
    outstanding: float = 0.0  # this process's reservations not settled yet
    in_redis: float = 0.0  # the part of them Redis holds
    expires: float = 0.0  # clock time at which the account's counters lapse


class Ledger:
    """Settled spend seen and reservations outstanding, per budget key, in this process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._accounts: dict[str, _Account] = {}

    def _account(self, key: str, ttl_s: float) -> _Account:
        account = self._accounts.get(key)
        if account is None:
            account = self._accounts[key] = _Account()
        account.expires = max(account.expires, self._clock() + ttl_s)
        return account

    def saw(self, key: str, spent: float, ttl_s: float) -> None:
        """Redis (or the store) reported this settled spend: keep the highest seen."""
        account = self._account(key, ttl_s)
        account.spent = max(account.spent, spent)

    def reserved(self, key: str, amount: float, ttl_s: float, *, in_redis: bool) -> None:
        """This process now holds `amount` more on the account (in Redis, or locally)."""
        account = self._account(key, ttl_s)
        account.outstanding += amount
        if in_redis:
            account.in_redis += amount

    def released(self, key: str, amount: float, *, in_redis: bool) -> None:
        """A reservation of `amount` settled (in Redis, or locally); never below zero."""
        account = self._accounts.get(key)
        if account is not None:
            account.outstanding = _less(account.outstanding, amount)
            if in_redis:
                account.in_redis = _less(account.in_redis, amount)

    def lost(self) -> None:
        """Redis lost its data: it holds none of this process's reservations."""
        for account in self._accounts.values():
            account.in_redis = 0.0

    def synced(self, key: str) -> None:
        """Redis now holds exactly this process's outstanding reservations on the account."""
        account = self._accounts.get(key)
        if account is not None:
            account.in_redis = account.outstanding

    def spent(self, key: str) -> float:
        account = self._accounts.get(key)
        return 0.0 if account is None else account.spent

    def outstanding(self, key: str) -> float:
        account = self._accounts.get(key)
        return 0.0 if account is None else account.outstanding

    def spent_by_key(self) -> dict[str, tuple[float, float]]:
        """Per account: (the highest settled spend seen, how long its counters still live)."""
        return {k: (a.spent, self.ttl_s(k)) for k, a in self._accounts.items() if a.spent > 0}

    def known(self, key: str) -> bool:
        return key in self._accounts

    def unsynced(self) -> dict[str, float]:
        """Per account, what Redis must hold more (> 0) or release (< 0) of this process's
        reservations."""
        out: dict[str, float] = {}
        for key, account in self._accounts.items():
            delta = account.outstanding - account.in_redis
            if abs(delta) > RESIDUE:
                out[key] = delta
        return out

    def ttl_s(self, key: str) -> float:
        """How long the account's counters still live (at least one second)."""
        account = self._accounts.get(key)
        return max(0.0 if account is None else account.expires - self._clock(), 1.0)

    def sweep(self) -> None:
        """Forget accounts whose period has lapsed and that hold nothing."""
        now = self._clock()
        for key in [k for k, a in self._accounts.items() if a.expires <= now]:
            account = self._accounts[key]
            if account.outstanding <= RESIDUE and account.in_redis <= RESIDUE:
                del self._accounts[key]

    def __len__(self) -> int:
        return len(self._accounts)


def _less(value: float, amount: float) -> float:
    left = value - amount
    return left if left > RESIDUE else 0.0
