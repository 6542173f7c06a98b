"""The overflow file: records that could not be queued or written, replayed at start."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

from trimtab.telemetry.record import RequestRecord

log = logging.getLogger("trimtab.telemetry")


class SpillFile:
    """An append-only JSON-lines file; appends are flushed to the OS before returning."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._fh: BinaryIO | None = None
        self.appended = 0

    def append(self, records: Iterable[RequestRecord]) -> int:
        data = b"".join(orjson.dumps(r.to_dict()) + b"\n" for r in records)
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
        batch: list[RequestRecord] = []
        with open(self.path, "rb") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    batch.append(RequestRecord.from_dict(orjson.loads(line)))
                except (orjson.JSONDecodeError, TypeError) as exc:
                    log.error(
                        "spill file %s line %d unreadable, skipped: %s", self.path, number, exc
                    )
                    continue
                if len(batch) >= size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def clear(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
            self.path.unlink(missing_ok=True)
