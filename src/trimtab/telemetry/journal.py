"""The write-ahead journal: every queued record is on local disk before its response ends.

Each segment is a file of fixed size, allocated up front and mapped into memory. The
event loop copies each record's line into the mapping: a memory copy (a few µs), with no
system call, so it never hands the GIL to the writer thread as a `write()` would (measured:
p99 of a `write()` under a busy writer thread, milliseconds; of the copy, tens of µs). The
pages belong to the OS page cache, so a process killed with SIGKILL loses nothing. A
journal thread fsyncs every `fsync_interval_s`, which bounds what a machine crash can
lose, and deletes segments whose records have all been committed to the store (or
spilled). The unused end of a segment is zeros; readers stop at the first zero byte.

Each live segment holds an exclusive `flock`, so a segment whose lock can be taken belongs
to a process that has died: `orphans()` are what a later start (or this process, once the
store is back) replays, without duplicates.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from trimtab.telemetry.lines import encode, read_batches
from trimtab.telemetry.record import RequestRecord

log = logging.getLogger("trimtab.telemetry")
SEGMENT_BYTES = 16 * 1024 * 1024  # allocated per segment; a record larger gets its own
PATTERN = "journal-*.jsonl"
RETRY_S = 1.0  # after a segment could not be created (disk full), try again this late


@dataclass(eq=False)
class Segment:
    """Each counter has one writing thread, so none needs a lock (see Journal)."""

    path: Path
    fd: int
    mm: mmap.mmap
    capacity: int
    size: int = 0  # bytes written (event loop)
    appended: int = 0  # records written (event loop)
    forgotten: int = 0  # of those, committed or spilled (writer thread)
    synced: int = 0  # bytes fsynced (journal thread)

    @property
    def pending(self) -> int:
        return self.appended - self.forgotten


class Journal:
    """Segments of JSON lines in one directory; one process writes each segment.

    The event loop appends without a lock: a lock it waited for while the writer thread
    held it across a GIL switch would stall every request. Only the event loop appends
    and rotates (rotation, rare, takes the lock that guards the list of segments), only
    the writer forgets, only the journal thread syncs and deletes, and a segment is
    deleted once retired (no more appends) with every record forgotten."""

    def __init__(
        self,
        directory: str | Path,
        *,
        fsync_interval_s: float,
        also_sync: Callable[[], None],
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        """`also_sync` is fsynced before committed segments are deleted (the spill file:
        a record the journal forgets because it was spilled must be durable there)."""
        self.directory = Path(directory)
        self._interval = fsync_interval_s
        self._also_sync = also_sync
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()  # the list of segments; never held for an fsync
        self._sync_lock = threading.Lock()  # one sync at a time: it closes and deletes
        self._current: Segment | None = None
        self._retired: list[Segment] = []
        self._serial = 0
        self._stem = f"journal-{time.time_ns():x}-{os.getpid()}"
        self._retry_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failing_since: datetime | None = None
        self.last_error: str | None = None

    # -- the event loop ----------------------------------------------------------------

    def append(self, record: RequestRecord) -> Segment | None:
        """Copy the record's line into the current segment; the segment to `forget` it
        from once it is committed, or None when it could not be written (it is still
        queued)."""
        line = encode(record)
        n = len(line)
        seg = self._current
        if seg is None or seg.size + n > seg.capacity:
            seg = self._next_segment(n)
            if seg is None:
                return None
        seg.mm[seg.size : seg.size + n] = line
        seg.size += n
        seg.appended += 1
        return seg

    def _next_segment(self, at_least: int) -> Segment | None:
        # about once per segment_bytes written, or for a record larger than that
        if time.monotonic() < self._retry_at:
            return None
        size = max(self._segment_bytes, at_least)
        try:
            fresh = self._open_segment(size)
        except OSError as exc:
            if size == self._segment_bytes:
                # a segment of the usual size failed: the disk is full, wait before trying
                # again; a huge record's failure must not keep the next ones out
                self._retry_at = time.monotonic() + RETRY_S
            self._failed(exc)
            return None
        with self._lock:
            if self._current is not None:
                self._retired.append(self._current)
            self._current = fresh
        if self.failing_since is not None:
            log.warning("telemetry journal in %s writable again", self.directory)
            self.failing_since = None
            self.last_error = None
        return fresh

    def _failed(self, exc: OSError) -> None:
        if self.failing_since is None:
            self.failing_since = datetime.now(UTC)
            log.error(
                "telemetry journal in %s not writable (%s: %s); records are only queued",
                self.directory,
                type(exc).__name__,
                exc.strerror,
            )
        self.last_error = f"{type(exc).__name__} ({exc.strerror})"

    # -- the writer thread -------------------------------------------------------------

    def forget(self, segments: Iterable[Segment | None]) -> None:
        """These records are committed (or spilled): their segments may go. Called by
        one thread at a time (the writer, or stop() once the writer has finished)."""
        for seg in segments:
            if seg is not None:
                seg.forgotten += 1

    def orphans(self) -> list[Path]:
        """Segments no live process holds: left by a process that died."""
        if not self.directory.is_dir():
            return []
        with self._lock:
            own = {s.path for s in (self._current, *self._retired) if s is not None}
        out: list[Path] = []
        for path in sorted(self.directory.glob(PATTERN)):
            if path in own:
                continue
            with _locked(path) as got:
                if got:
                    out.append(path)
        return out

    def replay_orphan(
        self, path: Path, write: Callable[[list[RequestRecord]], int], size: int
    ) -> int:
        """Pass an orphaned segment's records to `write`, then delete it; if `write` raises,
        the segment stays for the next attempt. Another process replaying it is skipped."""
        written = 0
        with _locked(path) as got:
            if not got:
                return 0
            for batch in read_batches(path, size):
                written += write(batch)
            path.unlink(missing_ok=True)
        return written

    # -- the journal thread ------------------------------------------------------------

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._current is None:
            fresh = self._open_segment(self._segment_bytes)
            with self._lock:
                self._current = fresh
        self._thread = threading.Thread(target=self._run, name="trimtab-journal", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sync()
            except OSError as exc:
                log.error("telemetry journal sync failed: %s: %s", type(exc).__name__, exc)

    def sync(self) -> None:
        """fsync what was written, and delete segments whose records are all committed."""
        with self._sync_lock:
            with self._lock:
                cur, retired = self._current, list(self._retired)
            done = [s for s in retired if s.pending == 0]
            for seg in (*retired, cur):
                size = seg.size if seg is not None else 0
                if seg is not None and size > seg.synced:
                    # fsync writes back the pages dirtied through the mapping, like msync,
                    # and releases the GIL while it waits
                    os.fsync(seg.fd)
                    seg.synced = size
            if done:
                self._also_sync()
                for seg in done:
                    self._delete(seg)
                with self._lock:
                    self._retired = [s for s in self._retired if s not in done]

    def close(self) -> None:
        """fsync, and delete every segment whose records are all committed or spilled."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._sync_lock, self._lock:
            segments = [s for s in (*self._retired, self._current) if s is not None]
            self._current = None
            self._retired = []
        self._also_sync()
        for seg in segments:
            if seg.pending == 0:
                self._delete(seg)
            else:
                os.fsync(seg.fd)
                seg.mm.close()
                os.close(seg.fd)  # releases the lock: the next start replays it

    def size(self) -> int:
        """Bytes written to this process's segments."""
        with self._lock:
            return sum(s.size for s in (*self._retired, self._current) if s is not None)

    def _open_segment(self, capacity: int) -> Segment:
        self._serial += 1
        path = self.directory / f"{self._stem}-{self._serial:06d}.jsonl"
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # blocks reserved now: a full disk fails here, never later as a SIGBUS on a
            # page of the mapping
            os.posix_fallocate(fd, 0, capacity)
            mm = mmap.mmap(fd, capacity)
        except OSError:
            path.unlink(missing_ok=True)
            os.close(fd)
            raise
        return Segment(path, fd, mm, capacity)

    @staticmethod
    def _delete(seg: Segment) -> None:
        seg.path.unlink(missing_ok=True)  # while still locked: no one replays it meanwhile
        seg.mm.close()
        os.close(seg.fd)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on the file if nobody else does; yields whether it was taken."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        # the owner may have deleted it between our open and our lock
        yield os.path.exists(path)
    finally:
        os.close(fd)
