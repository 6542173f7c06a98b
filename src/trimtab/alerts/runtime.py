"""The alert pipeline as the server runs it: one object the app builds, starts and stops.

It holds the `AlertService` (what the SLO evaluator and incidents call), the
`SignalQueue` every producer on the event loop submits to, the `Outbox` that delivers,
the probes of the server's own conditions, and the sweep that resolves alerts past their
expiry (a budget's period, a dead process's condition) and those whose condition no longer
exists (a deleted SLO's, `retire_orphans`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from trimtab.alerts.model import AlertChange
from trimtab.alerts.outbox import Outbox, OutboxMetrics
from trimtab.alerts.probes import Probe, Probes, Watch, breaker_probe, problem_probe
from trimtab.alerts.queue import SignalQueue
from trimtab.alerts.service import AlertService, OwnerLookup
from trimtab.alerts.signal import Severity, Signal, Source
from trimtab.config import AlertsConfig
from trimtab.refresher import Periodic

log = logging.getLogger("trimtab.alerts")

ChangeListener = Callable[[Sequence[AlertChange]], None]


class AlertRuntime:
    def __init__(
        self,
        engine: Engine,
        config: AlertsConfig,
        registry: CollectorRegistry,
        *,
        owners: OwnerLookup | None = None,
    ) -> None:
        self.config = config
        self.service = AlertService(engine, config, owners=owners)
        self.outbox = Outbox(engine, config, OutboxMetrics(registry))
        self._listeners: list[ChangeListener] = []
        self.queue = SignalQueue(self.service, registry=registry, on_changes=self._changed)
        self._watch = Watch(config.outbox.probe_interval_s)
        self._probes: list[Probe] = []
        self._probe_loop = Probes(self._probes, self.submit, config.outbox.probe_interval_s)
        self._orphans: list[tuple[Source, Callable[[], Iterable[str]], str]] = []
        self._sweep = Periodic(
            "trimtab-alert-expiry",
            self._resolve_expired,
            config.outbox.probe_interval_s,
            failed="resolving expired alerts failed",
            logger=log,
        )

    def submit(self, signal: Signal) -> None:
        """Non-blocking: the signal is observed in the background."""
        self.queue.submit(signal)

    def on_changes(self, listener: ChangeListener) -> None:
        """Call `listener` (on the event loop) with the changes each batch of signals made
        (incidents open on a page)."""
        self._listeners.append(listener)

    def watch_problem(
        self, source: Source, severity: Severity, problem: Callable[[], str | None]
    ) -> None:
        """Alert while `problem()` names one (checked every `outbox.probe_interval_s`)."""
        self._probes.append(problem_probe(self._watch, source, severity, problem))

    def watch_breakers(
        self,
        keys: Callable[[], Iterable[str]],
        status: Callable[[str], Awaitable[Mapping[str, Any]]],
        models: Mapping[str, Sequence[str]] | None = None,
        severity: Severity = "ticket",
    ) -> None:
        """Alert while a deployment's breaker is open; `models` (deployment -> the models
        it serves) labels the alert, so an incident of a model finds its breaker's trip."""
        self._probes.append(breaker_probe(self._watch, keys, status, severity, models or {}))

    def retire_orphans(
        self, source: Source, living: Callable[[], Iterable[str]], reason: str
    ) -> None:
        """Each sweep, resolve the open alerts of `source` whose dedup key starts with none
        of the prefixes `living()` names (a store read, run in a thread): a deleted SLO's
        alerts, even one its evaluator said once more after the deletion."""
        self._orphans.append((source, living, reason))

    def changed(self, changes: Sequence[AlertChange]) -> None:
        """Changes made outside the queue (an acknowledgement through the API): the outbox
        looks at once and the listeners hear of them, as of the queue's own."""
        self._changed(changes)

    def _changed(self, changes: Sequence[AlertChange]) -> None:
        self.outbox.wake()
        for listener in self._listeners:
            listener(changes)

    async def _resolve_expired(self) -> None:
        changes = await asyncio.to_thread(self.service.resolve_expired)
        for source, living, reason in self._orphans:
            changes += await asyncio.to_thread(self.service.resolve_orphans, source, living, reason)
        if changes:
            self._changed(changes)

    def start(self) -> None:
        self.queue.start()
        self.outbox.start()
        self._probe_loop.start()
        self._sweep.start()

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop probing, observe what was submitted (bounded), then stop delivering: what
        is still in the outbox is sent after the next start."""
        await self._probe_loop.stop()
        await self._sweep.stop()
        await self.queue.close(timeout_s)
        await self.outbox.stop()
