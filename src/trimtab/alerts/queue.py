"""A non-blocking front to the alert service, for producers on the event loop.

`SignalQueue.submit` puts a signal in a bounded in-memory queue and returns at once (the
budget pipeline, the condition probes and the request path's neighbours call it); one
background task hands what has gathered to `AlertService.observe` in a thread, then wakes
the outbox. While the store refuses, the signals wait (up to the queue's size) and are
tried again; the condition probes repeat theirs anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.exc import DBAPIError

from trimtab.alerts.model import AlertChange
from trimtab.alerts.service import AlertService
from trimtab.alerts.signal import Signal
from trimtab.store.errors import summary

log = logging.getLogger("trimtab.alerts")

BATCH = 200


class SignalQueue:
    def __init__(
        self,
        service: AlertService,
        *,
        registry: CollectorRegistry | None = None,
        on_changes: Callable[[Sequence[AlertChange]], None] | None = None,
        size: int = 10_000,
        retry_s: float = 1.0,
        max_retry_s: float = 30.0,
    ) -> None:
        self._service = service
        self._queue: asyncio.Queue[Signal] = asyncio.Queue(size)
        self._on_changes = on_changes
        self._retry_s = retry_s
        self._max_retry_s = max_retry_s
        self._task: asyncio.Task[None] | None = None
        self.dropped = (
            Counter(
                "trimtab_alert_signals_dropped",
                "Alert signals dropped because the signal queue was full.",
                registry=registry,
            )
            if registry is not None
            else None
        )

    def submit(self, signal: Signal) -> None:
        """Queue a signal; never blocks, never raises (a full queue drops it, logged)."""
        try:
            self._queue.put_nowait(signal)
        except asyncio.QueueFull:
            log.error("alert signal queue full; dropping %s", signal.dedup_key)
            if self.dropped is not None:
                self.dropped.inc()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="trimtab-alert-signals")

    async def flush(self) -> None:
        """Wait until everything submitted so far has been observed."""
        await self._queue.join()

    async def close(self, timeout_s: float = 5.0) -> None:
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout_s)
        if not self._queue.empty():
            log.warning("stopping with %d alert signals unobserved", self._queue.qsize())
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            wait = self._retry_s
            try:
                pending = batch
                while pending:
                    changes, pending, exc = await asyncio.to_thread(self._observe_each, pending)
                    self._notify(changes)
                    if exc is not None:  # the store refuses: keep the rest, try again
                        log.warning(
                            "cannot record %d alert signals (retrying in %.0f s): %s",
                            len(pending),
                            wait,
                            summary(exc),
                        )
                        await asyncio.sleep(wait)
                        wait = min(wait * 2, self._max_retry_s)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _observe_each(
        self, batch: list[Signal]
    ) -> tuple[list[AlertChange], list[Signal], DBAPIError | None]:
        """Observe each signal (a transaction each): the changes, and when the store
        refused, the signals not yet recorded with its error. A signal that fails in any
        other way is logged and dropped; it holds no other."""
        changes: list[AlertChange] = []
        for i, signal in enumerate(batch):
            try:
                changes += self._service.observe([signal])
            except DBAPIError as exc:
                return changes, batch[i:], exc
            except Exception:
                log.exception("observing the alert signal %s failed; dropped", signal.dedup_key)
        return changes, [], None

    def _notify(self, changes: list[AlertChange]) -> None:
        if changes and self._on_changes is not None:
            try:
                self._on_changes(changes)
            except Exception:
                log.exception("an alert change listener failed")
