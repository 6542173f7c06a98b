"""SLO declarations in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Engine

from trimtab.slo.spec import load_slos
from trimtab.slo.store import SloApplied, SloStore

FILE = """
slos:
  avail: {route: support, sli: {kind: availability}, objective: 0.999}
  fast: {route: support, sli: {kind: latency, threshold_ms: 2000}, objective: 0.95}
"""


def test_apply_creates_updates_and_leaves_unchanged(engine: Engine) -> None:
    store = SloStore(engine)
    seen: list[SloApplied] = []

    def on_change(conn: Connection, result: SloApplied) -> None:
        seen.append(result)

    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    first = store.apply(load_slos(FILE), scope="acme", actor="ann", on_change=on_change, now=t0)
    assert [(r.name, r.status) for r in first] == [("avail", "created"), ("fast", "created")]
    changed = FILE.replace("0.95", "0.9")
    t1 = datetime(2026, 12, 2, tzinfo=UTC)
    second = store.apply(load_slos(changed), scope="acme", actor="bob", on_change=on_change, now=t1)
    assert [(r.name, r.status) for r in second] == [("avail", "unchanged"), ("fast", "updated")]
    assert [r.status for r in seen] == ["created", "created", "updated"]  # changes only
    store.apply(load_slos(FILE), scope="", actor="root")  # the same names, shared
    rows = store.listed("acme")
    assert [r.definition.name for r in rows] == ["avail", "fast"]
    fast = rows[1]
    assert fast.definition.objective == 0.9
    assert (fast.created_at, fast.created_by, fast.updated_at, fast.updated_by) == (
        t0,
        "ann",
        t1,
        "bob",
    )
    assert len(store.listed(None)) == 4
    got = store.get("fast", "")
    assert got is not None and got.scope == "" and got.definition.objective == 0.95
    assert store.get("nope", None) is None
