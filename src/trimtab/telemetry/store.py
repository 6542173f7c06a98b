"""Write request records and their rollups; read rollups back."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from trimtab.store.engine import as_utc
from trimtab.store.tables import ROLLUP_DIMENSIONS, requests, rollups
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.rollups import Rollup, RollupKey, fold
from trimtab.telemetry.sketch import from_bytes, to_bytes

# PostgreSQL refuses NUL in text; a client can send one (a "\u0000" in a model name, a
# tag, a body), and one such record would fail its whole batch, and its replay, for ever
_TEXT_FIELDS = tuple(
    f.name for f in dataclasses.fields(RequestRecord) if f.type in ("str", "str | None")
)


def storable(record: RequestRecord) -> RequestRecord:
    """`record`, or a copy whose text fields hold U+FFFD where they held NUL."""
    copy: RequestRecord | None = None
    for name in _TEXT_FIELDS:
        value = getattr(record, name)
        if type(value) is str and "\x00" in value:
            copy = copy or dataclasses.replace(record)
            setattr(copy, name, value.replace("\x00", "\ufffd"))
    return copy or record


def to_row(record: RequestRecord) -> dict[str, Any]:
    started = datetime.fromtimestamp(record.started_at, UTC)
    ended = datetime.fromtimestamp(record.started_at + record.duration_ms / 1000, UTC)
    return {
        "id": record.id,
        "started_at": started,
        "ended_at": ended,
        "api": record.api,
        "operation": record.operation,
        "tenant": record.tenant,
        "key_id": record.key_id,
        "request_model": record.request_model,
        "response_model": record.response_model,
        "upstream_model": record.upstream_model,
        "provider": record.provider,
        "provider_kind": record.provider_kind,
        "response_id": record.response_id,
        "user_id": record.user,
        "session_id": record.session,
        "feature": record.feature,
        "route": record.route,
        "version": record.version,
        "status_code": record.status_code,
        "error_type": record.error_type,
        "error_message": record.error_message,
        "duration_ms": record.duration_ms,
        "ttft_ms": record.ttft_ms,
        "overhead_ms": record.overhead_ms,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cost_usd": record.cost_usd,
        "streamed": record.streamed,
        "finish_reasons": record.finish_reasons,
        "request_body": record.request_body,
        "upstream_request_body": record.upstream_request_body,
        "response_body": record.response_body,
        "attributes": record.attributes,
    }


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
            conn.execute(insert(requests), [to_row(r) for r in records])
            for key, delta in sorted(fold(records).items(), key=lambda kv: kv[0]):
                _merge_rollup(conn, key, delta)
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
    )


def _merge_rollup(conn: Connection, key: RollupKey, delta: Rollup) -> None:
    dims = dict(zip(("minute", *ROLLUP_DIMENSIONS), key, strict=True))
    # insert an empty row if none exists, then lock it and merge: safe with several writers
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    empty = Rollup()
    conn.execute(
        dialect_insert(rollups)
        .values(
            **dims,
            count=0,
            errors=0,
            input_tokens=0,
            output_tokens=0,
            cost_usd=0.0,
            latency_sketch=to_bytes(empty.latency),
            ttft_sketch=to_bytes(empty.ttft),
        )
        .on_conflict_do_nothing()
    )
    where = [rollups.c[name] == value for name, value in dims.items()]
    row = conn.execute(select(rollups).where(*where).with_for_update()).mappings().one()
    current = _rollup_of(row)
    current.merge(delta)
    conn.execute(
        update(rollups)
        .where(rollups.c.id == row["id"])
        .values(
            count=current.count,
            errors=current.errors,
            input_tokens=current.input_tokens,
            output_tokens=current.output_tokens,
            cost_usd=current.cost_usd,
            latency_sketch=to_bytes(current.latency),
            ttft_sketch=to_bytes(current.ttft),
        )
    )
