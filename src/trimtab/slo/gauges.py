"""Prometheus gauges of every SLO (SLI, objective, budget remaining, burn per alert
window), refreshed in the background so a scrape reads no store. An SLO without data has
no series: a gap on a board, never 100 %."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Gauge

from trimtab.refresher import Periodic
from trimtab.slo.evaluator import read_statuses
from trimtab.slo.status import SloStatus, minutes_label
from trimtab.slo.store import SloStore

log = logging.getLogger(__name__)

REFRESH_S = 60.0  # a 30-day window moves little in a minute; each refresh reads every SLO's

Labels = tuple[str, ...]


class SloGauges:
    def __init__(
        self, store: SloStore, registry: CollectorRegistry, interval_s: float = REFRESH_S
    ) -> None:
        self._store = store
        names = ("slo", "tenant")
        self.sli = Gauge(
            "trimtab_slo_sli", "The SLI over the SLO's window.", names, registry=registry
        )
        self.objective = Gauge(
            "trimtab_slo_objective", "The SLO's objective.", names, registry=registry
        )
        self.budget_remaining = Gauge(
            "trimtab_slo_error_budget_remaining_ratio",
            "The share of the error budget left over the window (negative: overspent).",
            names,
            registry=registry,
        )
        self.burn = Gauge(
            "trimtab_slo_burn_rate",
            "The burn rate over an alert window (1: the budget lasts exactly the window).",
            (*names, "window"),
            registry=registry,
        )
        self.latest: list[tuple[str, SloStatus]] = []  # (scope, status) of the last refresh
        self._shown: dict[Gauge, set[Labels]] = {
            g: set() for g in (self.sli, self.objective, self.budget_remaining, self.burn)
        }
        self._loop = Periodic(
            "trimtab-slo-gauges",
            self.refresh,
            interval_s,
            failed="SLO gauges: refresh failed; the last values stay",
            logger=log,
            wait_first=False,
        )

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def refresh(self) -> None:
        statuses = await asyncio.to_thread(self._read)
        self.show(statuses)
        self.latest = statuses  # the console's overview shows these (web/overview.py)

    def _read(self) -> list[tuple[str, SloStatus]]:
        # one query per selector for its availability and error-rate SLOs, as the
        # evaluator and GET /api/slos read them (docs/benchmarks.md: ten times fewer)
        now = datetime.now(UTC)
        rows = self._store.listed(None)
        statuses = read_statuses(self._store.engine, [r.definition for r in rows], now)
        return [(r.scope, st) for r, st in zip(rows, statuses, strict=True)]

    def show(self, statuses: list[tuple[str, SloStatus]]) -> None:
        """Set every series of these statuses; remove the series of SLOs gone or without data."""
        seen: dict[Gauge, set[Labels]] = {g: set() for g in self._shown}

        def put(gauge: Gauge, labels: Labels, value: float | None) -> None:
            if value is not None:
                gauge.labels(*labels).set(value)
                seen[gauge].add(labels)

        for scope, status in statuses:
            labels: Labels = (status.slo.name, scope)
            put(self.objective, labels, status.slo.objective)
            put(self.sli, labels, status.value)
            put(self.budget_remaining, labels, status.budget.remaining_share)
            for minutes, burn in status.burns().items():
                put(self.burn, (*labels, minutes_label(minutes)), burn.rate)
        for gauge, shown in self._shown.items():
            for labels in shown - seen[gauge]:
                gauge.remove(*labels)
        self._shown = seen
