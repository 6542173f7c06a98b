"""The policy service: rate limits and budgets around each model call.

The gateway calls `admit` before the provider (it may refuse with 429 or pick a cheaper
model) and `settle` after it (tokens into the per-minute windows, the real cost into the
budgets, threshold alerts). See docs/policy.md for the semantics and the guarantee.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from trimtab.alerts.dispatcher import AlertDispatcher, BudgetAlert
from trimtab.alerts.events import BudgetEvent
from trimtab.alerts.signal import Signal
from trimtab.alerts.webhooks import WebhookMetrics
from trimtab.auth.keyring import key_hash, key_id_of
from trimtab.config import BudgetConfig, Config, Pricing
from trimtab.errors import LimitExceeded
from trimtab.policy.budgets import (
    Account,
    accounts_for,
    budget_key,
    crossings,
    exceeded,
    exceeded_message,
    period_span,
    reserve_limit,
)
from trimtab.policy.failopen import FailOpen
from trimtab.policy.limits import (
    WINDOW_S,
    rate_checks,
    retry_seconds,
    rpm_message,
    tpm_message,
    tpm_retry_after,
)
from trimtab.policy.metrics import PolicyMetrics
from trimtab.policy.outputs import OutputEstimator
from trimtab.policy.report import BudgetReport
from trimtab.policy.spend import spend_by
from trimtab.state.base import Reservation, SharedState, WindowDecision
from trimtab.state.resilient import ResilientState, Seeds

log = logging.getLogger("trimtab.policy")


@dataclass(frozen=True, slots=True)
class Ask:
    """What the gateway knows before calling the provider."""

    tenant: str
    key_id: str | None
    model: str  # the configured model name the client asked for
    feature: str | None
    route: str | None
    input_tokens: int  # estimate (see estimate_input_tokens)
    max_output_tokens: int | None


@dataclass(frozen=True, slots=True)
class Hold:
    """A reservation on one budget account, released when the request settles."""

    account: Account
    reserved: float


@dataclass(slots=True)
class Admission:
    """The go-ahead; holds what must be settled afterwards."""

    model: str  # the model to serve: the asked one, or a downgrade target
    downgraded_from: str | None = None
    holds: tuple[Hold, ...] = ()
    tpm_keys: tuple[str, ...] = ()
    settled: bool = False


class Policy:
    """Rate limits, budgets and budget alerts, backed by a `SharedState`.

    Metrics (`trimtab_webhook_{deliveries,failures}_total`,
    `trimtab_policy_refusals_total`, `trimtab_budget_downgrades_total`,
    `trimtab_policy_state_errors_total`) go to `registry` when given, else to a registry of
    the policy's own (`policy.registry`).

    The output tokens a budgeted request reserves are learnt from the model's recent answers
    in this process (`OutputEstimator`, `config.reservation`; `default_output_tokens`
    overrides its cold-start fallback).

    While Redis is unreachable, a `ResilientState` counts limits and budgets in the process
    (each process its share, docs/policy.md). A state call that still fails makes the
    policy fail open: the request goes ahead unlimited, the error is logged and counted.
    """

    def __init__(
        self,
        config: Config,
        state: SharedState,
        engine: Engine,
        *,
        registry: CollectorRegistry | None = None,
        default_output_tokens: int | None = None,
        clock: Callable[[], float] = time.time,
        webhook_backoff_s: float = 0.5,
        webhook_max_backoff_s: float = 30.0,
        close_timeout_s: float = 5.0,
        alert_signals: Callable[[Signal], None] | None = None,
    ) -> None:
        self._limits = list(config.limits)
        self._budgets = list(config.budgets)
        self._thresholds = list(config.alerts.budget_thresholds)
        self._state = state
        self._engine = engine
        reservation = config.reservation
        if default_output_tokens is not None:
            reservation = reservation.model_copy(
                update={"default_output_tokens": default_output_tokens}
            )
        self._outputs = OutputEstimator(reservation)
        self._clock = clock
        self._close_timeout = close_timeout_s
        self.registry = registry if registry is not None else CollectorRegistry()
        self._metrics = PolicyMetrics(self.registry)
        self._calls = FailOpen(self._metrics)
        self._alerts = AlertDispatcher(
            engine,
            list(config.alerts.webhooks),
            WebhookMetrics(self.registry),
            base_backoff_s=webhook_backoff_s,
            max_backoff_s=webhook_max_backoff_s,
            signals=alert_signals,  # crossings become alerts too (alerts/dispatcher.py)
            page_at=config.alerts.budget_page_at,
        )
        key_tenants = {key_id_of(key_hash(k.key)): k.tenant for k in (config.keys or [])}
        self.report = BudgetReport(self._budgets, state, engine, key_tenants, self.now)

    @property
    def enabled(self) -> bool:
        """Whether any limit or budget is configured (admit and settle are no-ops if not)."""
        return bool(self._limits or self._budgets)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Seed this period's budget spend from the store, then start the alert pipeline."""
        await self._seed()
        self._alerts.start()

    async def close(self) -> None:
        """Deliver pending alerts (waiting at most `close_timeout_s`), then stop."""
        await self._alerts.close(self._close_timeout)

    async def _seed(self) -> None:
        seeds = await self.store_seeds()
        if isinstance(self._state, ResilientState):
            # raised to the store's spend, and read again whenever Redis lost it or returns
            await self._state.seed_budgets(seeds, self.store_seeds)
        else:
            for key, (usd, ttl) in seeds.items():
                await self._state.budget_seed(key, usd, ttl)
        if seeds:
            log.info("seeded %d budget accounts from the store", len(seeds))

    async def store_seeds(self) -> Seeds:
        """This period's settled spend per budget account, from the store."""
        now = self.now()
        kinds: dict[tuple[str, str], list[BudgetConfig]] = {}
        for budget in self._budgets:
            kinds.setdefault((budget.scope.partition(":")[0], budget.period), []).append(budget)
        seeds: Seeds = {}
        for (kind, period), budgets in kinds.items():
            span = period_span(period, now)
            spent = await asyncio.to_thread(spend_by, self._engine, kind, span.start)
            for budget in budgets:
                name = budget.scope.partition(":")[2]
                for value, usd in spent.items():
                    if name in ("*", value):
                        seeds[budget_key(f"{kind}:{value}", span)] = (usd, span.ttl_s(now))
        return seeds

    # -- the request path -------------------------------------------------------------

    async def admit(self, ask: Ask, pricing: Callable[[str], Pricing]) -> Admission:
        """Reserve budgets (maybe choosing a downgrade model), then check the rate limits.

        Raises LimitExceeded `budget_exceeded` or `rate_limited` (429) with `retry_after`.
        """
        if not self.enabled:
            return Admission(ask.model)
        now = self.now()
        model, holds = await self._reserve(ask, pricing, now)
        downgraded_from = ask.model if model != ask.model else None
        try:
            tpm_keys = await self._rate_limit(ask, model, now.timestamp())
        except LimitExceeded:
            await self._release(holds, now)
            raise
        if downgraded_from is not None:
            self._metrics.downgrades.labels(ask.model, model).inc()
        return Admission(model, downgraded_from, tuple(holds), tpm_keys)

    async def settle(
        self,
        admission: Admission,
        ask: Ask,
        cost_usd: float | None,
        input_tokens: int | None,
        output_tokens: int | None,
        *,
        completed: bool = True,
    ) -> None:
        """Count the call's real tokens and cost, release its reservations, fire alerts.

        Call it exactly once per admission, also when the call failed (cost None: the
        reservation is released and nothing is charged). A call cut short (`completed`
        False) is charged its cost, but its length says nothing of the model's answers and
        is not learnt. A second call does nothing. Never raises on state errors (they are
        logged and counted).
        """
        if admission.settled:
            return
        admission.settled = True
        now = self.now()
        if self._budgets and completed and cost_usd is not None:  # embeddings have no
            self._outputs.observe(admission.model, output_tokens or 0)  # output count
        tokens = (input_tokens or 0) + (output_tokens or 0)
        if tokens > 0 and admission.tpm_keys:
            await self._calls.each(
                [self._state.window_add(key, tokens, WINDOW_S) for key in admission.tpm_keys]
            )
        if not admission.holds:
            return
        actual = max(cost_usd or 0.0, 0.0)
        holds = admission.holds
        results = await self._calls.each(
            [
                self._state.budget_settle(
                    h.account.key, h.reserved, actual, h.account.span.ttl_s(now)
                )
                for h in holds
            ]
        )
        for hold, result in zip(holds, results, strict=True):
            if result is not None:
                self._alert(hold.account, result[0], result[1], now)

    # -- budgets ----------------------------------------------------------------------

    def _values(self, ask: Ask, model: str) -> dict[str, str | None]:
        return {
            "tenant": ask.tenant,
            "key": ask.key_id,
            "model": model,
            "feature": ask.feature,
            "route": ask.route,
        }

    async def _reserve(
        self, ask: Ask, pricing: Callable[[str], Pricing], now: datetime
    ) -> tuple[str, list[Hold]]:
        """Reserve the estimate on every account; on a spent downgrade budget, try its model."""
        model = ask.model
        tried = {model}
        while True:
            accounts = accounts_for(self._budgets, self._values(ask, model), now)
            if not accounts:
                return model, []
            out_tokens = self._outputs.tokens(model, ask.max_output_tokens)
            estimate = pricing(model).cost(ask.input_tokens, out_tokens) or 0.0
            results = await self._calls.each(
                [
                    self._state.budget_reserve(
                        a.key, estimate, reserve_limit(a, model), a.span.ttl_s(now)
                    )
                    for a in accounts
                ]
            )
            holds: list[Hold] = []
            refused: list[tuple[Account, Reservation, list[BudgetConfig]]] = []
            for account, result in zip(accounts, results, strict=True):
                if result is None:
                    continue  # state failed: fail open, nothing reserved
                if result.ok:
                    holds.append(Hold(account, estimate))
                    continue
                over = exceeded(account, model, result.spent, result.reserved)
                if not over:  # rounding at the edge: the tightest enforcing budget refused
                    over = sorted(
                        (b for b in account.budgets if b.usd == reserve_limit(account, model)),
                        key=lambda b: b.usd,
                    )
                refused.append((account, result, over))
            if not refused:
                return model, holds
            await self._release(holds, now)
            target = self._downgrade_target(refused, tried)
            if target is None:
                self._metrics.refusals.labels("budget_exceeded").inc()
                raise self._budget_error(refused, now)
            tried.add(target)
            model = target

    @staticmethod
    def _downgrade_target(
        refused: Sequence[tuple[Account, Reservation, list[BudgetConfig]]], tried: set[str]
    ) -> str | None:
        """The model to try next, or None when a refusal blocks (or the downgrades loop)."""
        target: str | None = None
        for _, _, over in refused:
            for budget in over:
                to = budget.downgrade_to
                if to is None or to in tried:
                    return None
                target = target or to
        return target

    def _budget_error(
        self, refused: Sequence[tuple[Account, Reservation, list[BudgetConfig]]], now: datetime
    ) -> LimitExceeded:
        # name the budget that blocks (else one whose downgrade model is spent as well)
        best: tuple[Account, Reservation, BudgetConfig] | None = None
        for account, result, over in refused:
            for budget in over:
                if best is None or (budget.downgrade_to is None and best[2].downgrade_to):
                    best = (account, result, budget)
        assert best is not None
        account, result, budget = best
        message = exceeded_message(
            budget, account.scope, account.span, result.spent, result.reserved
        )
        if budget.downgrade_to is not None:
            message += f" (its downgrade model '{budget.downgrade_to}' is over budget as well)"
        # when only reservations of requests in flight stand in the way, they settle soon
        spent = result.spent >= budget.usd
        wait = (account.span.end - now).total_seconds() if spent else 1.0
        return LimitExceeded(message, code="budget_exceeded", retry_after=retry_seconds(wait))

    async def _release(self, holds: Sequence[Hold], now: datetime) -> None:
        if holds:
            await self._calls.each(
                [
                    self._state.budget_settle(
                        h.account.key, h.reserved, 0.0, h.account.span.ttl_s(now)
                    )
                    for h in holds
                ]
            )

    def _alert(self, account: Account, before: float, after: float, now: datetime) -> None:
        for budget in account.budgets:
            for threshold in crossings(before, after, budget.usd, self._thresholds):
                event = BudgetEvent(
                    at=now,
                    scope=account.scope,
                    period=budget.period,
                    period_start=account.span.start,
                    threshold=threshold,
                    spent_usd=after,
                    limit_usd=budget.usd,
                    on_exceed=budget.on_exceed,
                )
                self._alerts.submit(BudgetAlert(event, account.span.end))

    # -- rate limits ------------------------------------------------------------------

    async def _rate_limit(self, ask: Ask, model: str, now: float) -> tuple[str, ...]:
        """Check tokens per minute (read only), then take one request from each RPM window.

        When one RPM window refuses, the requests the others took in this call are given
        back (`window_add(key, -1)`), so a refused request counts against no limit.
        """
        rpm, tpm = rate_checks(self._limits, self._values(ask, model))
        if tpm:
            used = await self._calls.each([self._state.window_used(c.key, WINDOW_S) for c in tpm])
            for check, value in zip(tpm, used, strict=True):
                if value is not None and value >= check.limit:
                    retry = retry_seconds(tpm_retry_after(value, check.limit, now))
                    self._metrics.refusals.labels("rate_limited").inc()
                    raise LimitExceeded(tpm_message(check, value, retry), retry_after=retry)
        if rpm:
            decisions = await self._calls.each(
                [self._state.window_acquire(c.key, 1, c.limit, WINDOW_S) for c in rpm]
            )
            refused = [
                (c, d)
                for c, d in zip(rpm, decisions, strict=True)
                if d is not None and not d.allowed
            ]
            if refused:
                taken = [
                    c.key
                    for c, d in zip(rpm, decisions, strict=True)
                    if d is not None and d.allowed
                ]
                await self._calls.each([self._state.window_add(key, -1, WINDOW_S) for key in taken])
                check, decision = max(refused, key=_retry_of)
                retry = retry_seconds(decision.retry_after_s)
                self._metrics.refusals.labels("rate_limited").inc()
                raise LimitExceeded(rpm_message(check, retry), retry_after=retry)
        return tuple(c.key for c in tpm)


def _retry_of(pair: tuple[Any, WindowDecision]) -> float:
    return pair[1].retry_after_s
