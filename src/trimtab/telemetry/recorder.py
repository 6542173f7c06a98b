"""Recording off the request path: a bounded queue drained by a batch-writer thread.

The handler only appends to a deque. When the deque is full the record goes to the
spill file instead, and a batch the store refuses (after retries) goes there too, so a
record is never dropped; the file is replayed at the next start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque

from trimtab.store.telemetry import TelemetryStore
from trimtab.telemetry.metrics import GatewayMetrics
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.spill import SpillFile

log = logging.getLogger("trimtab.telemetry")
WRITER_NICENESS = 5


class Recorder:
    """Accepts records from the event loop; one thread commits them in batches."""

    def __init__(
        self,
        store: TelemetryStore,
        spill: SpillFile,
        metrics: GatewayMetrics,
        *,
        capacity: int,
        batch_size: int,
        flush_interval_s: float,
        write_retries: int,
    ) -> None:
        self._store = store
        self._spill = spill
        self._metrics = metrics
        self._capacity = capacity
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._retries = write_retries
        # appended by the event loop, popped by the writer: deque's ends are thread-safe
        self._queue: deque[RequestRecord] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.store_ok = True
        self.last_error: str | None = None
        metrics.watch_queue(self.depth)

    def depth(self) -> int:
        return len(self._queue)

    def record(self, record: RequestRecord) -> None:
        """Hand a record over without waiting; never raises for a full queue."""
        if len(self._queue) >= self._capacity:
            self._metrics.observe(record)
            self._spill.append((record,))
            self._metrics.spilled.inc()
            return
        self._queue.append(record)

    def replay_spill(self) -> int:
        """Write what an earlier run spilled; keep the file if the store refuses it."""
        if not self._spill.size():
            return 0
        written = 0
        try:
            for batch in self._spill.batches(self._batch_size):
                written += self._store.write(batch, skip_existing=True)
                for rec in batch:
                    self._metrics.observe(rec)
        except Exception as exc:
            log.error("replaying %s failed, kept for the next start: %s", self._spill.path, exc)
            return written
        self._spill.clear()
        self._metrics.recorded.inc(written)
        log.info("replayed %d spilled request records from %s", written, self._spill.path)
        return written

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="trimtab-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 60.0) -> None:
        """Flush everything queued, then stop; what cannot be written is spilled."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("writer did not finish in %.0fs; spilling the rest", timeout_s)
        leftover = self._take(len(self._queue))
        if leftover:
            self._spill.append(leftover)
            self._metrics.spilled.inc(len(leftover))
        self._spill.close()

    def _take(self, limit: int) -> list[RequestRecord]:
        batch: list[RequestRecord] = []
        pop = self._queue.popleft
        try:
            while len(batch) < limit:
                batch.append(pop())
        except IndexError:
            pass
        return batch

    def _run(self) -> None:
        if hasattr(os, "setpriority"):
            # the writer competes with the event loop for the CPU and the GIL; at a lower
            # priority the scheduler lets the loop run first when a request wakes it
            # (measured: added p99 at one request at a time, docs/benchmarks.md)
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WRITER_NICENESS)
        while True:
            batch = self._take(self._batch_size)
            if batch:
                self._commit(batch)
                continue
            if self._stop.is_set():
                return
            self._stop.wait(self._interval)

    def _commit(self, batch: list[RequestRecord]) -> None:
        for rec in batch:
            self._metrics.observe(rec)
        for attempt in range(self._retries + 1):
            try:
                self._store.write(batch)
            except Exception as exc:
                self._metrics.write_errors.inc()
                self._metrics.store_up.set(0)
                self.store_ok = False
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("telemetry write failed (attempt %d): %s", attempt + 1, exc)
                if attempt < self._retries:
                    time.sleep(min(0.1 * 2**attempt, 2.0))
                continue
            self._metrics.recorded.inc(len(batch))
            self._metrics.store_up.set(1)
            self.store_ok = True
            return
        self._spill.append(batch)
        self._metrics.spilled.inc(len(batch))
