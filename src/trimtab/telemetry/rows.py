"""A request record as a row of the `requests` table, inserted as plain tuples.

The writer inserts rows through the database driver's executemany with one tuple per
record (psycopg: a dict), the values already in the form the driver takes: SQLAlchemy's executemany
builds a parameter dict per row and runs a processor per typed column, which cost about
as much as SQLite's own insert of the row (bench/writer_cost.py). The values are the ones
SQLAlchemy would bind (tests/telemetry/test_rows.py reads them back through the table):
on SQLite a datetime is its `YYYY-MM-DD HH:MM:SS.ffffff` text and a boolean 0 or 1; JSON
columns hold the value's JSON text (`null` for None, as SQLAlchemy writes it), written by
orjson, which the journal already used for the same record; PostgreSQL takes the text
for a `json` column (psycopg sends a str untyped). The statement is SQLAlchemy's
`insert(requests)`, compiled once per dialect.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, insert

from trimtab.store.tables import requests
from trimtab.telemetry.record import RequestRecord

# PostgreSQL refuses NUL in text; a client can send one (a "\u0000" in a model name, a
# tag, a body), and one such record would fail its whole batch, and its replay, for ever
_TEXT_FIELDS = tuple(
    f.name for f in dataclasses.fields(RequestRecord) if f.type in ("str", "str | None")
)

# the table's columns, in the order `_values` gives them (a table that gained or lost
# one fails every insert; tests/telemetry/test_rows.py reads each back)
COLUMNS = tuple(c.name for c in requests.c)


def storable(record: RequestRecord) -> RequestRecord:
    """`record`, or a copy whose text fields hold U+FFFD where they held NUL."""
    copy: RequestRecord | None = None
    for name in _TEXT_FIELDS:
        value = getattr(record, name)
        if type(value) is str and "\x00" in value:
            copy = copy or dataclasses.replace(record)
            setattr(copy, name, value.replace("\x00", "\ufffd"))
    return copy or record


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _sqlite_time(at: datetime) -> str:
    # SQLAlchemy's SQLite DATETIME text; the zone is dropped (everything stored is UTC)
    return at.replace(tzinfo=None).isoformat(" ", "microseconds")


def _values(record: RequestRecord, when: Callable[[datetime], Any]) -> tuple[Any, ...]:
    started = datetime.fromtimestamp(record.started_at, UTC)
    ended = datetime.fromtimestamp(record.started_at + record.duration_ms / 1000, UTC)
    r = record
    return (
        r.id,
        when(started),
        when(ended),
        r.api,
        r.operation,
        r.tenant,
        r.key_id,
        r.request_model,
        r.response_model,
        r.upstream_model,
        r.provider,
        r.provider_kind,
        r.response_id,
        r.user,
        r.session,
        r.feature,
        r.route,
        r.version,
        r.status_code,
        r.error_type,
        r.error_message,
        r.duration_ms,
        r.ttft_ms,
        r.overhead_ms,
        r.input_tokens,
        r.output_tokens,
        r.cost_usd,
        r.streamed,
        _json(r.finish_reasons),
        r.request_body,
        r.upstream_request_body,
        r.response_body,
        _json(r.attributes),
    )


@dataclass(frozen=True, slots=True)
class _Insert:
    """`insert(requests)` compiled once for a dialect, and the order its parameters take."""

    sql: str
    named: bool  # psycopg's %(name)s: a dict per row; SQLite's ?: a tuple in COLUMNS order

    @classmethod
    def of(cls, conn: Connection) -> _Insert:
        compiled = insert(requests).compile(dialect=conn.dialect, column_keys=list(COLUMNS))
        if compiled.positional and tuple(compiled.positiontup or ()) != COLUMNS:
            raise RuntimeError("the compiled insert does not take the columns in table order")
        return cls(str(compiled), not compiled.positional)


_INSERTS: dict[str, _Insert] = {}


def insert_rows(conn: Connection, records: Sequence[RequestRecord]) -> None:
    """Insert the records' rows in the connection's transaction (they are `storable`)."""
    dialect = conn.dialect.name
    prepared = _INSERTS.get(dialect)
    if prepared is None:
        prepared = _INSERTS[dialect] = _Insert.of(conn)
    when: Callable[[datetime], Any] = _sqlite_time if dialect == "sqlite" else _as_is
    rows: list[Any] = [_values(r, when) for r in records]
    if prepared.named:
        rows = [dict(zip(COLUMNS, row, strict=True)) for row in rows]
    conn.exec_driver_sql(prepared.sql, rows)


def _as_is(at: datetime) -> datetime:
    return at
