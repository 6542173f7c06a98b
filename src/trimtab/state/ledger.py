"""What one process knows of its budget accounts, kept beside the shared state.

For each account it has touched: the highest settled spend Redis reported (where a local
account starts when Redis goes away) and this process's outstanding reservations (what it
must hold again in Redis after Redis lost them, and release there for the ones that settled
while Redis was away). Plain data, no I/O; entries go when their period's TTL has passed.
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
    outstanding: float = 0.0
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

    def reserved(self, key: str, amount: float, ttl_s: float) -> None:
        """This process now holds `amount` more on the account."""
        self._account(key, ttl_s).outstanding += amount

    def released(self, key: str, amount: float) -> None:
        """A reservation of `amount` settled (never below zero)."""
        account = self._accounts.get(key)
        if account is not None:
            left = account.outstanding - amount
            account.outstanding = left if left > RESIDUE else 0.0

    def spent(self, key: str) -> float:
        account = self._accounts.get(key)
        return 0.0 if account is None else account.spent

    def outstanding(self, key: str) -> float:
        account = self._accounts.get(key)
        return 0.0 if account is None else account.outstanding

    def known(self, key: str) -> bool:
        return key in self._accounts

    def holds(self) -> dict[str, float]:
        """Outstanding reservations per account, those above zero."""
        return {k: a.outstanding for k, a in self._accounts.items() if a.outstanding > RESIDUE}

    def ttl_s(self, key: str) -> float:
        """How long the account's counters still live (at least one second)."""
        account = self._accounts.get(key)
        return max(0.0 if account is None else account.expires - self._clock(), 1.0)

    def sweep(self) -> None:
        """Forget accounts whose period has lapsed and that hold nothing."""
        now = self._clock()
        for key in [k for k, a in self._accounts.items() if a.expires <= now]:
            if self._accounts[key].outstanding <= RESIDUE:
                del self._accounts[key]

    def __len__(self) -> int:
        return len(self._accounts)
