"""The overflow file: records that could not be queued or written.

Replayed at start, and by the writer thread as soon as the store accepts writes again.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from trimtab.telemetry.lines import encode, read_batches
from trimtab.telemetry.record import RequestRecord


class SpillFile:
    """An append-only JSON-lines file; appends are flushed to the OS before returning."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._fh: BinaryIO | None = None
        self._unsynced = False
        self.appended = 0

    def append(self, records: Iterable[RequestRecord]) -> int:
        data = b"".join(encode(r) for r in records)
        if not data:
            return 0
        with self._lock:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open across appends
                if self._torn():
                    # a crash left half a line: start a fresh one so this record survives
                    self._fh.write(b"\n")
            self._fh.write(data)
            self._fh.flush()
            self._unsynced = True
            n = data.count(b"\n")
            self.appended += n
            return n

    def _torn(self) -> bool:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                return fh.read(1) != b"\n"
        except OSError:  # empty or missing: nothing torn
            return False

    def adopt(self, orphans: Iterable[Path]) -> int:
        """Append each orphan file's lines to this one, then remove the orphan: the spill
        files of processes that will not run again (`serve --workers` hands them to worker
        0 before any worker starts). A torn last line stays torn on a line of its own, and
        is skipped on replay as it would have been. Returns the bytes moved."""
        moved = 0
        with self._lock:
            for path in orphans:
                data = path.read_bytes()
                if data:
                    if not data.endswith(b"\n"):
                        data += b"\n"
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    torn = self._torn()
                    with open(self.path, "ab") as out:
                        out.write((b"\n" if torn else b"") + data)
                        out.flush()
                        os.fsync(out.fileno())
                    moved += len(data)
                path.unlink()
        return moved

    def sync(self) -> None:
        """fsync what was appended since the last call (the journal's thread calls this)."""
        with self._lock:
            if self._fh is None or not self._unsynced:
                return
            self._unsynced = False
            fd = self._fh.fileno()
            os.fsync(fd)

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.flush()
                os.fsync(self._fh.fileno())
                self._fh.close()
                self._fh = None

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def batches(self, size: int) -> Iterator[list[RequestRecord]]:
        """Read back what was spilled, in batches; a torn last line is reported and skipped."""
        if not self.path.exists():
            return
        yield from read_batches(self.path, size)

    def drain(self, write: Callable[[list[RequestRecord]], int], size: int) -> int:
        """Pass what the file holds now to `write`, batch by batch, then drop it from the file
        while appends go on; if `write` raises, the file is left as it was."""
        with self._lock:
            if self._fh is not None:
                self._fh.flush()
            end = self.size()
        if not end:
            return 0
        written = 0
        for batch in read_batches(self.path, size, end=end):
            written += write(batch)
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
            with open(self.path, "rb") as fh:
                fh.seek(end)
                rest = fh.read()  # appended while the batches were written: usually little
            if not rest:
                self.path.unlink(missing_ok=True)
                return written
            fresh = self.path.with_name(self.path.name + ".tmp")
            with open(fresh, "wb") as out:
                out.write(rest)
                out.flush()
                os.fsync(out.fileno())
            os.replace(fresh, self.path)
        return written

    def clear(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
            self.path.unlink(missing_ok=True)
