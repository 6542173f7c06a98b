"""Deleting SLOs in the store, on SQLite and PostgreSQL: by name and by prune, per scope,
inside the caller's transaction (rolled back with it), and the dry run's plan."""

from __future__ import annotations

from sqlalchemy import Connection, Engine

from trimtab.slo.spec import load_slos
from trimtab.slo.store import SloRemoved, SloStore

FILE = """
slos:
  a:
    route: support
    sli: {kind: availability}
    objective: 0.99
  b:
    route: support
    sli: {kind: latency, threshold_ms: 500}
    objective: 0.9
  c:
    model: gpt-4o
    sli: {kind: availability}
    objective: 0.999
"""
ONLY_A = FILE[: FILE.index("  b:")]


def names(store: SloStore, scope: str | None) -> list[tuple[str, str]]:
    return [(r.scope, r.definition.name) for r in store.listed(scope)]


def test_delete_by_name_in_its_scope_only(engine: Engine) -> None:
    store = SloStore(engine)
    store.apply(load_slos(FILE), scope="acme", actor="ann")
    store.apply(load_slos(FILE), scope="", actor="root")
    seen: list[str] = []

    def on_remove(conn: Connection, gone: SloRemoved) -> None:
        seen.append(gone.row.definition.name)

    gone = store.delete("b", "acme", on_remove=on_remove)
    assert gone is not None and gone.view() == {
        "slo": "b",
        "tenant": "acme",
        "digest": load_slos(FILE)[1].digest,
    }
    assert seen == ["b"]
    assert store.delete("b", "acme") is None  # gone already
    assert store.delete("b", "globex") is None  # another scope has none
    assert names(store, "acme") == [("acme", "a"), ("acme", "c")]
    assert names(store, "") == [("", "a"), ("", "b"), ("", "c")]


def test_prune_keeps_the_named_and_other_scopes(engine: Engine) -> None:
    store = SloStore(engine)
    store.apply(load_slos(FILE), scope="acme", actor="ann")
    store.apply(load_slos(FILE), scope="", actor="root")
    applied, planned = store.plan(load_slos(ONLY_A), scope="acme", prune=True)
    assert [(a.name, a.status) for a in applied] == [("a", "unchanged")]
    assert [p.row.definition.name for p in planned] == ["b", "c"]
    assert store.plan(load_slos(ONLY_A), scope="acme", prune=False)[1] == []
    assert len(names(store, "acme")) == 3  # planning changes nothing

    gone = store.prune(["a"], "acme")
    assert [g.row.definition.name for g in gone] == ["b", "c"]
    assert names(store, "acme") == [("acme", "a")]
    assert len(names(store, "")) == 3
    assert store.prune(["a"], "acme") == []


def test_a_deletion_rolls_back_with_its_transaction(engine: Engine) -> None:
    """The caller's transaction holds the deletion: a failure after it (its audit row, its
    alerts) leaves the SLO in place."""
    store = SloStore(engine)
    store.apply(load_slos(FILE), scope="acme", actor="ann")
    try:
        with engine.begin() as conn:
            assert store.delete("a", "acme", conn=conn) is not None
            assert store.prune(["a"], "acme", conn=conn)  # b and c
            raise RuntimeError("the audit row could not be written")
    except RuntimeError:
        pass
    assert names(store, "acme") == [("acme", "a"), ("acme", "b"), ("acme", "c")]
