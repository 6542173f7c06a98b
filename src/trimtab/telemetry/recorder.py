"""Recording off the request path: a bounded queue drained by a batch-writer thread.

The handler copies the record into the journal (a mapped file, see journal.py) and
to a deque. When the deque is full the record goes to the spill file instead, and a batch
the store refuses (after retries) goes there too, so a record is never dropped. The spill
file and the segments a dead process left in the journal are replayed at start, and by
the writer thread as soon as the store accepts writes again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Protocol

from trimtab.store.errors import summary
from trimtab.telemetry.journal import Journal, Segment
from trimtab.telemetry.metrics import GatewayMetrics
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.sink import TelemetrySink
from trimtab.telemetry.spill import SpillFile

log = logging.getLogger("trimtab.telemetry")
WRITER_NICENESS = 5
BACKLOG_RETRY_S = 1.0  # after a failed replay, the writer tries the backlog again this late

Entry = tuple[RequestRecord, Segment | None]


class Scrub(Protocol):
    """The storage policy as the recorder applies it (privacy/storage.py): `applies` on the
    event loop (cheap), `scrub_errors` there, `scrub_bodies` in the writer thread."""

    def applies(self, record: RequestRecord) -> bool: ...

    def scrub_errors(self, record: RequestRecord) -> None: ...

    def scrub_bodies(self, record: RequestRecord) -> None: ...


class Recorder:
    """Accepts records from the event loop; one thread commits them in batches to a sink."""

    def __init__(
        self,
        sink: TelemetrySink,
        spill: SpillFile,
        metrics: GatewayMetrics,
        *,
        capacity: int,
        batch_size: int,
        flush_interval_s: float,
        write_retries: int,
        journal: Journal | None = None,
        export: Callable[[list[RequestRecord]], None] | None = None,
    ) -> None:
        self._sink = sink
        self.scrub: Scrub | None = None  # the storage policy, set by app.py
        self._spill = spill
        self._journal = journal
        self._export = export  # e.g. OTel spans (telemetry/otel.py), in this thread
        self._metrics = metrics
        self._capacity = capacity
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._retries = write_retries
        # appended by the event loop, popped by the writer: deque's ends are thread-safe
        self._queue: deque[Entry] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backlog_at = 0.0  # monotonic time of the next replay attempt
        self._store_back = False  # the last commit succeeded after failures
        self.store_ok = True
        self.failing_since: datetime | None = None
        self.last_error: str | None = None  # one line, no data: see store/errors.py
        metrics.watch_queue(self.depth)

    def depth(self) -> int:
        return len(self._queue)

    def record(self, record: RequestRecord) -> None:
        """Hand a record over without waiting; never raises for a full queue."""
        scrub = self.scrub
        if scrub is not None and scrub.applies(record):
            # storage.bodies is not `full`: the bodies are scrubbed by the writer thread,
            # off the request's latency, so what goes to disk now goes without them
            scrub.scrub_errors(record)  # short strings, only on errors: here
            self._write_without_bodies(record)
            return
        if len(self._queue) >= self._capacity:
            self._metrics.observe(record)
            self._spill.append((record,))
            self._metrics.spilled.inc()
            return
        seg = self._journal.append(record) if self._journal is not None else None
        self._queue.append((record, seg))

    def _write_without_bodies(self, record: RequestRecord) -> None:
        """Journal (or spill) a record whose bodies are not yet scrubbed, without them: a
        record replayed after a crash, or spilled by a full queue, keeps no bodies."""
        bodies = record.request_body, record.upstream_request_body, record.response_body
        record.request_body = record.upstream_request_body = record.response_body = None
        full = len(self._queue) >= self._capacity
        try:
            if full:
                self._metrics.observe(record)
                self._spill.append((record,))
                self._metrics.spilled.inc()
                return
            seg = self._journal.append(record) if self._journal is not None else None
        finally:
            if not full:
                record.request_body, record.upstream_request_body, record.response_body = bodies
        self._queue.append((record, seg))

    def problem(self) -> str | None:
        """Why recording is at risk, in one line without data; None when it is not."""
        if not self.store_ok and self.failing_since is not None:
            return f"telemetry writes failing since {_clock(self.failing_since)}: {self.last_error}"
        journal = self._journal
        if journal is not None and journal.failing_since is not None:
            since = _clock(journal.failing_since)
            return f"telemetry journal not writable since {since}: {journal.last_error}"
        return None

    # -- replay --------------------------------------------------------------------------

    def replay_spill(self) -> int:
        """Write what an earlier run spilled; keep the file if the store refuses it."""
        if not self._spill.size():
            return 0
        written = 0
        try:
            for batch in self._spill.batches(self._batch_size):
                written += self._sink.write(batch, skip_existing=True)
                self._metrics.observe_all(batch)
        except Exception as exc:
            log.error("replaying %s failed, kept for later: %s", self._spill.path, summary(exc))
            return written
        self._spill.clear()
        self._metrics.recorded.inc(written)
        log.info("replayed %d spilled request records from %s", written, self._spill.path)
        return written

    def replay(self) -> int:
        """At start: what dead processes left in the journal, then the spill file. What the
        store refuses stays on disk; the writer replays it once the store is back."""
        try:
            written = self._replay_orphans()
        except Exception:
            return 0  # reported by _replay_orphans
        return written + self.replay_spill()

    def _replay_orphans(self) -> int:
        if self._journal is None:
            return 0
        written = 0
        for path in self._journal.orphans():
            try:
                n = self._journal.replay_orphan(path, self._write_observed, self._batch_size)
            except Exception as exc:
                log.error("replaying %s failed, kept for later: %s", path, summary(exc))
                raise
            written += n
            log.info("replayed %d journaled request records from %s", n, path)
        return written

    def _write_observed(self, batch: list[RequestRecord]) -> int:
        # a dead process's records: this process's metrics have not seen them
        n = self._sink.write(batch, skip_existing=True)
        self._metrics.observe_all(batch)
        self._metrics.recorded.inc(n)
        return n

    def _write_seen(self, batch: list[RequestRecord]) -> int:
        # spilled by this process, which observed them then
        n = self._sink.write(batch, skip_existing=True)
        self._metrics.recorded.inc(n)
        return n

    def _replay_backlog(self) -> None:
        """While running: the spill file and orphaned segments, once the store is back.

        Called only by the writer thread, the one thread writing to the store while
        running, so a record is never being committed twice at once; skip_existing drops
        one that was both spilled and committed."""
        if time.monotonic() < self._backlog_at:
            return
        has_spill = self._spill.size() > 0
        if not has_spill and (self._journal is None or not self._journal.orphans()):
            return
        try:
            self._replay_orphans()
            if has_spill:
                n = self._spill.drain(self._write_seen, self._batch_size)
                log.info("replayed %d spilled request records from %s", n, self._spill.path)
        except Exception as exc:
            self._failed(exc)
            self._backlog_at = time.monotonic() + BACKLOG_RETRY_S
            return
        self._ok()

    # -- the writer thread ---------------------------------------------------------------

    def start(self) -> None:
        if self._journal is not None:
            self._journal.start()
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
            self._scrub_bodies(rec for rec, _ in leftover)
            self._spill.append(rec for rec, _ in leftover)
            self._metrics.spilled.inc(len(leftover))
            self._forget(leftover)
        self._spill.close()
        if self._journal is not None:
            self._journal.close()

    def _take(self, limit: int) -> list[Entry]:
        batch: list[Entry] = []
        pop = self._queue.popleft
        try:
            while len(batch) < limit:
                batch.append(pop())
        except IndexError:
            pass
        return batch

    def _forget(self, entries: list[Entry]) -> None:
        if self._journal is not None:
            self._journal.forget(seg for _, seg in entries)

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
                due = time.monotonic() + self._interval
                if self._commit(batch) and self._store_back:
                    # the store failed and took this batch: what it refused meanwhile is
                    # replayed now, under load too (otherwise: at the next idle moment)
                    self._store_back = False
                    self._backlog_at = 0.0
                    self._replay_backlog()
                if len(self._queue) < self._batch_size:
                    # one transaction per interval unless a full batch waits: each merges
                    # a rollup row once per key, whatever the number of records
                    self._stop.wait(due - time.monotonic())
                continue
            if self._stop.is_set():
                if self._queue:
                    # recorded after this loop's take, before the stop: stored, not spilled
                    continue
                return
            self._replay_backlog()  # also the probe that finds the store back when idle
            self._stop.wait(self._interval)

    def _commit(self, batch: list[Entry]) -> bool:
        """Write a batch (spilling it if the store refuses); whether the store took it."""
        records = [rec for rec, _ in batch]
        self._scrub_bodies(records)  # before any write: the store's, or a spill
        self._metrics.observe_all(records)
        if self._export is not None:
            try:
                self._export(records)
            except Exception as exc:  # an exporter's fault must not cost the records
                log.warning("exporting %d records failed: %s", len(records), summary(exc))
        for attempt in range(self._retries + 1):
            try:
                self._sink.write(records)
            except Exception as exc:
                self._failed(exc)
                log.warning("telemetry write failed (attempt %d): %s", attempt + 1, summary(exc))
                if attempt < self._retries:
                    time.sleep(min(0.1 * 2**attempt, 2.0))
                continue
            self._metrics.recorded.inc(len(batch))
            self._store_back = not self.store_ok
            self._ok()
            self._forget(batch)
            return True
        self._spill.append(records)
        self._metrics.spilled.inc(len(batch))
        self._forget(batch)
        return False

    def _scrub_bodies(self, records: Iterable[RequestRecord]) -> None:
        scrub = self.scrub
        if scrub is not None:
            for record in records:
                if scrub.applies(record):
                    scrub.scrub_bodies(record)

    def _failed(self, exc: Exception) -> None:
        self._metrics.write_errors.inc()
        self._metrics.store_up.set(0)
        self.last_error = summary(exc)
        if self.store_ok:
            self.failing_since = datetime.now(UTC)
        self.store_ok = False

    def _ok(self) -> None:
        self._metrics.store_up.set(1)
        self.store_ok = True
        self.failing_since = None


def _clock(at: datetime) -> str:
    return at.strftime("%H:%M:%SZ")
