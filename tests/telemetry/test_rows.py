"""Rows inserted as plain tuples read back exactly as the rows SQLAlchemy's own insert
writes (the API and every query read them through the table)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, text

from tests.telemetry.support import open_store, rec
from trimtab.store.tables import requests
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.rows import COLUMNS, insert_rows

FIELD = {"user_id": "user", "session_id": "session"}


def by_sqlalchemy(record: RequestRecord) -> dict[str, Any]:
    """The row as SQLAlchemy Core's insert writes it from a dict of values."""
    values: dict[str, Any] = {}
    for column in COLUMNS:
        if column == "started_at":
            values[column] = datetime.fromtimestamp(record.started_at, UTC)
        elif column == "ended_at":
            ended = record.started_at + record.duration_ms / 1000
            values[column] = datetime.fromtimestamp(ended, UTC)
        else:
            values[column] = getattr(record, FIELD.get(column, column))
    return values


def full(n: int, **kw: Any) -> RequestRecord:
    """A record with every field set, each to a value no other field has."""
    fields: dict[str, Any] = dict(
        key_id="key_1",
        response_model="gpt-mock-2024",
        upstream_model="mock-1",
        provider_kind="openai",
        response_id="chatcmpl-1",
        user="u1",
        session="s1",
        feature="search",
        route="support",
        version="v2",
        status_code=502,
        error_type="upstream_error",
        error_message="upstream answered 502 — ünïcode",
        ttft_ms=12.25,
        streamed=True,
        finish_reasons=["stop", "length"],
        upstream_request_body='{"model": "mock-1"}',
        response_body='{"id": "chatcmpl-1"}',
        attributes={"attempts": [{"status": 502, "error": None}], "ü": 1.5},
    )
    return rec(n, **{**fields, **kw})


def read(engine: Engine, request_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(requests).where(requests.c.id == request_id)).mappings().one()
    return {k: v for k, v in row.items() if k != "id"}


@pytest.mark.parametrize(
    "record",
    [full(1), full(2, attributes=None, finish_reasons=None, ttft_ms=None, streamed=False)],
    ids=["every-field", "nones"],
)
def test_each_column_reads_back_as_sqlalchemy_wrote_it(
    store_url: str, engines: list[Engine], record: RequestRecord
) -> None:
    """Also run against PostgreSQL through the store_url fixture."""
    store = open_store(store_url, engines)
    theirs = dataclasses.replace(record, id="req_theirs")
    with store.engine.begin() as conn:
        insert_rows(conn, [record])
        conn.execute(insert(requests), [by_sqlalchemy(theirs)])
    assert read(store.engine, record.id) == read(store.engine, theirs.id)
    # a None in a JSON column is JSON's null, as SQLAlchemy stores it, not SQL's NULL
    with store.engine.connect() as conn:
        nulls = conn.execute(
            text("SELECT count(*) FROM requests WHERE attributes IS NULL")
        ).scalar_one()
    assert nulls == 0


def test_sqlite_times_are_the_same_text(tmp_path: Path, engines: list[Engine]) -> None:
    """Cursor pages compare started_at on SQLite as text: both writers write the same."""
    store = open_store(f"sqlite:///{tmp_path}/t.db", engines)
    mine = full(3, started_at=1_700_000_000.000001)
    theirs = dataclasses.replace(mine, id="req_theirs")
    with store.engine.begin() as conn:
        insert_rows(conn, [mine])
        conn.execute(insert(requests), [by_sqlalchemy(theirs)])
    with store.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT started_at, ended_at, streamed FROM requests ORDER BY id")
        ).all()
    assert rows[0] == rows[1]
    assert rows[0][0] == "2023-11-14 22:13:20.000001"


def test_every_column_is_written(tmp_path: Path, engines: list[Engine]) -> None:
    assert tuple(c.name for c in requests.c) == COLUMNS
    store = open_store(f"sqlite:///{tmp_path}/t.db", engines)
    with store.engine.begin() as conn:
        insert_rows(conn, [full(4)])
    row = read(store.engine, full(4).id)
    assert all(value is not None for value in row.values()), row
