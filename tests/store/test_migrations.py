"""Migrations: they create the schema `store/tables/` describes, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text

from trimtab.store.engine import head_revisions, make_engine, migrate
from trimtab.store.tables import metadata, requests, rollups


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    made = make_engine(store_url)
    yield made
    made.dispose()


def schema_differences(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diffs = compare_metadata(context, metadata)
    # No filtering is needed today: with compare_type and compare_server_default on, both
    # SQLite and PostgreSQL report nothing. Should a dialect ever report pure noise (say, a
    # reflected type that is merely spelled differently), filter exactly that here and say why.
    return list(diffs)


def version_rows(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.scalars(text("SELECT version_num FROM alembic_version")))


def test_migrate_creates_the_tables(engine: Engine) -> None:
    migrate(engine)
    names = set(inspect(engine).get_table_names())
    assert {"requests", "rollups_minute", "alembic_version"} <= names
    assert version_rows(engine) == head_revisions()
    with engine.connect() as conn:
        assert conn.execute(select(requests)).all() == []
        assert conn.execute(select(rollups)).all() == []


def test_migrate_is_idempotent(engine: Engine) -> None:
    migrate(engine)
    migrate(engine)
    migrate(engine)
    assert version_rows(engine) == head_revisions()
    assert schema_differences(engine) == []


def test_migrated_schema_matches_the_metadata(engine: Engine) -> None:
    migrate(engine)
    assert schema_differences(engine) == []
    inspector = inspect(engine)
    indexes = {ix["name"] for ix in inspector.get_indexes("requests")}
    assert {"ix_requests_started", "ix_requests_tenant_started", "ix_requests_model_started"} <= (
        indexes
    )
    uniques = {uc["name"] for uc in inspector.get_unique_constraints("rollups_minute")}
    assert "uq_rollups_minute_dims" in uniques


def test_an_empty_database_differs_from_the_metadata(engine: Engine) -> None:
    """The comparison is not vacuous: before migrating, it reports the missing tables."""
    added = {d[1].name for d in schema_differences(engine) if d[0] == "add_table"}
    assert added == set(metadata.tables)


# SQLite is one process's file; several gateways starting at once is a PostgreSQL concern
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_concurrent_migrations_on_postgresql(store_url: str) -> None:
    assert store_url.startswith("postgresql://")
    engines = [make_engine(store_url) for _ in range(2)]
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def run(engine: Engine) -> None:
        try:
            barrier.wait(timeout=30)
            migrate(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        assert version_rows(engines[0]) == head_revisions()
        assert schema_differences(engines[0]) == []
    finally:
        for e in engines:
            e.dispose()
