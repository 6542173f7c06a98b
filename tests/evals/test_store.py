"""Datasets in a real store (SQLite and PostgreSQL): content-addressed versions, items
stored once, per-tenant names, and the push atomic with its audit row."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError

from tests.audit.support import accept_audit_rows, refuse_audit_rows
from trimtab.audit.log import Actor
from trimtab.errors import NotFound
from trimtab.evals.datasets import Item
from trimtab.evals.store import DatasetKey, DatasetStore
from trimtab.store.tables import audit_log, dataset_items, dataset_versions
from trimtab.types import SHARED

ML = Actor(key_id="key_ml", owner="ml@acme", tenant="acme")
GOLDEN = DatasetKey("acme", "golden")


def items(*questions: str, expected: str = "yes") -> list[Item]:
    return [Item(f"q{i}", {"q": q}, expected=expected) for i, q in enumerate(questions)]


def count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


def test_versions_only_on_change(engine: Engine) -> None:
    store = DatasetStore(engine)
    first = store.push(GOLDEN, items("a", "b"), message="start", actor=ML)
    assert (first.created, first.version.number, first.version.items) == (True, 1, 2)
    again = store.push(GOLDEN, items("a", "b"), message="again", actor=ML)
    assert (again.created, again.version.number) == (False, 1)
    second = store.push(GOLDEN, items("a", "b", "c"), message="one more", actor=ML)
    assert (second.created, second.version.number, second.version.author) == (True, 2, "ml@acme")
    # back to the first content: that version, not a third
    back = store.push(GOLDEN, items("a", "b"), message="revert", actor=ML)
    assert (back.created, back.version.number) == (False, 1)
    assert [v.number for v in store.versions(GOLDEN)] == [1, 2]
    assert store.version(GOLDEN, None).number == 2
    assert [i.id for i in store.items(GOLDEN, 2)] == ["q0", "q1", "q2"]
    assert store.items(GOLDEN, 1) == items("a", "b")


def test_an_items_content_is_stored_once(engine: Engine) -> None:
    store = DatasetStore(engine)
    store.push(GOLDEN, items("a", "b"), message="m", actor=ML)
    store.push(GOLDEN, items("a", "b", "c"), message="m", actor=ML)
    store.push(DatasetKey("globex", "other"), items("a"), message="m", actor=ML)
    assert count(engine, dataset_items) == 3


def test_names_per_tenant(engine: Engine) -> None:
    store = DatasetStore(engine)
    store.push(DatasetKey(SHARED, "safety"), items("x"), message="shared", actor=ML)
    store.push(GOLDEN, items("y"), message="own", actor=ML)
    assert store.resolve("golden", "acme") == GOLDEN
    assert store.resolve("safety", "acme") == DatasetKey(SHARED, "safety")
    with pytest.raises(NotFound, match="no dataset named 'golden'"):
        store.resolve("golden", "globex")  # another tenant's: like a missing one
    assert [v.key.name for v in store.newest("acme")] == ["golden", "safety"]
    assert [v.key.name for v in store.newest("globex")] == ["safety"]
    assert len(store.newest(None)) == 2


def test_unknown_versions(engine: Engine) -> None:
    store = DatasetStore(engine)
    store.push(GOLDEN, items("a"), message="m", actor=ML)
    with pytest.raises(NotFound, match=r"dataset 'golden' has no version 7 \(it has 1\.\.1\)"):
        store.version(GOLDEN, 7)
    with pytest.raises(NotFound, match="no dataset named 'missing'"):
        store.versions(DatasetKey("acme", "missing"))


def test_a_push_is_atomic_with_its_audit_row(engine: Engine) -> None:
    store = DatasetStore(engine)
    refuse_audit_rows(engine)
    with pytest.raises(DBAPIError, match="the audit log refuses rows"):
        store.push(GOLDEN, items("a"), message="m", actor=ML)
    assert count(engine, dataset_versions) == 0 and count(engine, dataset_items) == 0
    accept_audit_rows(engine)
    store.push(GOLDEN, items("a"), message="m", actor=ML)
    with engine.connect() as conn:
        row = conn.execute(select(audit_log)).one()
    assert (row.action, row.target, row.tenant, row.actor) == (
        "dataset.push",
        "acme/golden",
        "acme",
        "ml@acme",
    )
    assert row.detail["version"] == 1 and row.detail["items"] == 1
