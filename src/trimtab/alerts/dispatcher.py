"""The alert pipeline: a queue drained by a background task that records each budget
threshold crossing in the store and posts it to every webhook, never on the request path.

Each crossing recorded for the first time is also a signal for the alert model (issue 14):
one alert per budget and period (`budget/SCOPE/PERIOD/START`), a ticket below
`alerts.budget_page_at` of the limit and a page at or above it (the alert escalates),
resolved when the period ends; routed and delivered like every other alert."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from trimtab.alerts.events import BudgetEvent, insert_event
from trimtab.alerts.signal import Signal
from trimtab.alerts.webhooks import WebhookMetrics, deliver
from trimtab.config import WebhookConfig
from trimtab.store.errors import summary

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("trimtab.alerts")


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    """Settled spend of a budget crossed a threshold (a share of its limit)."""

    event: BudgetEvent
    period_end: datetime

    def payload(self) -> dict[str, Any]:
        e = self.event
        start = e.period_start.isoformat()
        return {
            "type": "budget.threshold_crossed",
            "id": f"{e.scope}/{e.period}/{start}/{e.threshold:g}",
            "at": e.at.isoformat(),
            "scope": e.scope,
            "period": e.period,
            "period_start": start,
            "period_end": self.period_end.isoformat(),
            "threshold": e.threshold,
            "spent_usd": round(e.spent_usd, 6),
            "limit_usd": e.limit_usd,
            "on_exceed": e.on_exceed,
            # a ready-made line, e.g. for Slack-style incoming webhooks
            "text": (
                f"trimtab: budget {e.scope} ({e.period}, ${e.limit_usd:,.2f}) crossed "
                f"{e.threshold:.0%}: ${e.spent_usd:,.2f} spent"
            ),
        }

    def signal(self, page_at: float = 1.0) -> Signal:
        """The crossing as a signal: the budget's alert for this period, firing."""
        e = self.event
        start = e.period_start.isoformat()
        kind, _, name = e.scope.partition(":")
        labels = {"budget": e.scope, "period": e.period}
        if name and kind in ("tenant", "model", "route", "key", "feature"):
            labels[kind] = name
        return Signal(
            source="budget",
            dedup_key=f"budget/{e.scope}/{e.period}/{start}",
            severity="page" if e.threshold >= page_at else "ticket",
            firing=True,
            summary=(
                f"budget {e.scope} ({e.period}, ${e.limit_usd:,.2f}) crossed "
                f"{e.threshold:.0%}: ${e.spent_usd:,.2f} spent"
            ),
            at=e.at,
            labels=labels,
            details={
                "threshold": e.threshold,
                "spent_usd": round(e.spent_usd, 6),
                "limit_usd": e.limit_usd,
                "on_exceed": e.on_exceed,
                "period_start": start,
                "period_end": self.period_end.isoformat(),
            },
            expires_at=self.period_end,
        )


class AlertDispatcher:
    """Records crossings (one row per scope, period and threshold) and delivers them.

    `submit` never blocks and never fails the caller. A crossing already in the store
    (recorded before, e.g. by another process after a state reset) is not delivered again.
    """

    def __init__(
        self,
        engine: Engine,
        webhooks: list[WebhookConfig],
        metrics: WebhookMetrics,
        *,
        queue_size: int = 10_000,
        base_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        signals: Callable[[Signal], None] | None = None,
        page_at: float = 1.0,
    ) -> None:
        self._engine = engine
        self._signals = signals  # the alert model's non-blocking submit (SignalQueue)
        self._page_at = page_at
        self._webhooks = list(webhooks)
        self._metrics = metrics
        self._queue: asyncio.Queue[BudgetAlert] = asyncio.Queue(queue_size)
        self._base = base_backoff_s
        self._max = max_backoff_s
        self._deliveries: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="trimtab-alerts")

    def submit(self, alert: BudgetAlert) -> None:
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            log.error("alert queue full; dropping the alert for %s", alert.event.scope)
            self._metrics.failures.inc(len(self._webhooks))

    async def close(self, timeout_s: float = 5.0) -> None:
        """Record and deliver what is pending, waiting at most `timeout_s`; then stop."""
        if self._worker is not None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout_s)
            if not self._queue.empty():
                log.warning("stopping with %d budget alerts unhandled", self._queue.qsize())
            remaining = max(deadline - loop.time(), 0.0)
            if self._deliveries:
                _, pending = await asyncio.wait(set(self._deliveries), timeout=remaining)
                if pending:
                    log.warning("stopping with %d webhook deliveries unfinished", len(pending))
                    self._metrics.failures.inc(len(pending))
            self._worker.cancel()
            for task in (self._worker, *self._deliveries):
                task.cancel()
            await asyncio.gather(self._worker, *self._deliveries, return_exceptions=True)
            self._worker = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:
            alert = await self._queue.get()
            try:
                await self._handle(alert)
            except Exception:  # never let one alert stop the pipeline
                log.exception("handling the alert for %s failed", alert.event.scope)
            finally:
                self._queue.task_done()

    async def _handle(self, alert: BudgetAlert) -> None:
        e = alert.event
        try:
            new = await asyncio.to_thread(insert_event, self._engine, e)
        except Exception as exc:  # deliver anyway: better twice than never
            log.error("cannot record the budget event of %s: %s", e.scope, summary(exc))
            new = True
        if not new:
            log.info(
                "budget event %s %g already recorded; not delivering again", e.scope, e.threshold
            )
            return
        log.warning(
            "budget %s (%s, $%.2f) crossed %.0f%%: $%.2f spent",
            e.scope,
            e.period,
            e.limit_usd,
            e.threshold * 100,
            e.spent_usd,
        )
        if self._signals is not None:
            self._signals(alert.signal(self._page_at))
        if not self._webhooks:
            return
        if self._session is None:
            import aiohttp  # loaded on a first delivery (~15 MiB of RSS)

            self._session = aiohttp.ClientSession()
        payload = alert.payload()
        for hook in self._webhooks:
            task = asyncio.create_task(self._deliver(self._session, hook, payload))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    async def _deliver(
        self, session: aiohttp.ClientSession, hook: WebhookConfig, payload: dict[str, Any]
    ) -> None:
        ok = await deliver(
            session, hook, payload, base_backoff_s=self._base, max_backoff_s=self._max
        )
        (self._metrics.deliveries if ok else self._metrics.failures).inc()
