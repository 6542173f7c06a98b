"""The write-ahead journal: every queued record is on local disk before its response ends.

The event loop `write()`s each record's line to the current segment (a few microseconds:
the bytes go to the OS page cache), so a process killed with SIGKILL loses nothing the
OS had accepted. A journal thread fsyncs every `fsync_interval_s`, which bounds what a
machine crash can lose, rotates segments and deletes those whose records have all been
committed to the store (or spilled). Each live segment holds an exclusive `flock`, so a
segment whose lock can be taken belongs to a process that has died: `orphans()` are what
a later start (or this process, once the store is back) replays, without duplicates.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
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
SEGMENT_BYTES = 16 * 1024 * 1024  # rotate past this size, so committed records free disk
PATTERN = "journal-*.jsonl"


@dataclass(eq=False)
class Segment:
    path: Path
    fd: int
    size: int = 0
    pending: int = 0  # records written here and not yet committed or spilled
    torn: bool = False  # a write failed, maybe halfway: the next line starts on a new one


class Journal:
    """Segments of JSON lines in one directory; one process writes each segment."""

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
        self._segment_bytes = segment_bytes
        self._interval = fsync_interval_s
        self._also_sync = also_sync
        self._lock = threading.Lock()  # the segments' state; held for a write(), never an fsync
        self._sync_lock = threading.Lock()  # one sync at a time: it closes and deletes fds
        self._current: Segment | None = None
        self._retired: list[Segment] = []
        self._dirty = False
        self._serial = 0
        self._stem = f"journal-{time.time_ns():x}-{os.getpid()}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failing_since: datetime | None = None
        self.last_error: str | None = None

    # -- the event loop ----------------------------------------------------------------

    def append(self, record: RequestRecord) -> Segment | None:
        """Write the record's line; the segment to `forget` it from once it is committed,
        or None when it could not be written (the record is still queued)."""
        line = encode(record)
        with self._lock:
            seg = self._current
            try:
                if seg is None:
                    seg = self._current = self._open_segment()
                _write_all(seg.fd, b"\n" + line if seg.torn else line)
            except OSError as exc:
                if seg is not None:
                    seg.torn = True
                self._failed(exc)
                return None
            seg.torn = False
            seg.size += len(line)
            seg.pending += 1
            self._dirty = True
        if self.failing_since is not None:
            self._recovered()
        return seg

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

    def _recovered(self) -> None:
        log.warning("telemetry journal in %s writable again", self.directory)
        self.failing_since = None
        self.last_error = None

    # -- the writer thread -------------------------------------------------------------

    def forget(self, segments: Iterable[Segment | None]) -> None:
        """These records are committed (or spilled): their segments may go."""
        with self._lock:
            for seg in segments:
                if seg is not None:
                    seg.pending -= 1

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
        with self._lock:
            if self._current is None:
                self._current = self._open_segment()
        self._thread = threading.Thread(target=self._run, name="trimtab-journal", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sync()
            except OSError as exc:
                log.error("telemetry journal sync failed: %s: %s", type(exc).__name__, exc)

    def sync(self) -> None:
        """fsync what was written, rotate a full segment, delete committed ones."""
        with self._sync_lock:
            self._sync()

    def _sync(self) -> None:
        with self._lock:
            cur, dirty, self._dirty = self._current, self._dirty, False
            done = [s for s in self._retired if s.pending == 0]
        if cur is not None and dirty:
            os.fsync(cur.fd)
        if cur is not None and cur.size >= self._segment_bytes:
            fresh = self._open_segment()
            with self._lock:
                self._current = fresh
                self._retired.append(cur)
                self._dirty = True  # cur may have taken lines since its fsync
            os.fsync(cur.fd)
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
                os.close(seg.fd)  # releases the lock: the next start replays it

    def size(self) -> int:
        """Bytes held in this process's segments."""
        with self._lock:
            return sum(s.size for s in (*self._retired, self._current) if s is not None)

    def _open_segment(self) -> Segment:
        self._serial += 1
        path = self.directory / f"{self._stem}-{self._serial:06d}.jsonl"
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return Segment(path, fd)

    @staticmethod
    def _delete(seg: Segment) -> None:
        seg.path.unlink(missing_ok=True)  # while still locked: no one replays it meanwhile
        os.close(seg.fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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
