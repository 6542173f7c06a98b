"""Records as JSON lines on local disk: the one encoding the spill file and the journal share.

What a record must not carry to disk is already absent from it when it is encoded: bodies
under `record_bodies: false` were never set, and under `storage.bodies` other than `full`
the recorder writes the record without them until the writer thread has scrubbed them
(telemetry/recorder.py, privacy/storage.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import orjson

from trimtab.telemetry.record import RequestRecord

log = logging.getLogger("trimtab.telemetry")


def encode(record: RequestRecord) -> bytes:
    """One line: the record's fields as a JSON object (orjson serialises the dataclass
    directly, the same object as `record.to_dict()` in a fraction of the time)."""
    return orjson.dumps(record) + b"\n"


def read_batches(path: Path, size: int, *, end: int | None = None) -> Iterator[list[RequestRecord]]:
    """The records of a lines file (up to byte `end`, or its first zero byte), in batches;
    unreadable lines, such as one torn by a crash in the middle of an append, are reported
    and skipped."""
    batch: list[RequestRecord] = []
    with open(path, "rb") as fh:
        offset = 0
        for number, raw in enumerate(fh, 1):
            offset += len(raw)
            if end is not None and offset > end:
                break
            # a journal segment ends in zeros (JSON never holds a NUL byte: it is escaped)
            line, zero, _ = raw.partition(b"\x00")
            if zero and not line:
                break
            if not line.strip():
                continue
            try:
                batch.append(RequestRecord.from_dict(orjson.loads(line)))
            except (orjson.JSONDecodeError, TypeError) as exc:
                log.error("%s line %d unreadable, skipped: %s", path, number, exc)
                continue
            if len(batch) >= size:
                yield batch
                batch = []
    if batch:
        yield batch
