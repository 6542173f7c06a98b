"""Write request records and their rollups; read rollups back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ddsketch import DDSketch
from sqlalchemy import Connection, Engine, bindparam, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from trimtab.store.engine import as_utc
from trimtab.store.tables import ROLLUP_DIMENSIONS, requests, rollups
from trimtab.telemetry.hourly import mark_dirty
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.rollups import Rollup, RollupKey, fold
from trimtab.telemetry.rows import insert_rows, storable
from trimtab.telemetry.session_costs import merge_session_costs
from trimtab.telemetry.sessions import merged_bytes, sessions_of
from trimtab.telemetry.sessions import to_bytes as sessions_bytes
from trimtab.telemetry.sketch import from_bytes, new_sketch, to_bytes


class TelemetryStore:
    """The requests table and the per-minute rollups, written in one transaction.

    The `TelemetrySink` the recorder writes to (telemetry/sink.py).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def write(self, records: Sequence[RequestRecord], *, skip_existing: bool = False) -> int:
        """Insert records and fold them into rollups; returns how many rows were new.

        `skip_existing` makes a replay idempotent: a record already stored (the process
        died after committing but before forgetting it) is neither inserted nor counted.
        """
        if not records:
            return 0
        with self.engine.begin() as conn:
            if skip_existing:
                ids = [r.id for r in records]
                present: set[str] = set()
                for i in range(0, len(ids), 500):
                    chunk = ids[i : i + 500]
                    present.update(
                        conn.scalars(select(requests.c.id).where(requests.c.id.in_(chunk)))
                    )
                unique: dict[str, RequestRecord] = {}
                for r in records:
                    if r.id not in present:
                        unique.setdefault(r.id, r)
                records = list(unique.values())
                if not records:
                    return 0
            records = [storable(r) for r in records]
            insert_rows(conn, records)
            folded = fold(records)
            for key, delta in sorted(folded.items(), key=lambda kv: kv[0]):
                _merge_rollup(conn, key, delta)
            mark_dirty(conn, {key[0] for key in folded})  # the hourly rollups' marks
            merge_session_costs(conn, records)  # the cost-per-session SLI's rows
        return len(records)

    def rollups_since(self, since: datetime, tenant: str | None) -> list[tuple[RollupKey, Rollup]]:
        """Rollup rows from `since` on (optionally of one tenant)."""
        query = select(rollups).where(rollups.c.minute >= since)
        if tenant is not None:
            query = query.where(rollups.c.tenant == tenant)
        out: list[tuple[RollupKey, Rollup]] = []
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                key: RollupKey = (
                    as_utc(row["minute"]),
                    row["model"],
                    row["provider"],
                    row["tenant"],
                    row["feature"],
                    row["status_code"],
                    row["route"],
                    row["version"],
                )
                out.append((key, _rollup_of(row)))
        return out


def _rollup_of(row: Any) -> Rollup:
    return Rollup(
        count=row["count"],
        errors=row["errors"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cost_usd=row["cost_usd"],
        latency=from_bytes(row["latency_sketch"]),
        ttft=from_bytes(row["ttft_sketch"]),
        guardrail_fired=row["guardrail_fired"],
        cost=new_sketch() if row["cost_sketch"] is None else from_bytes(row["cost_sketch"]),
        sessions=sessions_of(row["sessions_sketch"]),
        session_requests=row["session_requests"],
        session_cost_usd=row["session_cost_usd"],
        refused=row["refused"] or 0,  # NULL: a row from before migration 0017
    )


# built once: building a statement per call cost more than running it (measured with
# bench/writer_cost.py); each call reuses its cached compiled form with new parameters
_DIMS = ("minute", *ROLLUP_DIMENSIONS)
_LOCK_ROLLUP = (
    select(
        rollups.c.id,
        rollups.c.count,
        rollups.c.errors,
        rollups.c.input_tokens,
        rollups.c.output_tokens,
        rollups.c.cost_usd,
        rollups.c.latency_sketch,
        rollups.c.ttft_sketch,
        rollups.c.guardrail_fired,
        rollups.c.cost_sketch,
        rollups.c.sessions_sketch,
        rollups.c.session_requests,
        rollups.c.session_cost_usd,
        rollups.c.refused,
    )
    .where(*(rollups.c[name] == bindparam(name) for name in _DIMS))
    .with_for_update()
)
_UPDATE_ROLLUP = (
    update(rollups)
    .where(rollups.c.id == bindparam("row_id"))
    .values(
        count=bindparam("new_count"),
        errors=bindparam("new_errors"),
        input_tokens=bindparam("new_input_tokens"),
        output_tokens=bindparam("new_output_tokens"),
        cost_usd=bindparam("new_cost_usd"),
        latency_sketch=bindparam("new_latency_sketch"),
        ttft_sketch=bindparam("new_ttft_sketch"),
        guardrail_fired=bindparam("new_guardrail_fired"),
        cost_sketch=bindparam("new_cost_sketch"),
        sessions_sketch=bindparam("new_sessions_sketch"),
        session_requests=bindparam("new_session_requests"),
        session_cost_usd=bindparam("new_session_cost_usd"),
        refused=bindparam("new_refused"),
    )
)
# whether the insert made a row: RETURNING on PostgreSQL (its rowcount here is -1); on
# SQLite the row count (RETURNING needs SQLite 3.35)
_INSERT_ROLLUP_PG = postgresql.insert(rollups).on_conflict_do_nothing().returning(rollups.c.id)
_INSERT_ROLLUP_SQLITE = sqlite.insert(rollups).on_conflict_do_nothing()


def _inserted(conn: Connection, row: dict[str, Any]) -> bool:
    if conn.dialect.name == "postgresql":
        return conn.execute(_INSERT_ROLLUP_PG, row).first() is not None
    return conn.execute(_INSERT_ROLLUP_SQLITE, row).rowcount == 1


def _merge_rollup(conn: Connection, key: RollupKey, delta: Rollup) -> None:
    """Add `delta` to the key's row, creating it if there is none; safe with several writers.

    The row is locked while read and rewritten (SELECT ... FOR UPDATE on PostgreSQL; on
    SQLite the transaction already holds the database's write lock: its rows were
    inserted first). A row another writer inserted between the lookup and the insert
    makes the insert do nothing; the row is then locked and merged like any other."""
    dims = dict(zip(_DIMS, key, strict=True))
    row = conn.execute(_LOCK_ROLLUP, dims).first()
    if row is None:
        fresh = {
            **dims,
            "count": delta.count,
            "errors": delta.errors,
            "input_tokens": delta.input_tokens,
            "output_tokens": delta.output_tokens,
            "cost_usd": delta.cost_usd,
            "latency_sketch": to_bytes(delta.latency),
            "ttft_sketch": to_bytes(delta.ttft),
            "guardrail_fired": delta.guardrail_fired,
            "cost_sketch": to_bytes(delta.cost),
            "sessions_sketch": None if delta.sessions is None else sessions_bytes(delta.sessions),
            "session_requests": delta.session_requests,
            "session_cost_usd": delta.session_cost_usd,
            "refused": delta.refused,
        }
        if _inserted(conn, fresh):
            return
        row = conn.execute(_LOCK_ROLLUP, dims).one()
    row_id, count, errors, input_tokens, output_tokens, cost_usd, latency, ttft, fired, *more = row
    costs, sessions, session_requests, session_cost_usd, refused = more
    conn.execute(
        _UPDATE_ROLLUP,
        {
            "row_id": row_id,
            "new_count": count + delta.count,
            "new_errors": errors + delta.errors,
            "new_input_tokens": input_tokens + delta.input_tokens,
            "new_output_tokens": output_tokens + delta.output_tokens,
            "new_cost_usd": cost_usd + delta.cost_usd,
            "new_latency_sketch": _merged(latency, delta.latency),
            "new_ttft_sketch": _merged(ttft, delta.ttft),
            "new_guardrail_fired": fired + delta.guardrail_fired,
            # a row from before migration 0015 holds no cost sketch: it starts with the delta
            "new_cost_sketch": to_bytes(delta.cost)
            if costs is None
            else _merged(costs, delta.cost),
            "new_sessions_sketch": merged_bytes(sessions, delta.sessions),
            "new_session_requests": session_requests + delta.session_requests,
            "new_session_cost_usd": session_cost_usd + delta.session_cost_usd,
            # a row from before migration 0017 stays NULL: its earlier requests were not
            # counted, so the refusal SLI takes the row in neither count
            "new_refused": None if refused is None else refused + delta.refused,
        },
    )


def _merged(stored: bytes, delta: DDSketch) -> bytes:
    """The stored sketch with `delta` merged in; as stored when `delta` is empty (the
    time-to-first-token sketch of requests that did not stream)."""
    if not delta.count:
        return stored
    sketch = from_bytes(stored)
    sketch.merge(delta)
    return to_bytes(sketch)
