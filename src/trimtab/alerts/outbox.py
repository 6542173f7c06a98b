"""Delivering the alert outbox: every process drains it, none delivers a row twice.

A background task claims due rows (a lease, taken with a conditional update: see
alerts/outbox_store.py), POSTs each to its sink in a task of its own bounded by the sink's
timeout, and settles it: delivered on a 2xx; on a 5xx, 408/409/425/429, a refused
connection or a timeout, retried after an exponential backoff with jitter (capped at
`max_backoff_s`) until the row is `give_up_after_s` old; any other answer is final
(dead, logged). A sink that hangs holds only its own row: the others are claimed and
sent meanwhile, and the producers never wait for delivery. A row whose process died
mid-delivery is free again once its lease passes; one pending at a stop is sent after
the next start, by this process or another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import orjson
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import Engine

from trimtab.alerts import outbox_store
from trimtab.alerts.model import backoff_s
from trimtab.alerts.sinks import sink_url
from trimtab.alerts.webhooks import safe_url
from trimtab.config import AlertsConfig
from trimtab.store.errors import summary

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("trimtab.alerts")

_RETRYABLE_4XX = frozenset({408, 409, 425, 429})
MAX_IN_FLIGHT = 64


def _now() -> datetime:
    return datetime.now(UTC)


class OutboxMetrics:
    """`trimtab_alert_notifications_total{sink, outcome}`: delivered, retried, dead."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.notifications = Counter(
            "trimtab_alert_notifications",
            "Alert notifications by sink and outcome (delivered, retried, dead).",
            ["sink", "outcome"],
            registry=registry,
        )


class Outbox:
    def __init__(
        self,
        engine: Engine,
        config: AlertsConfig,
        metrics: OutboxMetrics | None = None,
        *,
        worker: str | None = None,
        rand: random.Random | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._engine = engine
        self._config = config
        self._metrics = metrics
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"[:64]
        self._rand = rand or random.Random()
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._sending: dict[int, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None

    def wake(self) -> None:
        """Look at the outbox now (new rows were just written), not at the next interval."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="trimtab-alert-outbox")

    async def stop(self, timeout_s: float = 2.0) -> None:
        """Stop claiming; give deliveries under way `timeout_s`, then release their rows
        (pending, due at once: the next start or another process sends them)."""
        if self._task is not None:
            # let a claim under way finish (cancelling it would leave its thread claiming
            # rows no one sends until their lease ends), then send and release what it took
            self._stopping = True
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
            self._stopping = False
        if self._sending:
            _, pending = await asyncio.wait(set(self._sending.values()), timeout=timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(outbox_store.release, self._engine, self.worker, self._clock())
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        interval = self._config.outbox.interval_s
        while not self._stopping:
            try:
                await self.drain_once()
            except Exception as exc:  # the store is down: try again next interval
                log.warning("alert outbox: cannot claim rows: %s", summary(exc))
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()

    async def drain_once(self) -> int:
        """Claim what is due and start sending it; how many rows were claimed."""
        room = MAX_IN_FLIGHT - len(self._sending)
        if room <= 0:
            return 0
        rows = await asyncio.to_thread(
            outbox_store.claim,
            self._engine,
            self.worker,
            self._clock(),
            self._config.outbox.lease_s,
            room,
        )
        for row in rows:
            task = asyncio.create_task(self._send(row), name=f"trimtab-alert-send-{row.id}")
            self._sending[row.id] = task
            task.add_done_callback(self._done)
        return len(rows)

    def _done(self, task: asyncio.Task[None]) -> None:
        for rid, t in list(self._sending.items()):
            if t is task:
                del self._sending[rid]

    async def idle(self) -> None:
        """Wait until no delivery is under way (tests, and a bounded stop)."""
        while self._sending:
            await asyncio.gather(*self._sending.values(), return_exceptions=True)

    def _count(self, sink: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.notifications.labels(sink, outcome).inc()

    async def _send(self, row: outbox_store.OutboxRow) -> None:
        import aiohttp  # loaded on a first delivery (~15 MiB of RSS)

        sink = self._config.sinks.get(row.sink)
        if sink is None:
            await self._settle(row, delivered=False, error=f"sink {row.sink!r} is not configured")
            self._count(row.sink, "dead")
            return
        if self._session is None:
            self._session = aiohttp.ClientSession()
        url = sink_url(sink)
        headers = {"content-type": "application/json", "user-agent": "trimtab", **sink.headers}
        timeout = aiohttp.ClientTimeout(total=sink.timeout_s)
        try:
            async with self._session.post(
                url, data=orjson.dumps(row.payload), headers=headers, timeout=timeout
            ) as r:
                await r.read()
                status = r.status
            problem = None if 200 <= status < 300 else f"answered {status}"
            retry = status >= 500 or status in _RETRYABLE_4XX
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            problem = f"{type(exc).__name__}: {exc}".rstrip(": ")
            retry = True
        where = f"{row.sink} ({safe_url(url)})"
        if problem is None:
            await self._settle(row, delivered=True)
            self._count(row.sink, "delivered")
            return
        now = self._clock()
        age = (now - row.created_at).total_seconds()
        if retry and age < self._config.outbox.give_up_after_s:
            o = self._config.outbox
            wait = backoff_s(row.attempts, o.base_backoff_s, o.max_backoff_s, self._rand)
            log.info(
                "alert %d to %s: %s (attempt %d); retrying in %.1f s",
                row.alert_id,
                where,
                problem,
                row.attempts,
                wait,
            )
            await self._settle(row, error=problem, retry_at=now + timedelta(seconds=wait))
            self._count(row.sink, "retried")
            return
        why = "giving up" if retry else "not retrying"
        log.error(
            "alert %d to %s: %s (attempt %d); %s", row.alert_id, where, problem, row.attempts, why
        )
        await self._settle(row, error=problem)
        self._count(row.sink, "dead")

    async def _settle(
        self,
        row: outbox_store.OutboxRow,
        *,
        delivered: bool = False,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        try:
            await asyncio.to_thread(
                outbox_store.finish,
                self._engine,
                row.id,
                self.worker,
                self._clock(),
                delivered=delivered,
                error=error,
                retry_at=retry_at,
            )
        except Exception as exc:  # the lease runs out and the row is tried again
            log.warning("alert outbox: cannot settle row %d: %s", row.id, summary(exc))
