"""The spend forecasts in the server: every `FORECAST_INTERVAL_S`, each budget's forecast
(policy/forecast_data.py), its signals handed to the alert pipeline — a `cost_forecast`
ticket while a budget's forecast crosses it, cleared when it no longer does, resolved at
the period's end. Several processes submit the same signals: the alert store keeps one
alert per dedup key."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from trimtab.alerts.signal import Signal
from trimtab.policy.forecast import forecast_signals
from trimtab.policy.forecast_data import budget_forecasts
from trimtab.refresher import Periodic

log = logging.getLogger("trimtab.policy")

FORECAST_INTERVAL_S = 900.0  # spend moves by the day: four looks an hour are plenty

Budgets = Callable[[str | None], Awaitable[list[dict[str, Any]]]]


class ForecastWatch:
    def __init__(
        self,
        engine: Engine,
        budgets: Budgets,
        now: Callable[[], datetime],
        submit: Callable[[Signal], None],
        interval_s: float = FORECAST_INTERVAL_S,
    ) -> None:
        self._engine = engine
        self._budgets = budgets
        self._now = now
        self._submit = submit
        self._periodic = Periodic(
            "trimtab-cost-forecast",
            self.tick,
            interval_s,
            failed="cost forecast failed",
            logger=log,
            wait_first=False,
        )

    async def tick(self) -> list[Signal]:
        """One look: every budget's forecast, its signals submitted (and returned)."""
        now = self._now()
        budgets: list[Mapping[str, Any]] = list(await self._budgets(None))
        forecasts, _ = await asyncio.to_thread(budget_forecasts, self._engine, budgets, now, None)
        signals = forecast_signals(forecasts, now)
        for signal in signals:
            self._submit(signal)
        return signals

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
