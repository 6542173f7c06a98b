"""What the writer thread writes to: a sink for batches of request records.

`TelemetryStore` (the SQL tables, telemetry/store.py) is the one in use; a columnar backend
implements the same method. The recorder relies on this contract and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from trimtab.telemetry.record import RequestRecord


class TelemetrySink(Protocol):
    """Durable storage of request records and their per-minute rollups."""

    def write(self, records: Sequence[RequestRecord], *, skip_existing: bool = False) -> int:
        """Store the records and fold them into the rollups, all or nothing; return how many
        were new.

        Called from the writer thread only, one batch at a time. Raising leaves nothing
        stored: the recorder retries the batch, then spills it and replays it later with
        `skip_existing`, which must drop a record whose id is already stored (neither
        written nor counted again) so that a replay is idempotent.
        """
        ...
