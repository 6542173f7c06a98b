"""Budgets, pure: periods, state keys, which budgets apply, and threshold crossings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from trimtab.config import BudgetConfig
from trimtab.policy.scopes import resolve_scope

# A limit that never refuses: used to reserve against budgets that only alert, so their
# outstanding reservations still show. Finite, so every state backend can compare it.
UNLIMITED = 1e300

# how long a period's counters outlive the period (late settlements, the budgets API)
KEY_GRACE_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Span:
    """One budget period in UTC: [start, end)."""

    period: str  # "day" | "month"
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        return self.start.strftime("%Y-%m-%d" if self.period == "day" else "%Y-%m")

    def ttl_s(self, now: datetime) -> float:
        """How long the state should keep this period's counters."""
        return max((self.end - now).total_seconds(), 0.0) + KEY_GRACE_S


def period_span(period: str, now: datetime) -> Span:
    """The UTC day (midnight to midnight) or month (the 1st to the 1st) holding `now`."""
    now = now.astimezone(UTC)
    if period == "day":
        start = datetime(now.year, now.month, now.day, tzinfo=UTC)
        return Span(period, start, start + timedelta(days=1))
    if period == "month":
        start = datetime(now.year, now.month, 1, tzinfo=UTC)
        end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
        return Span(period, start, end)
    raise ValueError(f"unknown budget period '{period}'")


def budget_key(scope: str, span: Span) -> str:
    """The state key of a scope's spend in a period: "budget:tenant:acme:month:2026-11"."""
    return f"budget:{scope}:{span.period}:{span.label}"


@dataclass(frozen=True, slots=True)
class Account:
    """One spend counter a request is charged to, and the budgets that watch it.

    Budgets naming the same concrete scope and period (`tenant:*` and `tenant:acme`) share
    the counter: a request reserves and settles once per account, never twice.
    """

    key: str
    scope: str  # "tenant:acme"
    span: Span
    budgets: tuple[BudgetConfig, ...]


def accounts_for(
    budgets: Iterable[BudgetConfig], values: Mapping[str, str | None], now: datetime
) -> list[Account]:
    """The accounts a request with these scope values is charged to, in config order."""
    grouped: dict[str, tuple[str, Span, list[BudgetConfig]]] = {}
    for budget in budgets:
        scope = resolve_scope(budget.scope, values)
        if scope is None:
            continue
        span = period_span(budget.period, now)
        key = budget_key(scope, span)
        if key not in grouped:
            grouped[key] = (scope, span, [])
        grouped[key][2].append(budget)
    return [Account(key, s, span, tuple(bs)) for key, (s, span, bs) in grouped.items()]


def enforces(budget: BudgetConfig, model: str) -> bool:
    """Whether an exceeded budget stops a request for `model`.

    `alert` budgets never do; `downgrade:M` budgets do not stop requests already served by M.
    """
    if budget.on_exceed == "alert":
        return False
    return budget.downgrade_to != model


def reserve_limit(account: Account, model: str) -> float:
    """The limit to reserve against: the tightest budget on the account that enforces."""
    limits = [b.usd for b in account.budgets if enforces(b, model)]
    return min(limits) if limits else UNLIMITED


def exceeded(account: Account, model: str, spent: float, reserved: float) -> list[BudgetConfig]:
    """The enforcing budgets of an account that a refused reservation ran into."""
    return [b for b in account.budgets if enforces(b, model) and spent + reserved >= b.usd]


def crossings(
    before: float, after: float, limit: float, thresholds: Iterable[float]
) -> list[float]:
    """The thresholds (shares of `limit`) that settled spend crossed going from before to after.

    A threshold t is crossed when before < t * limit <= after (up to float noise). Every
    settlement sees a distinct (before, after) pair of one atomic counter, so the intervals
    of concurrent settlements are disjoint and each crossing is seen by exactly one of them.
    """
    eps = 1e-9 * max(1.0, limit)  # float noise: 1.1 * 100 is 110.00000000000001
    return sorted(t for t in set(thresholds) if before < t * limit - eps <= after)


def money(usd: float) -> str:
    return f"${usd:,.2f}"


def budget_label(budget: BudgetConfig, scope: str) -> str:
    """ "tenant:acme (month, $100.00)" """
    return f"{scope} ({budget.period}, {money(budget.usd)})"


def exceeded_message(
    budget: BudgetConfig, scope: str, span: Span, spent: float, reserved: float
) -> str:
    resets = span.end.strftime("%Y-%m-%dT%H:%M:%SZ")
    if spent >= budget.usd:
        state = f"is spent: {money(spent)} settled"
        if reserved > 0:
            state += f", {money(reserved)} reserved by requests in flight"
    else:
        state = (
            f"is taken: {money(spent)} settled + {money(reserved)} reserved by requests in flight"
        )
    return f"budget {budget_label(budget, scope)} {state}; it resets at {resets}"
