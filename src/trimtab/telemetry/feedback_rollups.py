"""A request's first negative feedback in the rollups: one more request with negative
feedback in its minute row (`negative_feedback`, the negative-feedback SLI's;
docs/slos.md), its hour and day marked for the compaction as the writer marks them.
Called by rollouts/feedback.py inside the transaction that stores the feedback: the
rollups are telemetry's to write."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, update

from trimtab.store.engine import as_utc
from trimtab.store.tables import rollups
from trimtab.telemetry.hourly import mark_dirty

# the request's columns the rollup key is made of (telemetry/rollups.key_of)
KEY_COLUMNS = (
    "started_at", "request_model", "provider", "tenant", "feature", "status_code", "route",
    "version",
)  # fmt: skip


def count_negative_feedback(conn: Connection, request: Any) -> bool:
    """Add one to the `negative_feedback` of `request`'s rollup row (`request` has the
    KEY_COLUMNS, as stored) and mark its hour and day dirty; False when the row is gone
    (retention deleted it), which is left deleted."""
    minute = as_utc(request.started_at).replace(second=0, microsecond=0)
    m = rollups.c
    changed = conn.execute(
        update(rollups)
        .where(
            m.minute == minute,
            m.model == (request.request_model or ""),
            m.provider == (request.provider or ""),
            m.tenant == request.tenant,
            m.feature == (request.feature or ""),
            m.status_code == request.status_code,
            m.route == (request.route or ""),
            m.version == (request.version or ""),
        )
        .values(negative_feedback=m.negative_feedback + 1)
    ).rowcount
    if changed:
        mark_dirty(conn, [minute])
    return bool(changed)
