"""The `slos` table: SLO declarations, applied per scope (a tenant, or "" for an admin's),
and deleted by name or by an apply that prunes what its file no longer names."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, delete, insert, select, update

from trimtab.slo.spec import SloDefinition, SuiteScope, parse_slos
from trimtab.store.engine import as_utc
from trimtab.store.tables import slos
from trimtab.types import Scope


@dataclass(frozen=True, slots=True)
class SloApplied:
    name: str
    scope: Scope
    status: Literal["created", "updated", "unchanged"]
    digest: str
    suite_scope: SuiteScope | None  # the suite its SLI reads; None: its SLI names none

    @classmethod
    def of(
        cls, d: SloDefinition, scope: Scope, status: Literal["created", "updated", "unchanged"]
    ) -> SloApplied:
        """`d` applied to `scope`, with the scope of the suite its SLI reads: an eval-score
        SLO's `suite_scope` as stored (the apply pins it), `shared` for one without a
        tenant stored without it (it can mean only the shared suite)."""
        suite_scope = None if d.sli.suite is None else d.sli.suite_scope or "shared"
        return cls(d.name, scope, status, d.digest, suite_scope)

    def view(self) -> dict[str, Any]:
        return {
            "slo": self.name,
            "tenant": self.scope or None,
            "status": self.status,
            "digest": self.digest,
            "suite_scope": self.suite_scope,
        }


@dataclass(frozen=True, slots=True)
class SloRow:
    scope: Scope
    definition: SloDefinition
    created_at: datetime
    created_by: str | None
    updated_at: datetime
    updated_by: str | None


@dataclass(frozen=True, slots=True)
class SloRemoved:
    """An SLO deleted (or, in a dry run, that would be): what it was."""

    row: SloRow
    digest: str  # as stored

    def view(self) -> dict[str, Any]:
        return {"slo": self.row.definition.name, "tenant": self.row.scope or None,
                "digest": self.digest}  # fmt: skip


OnApplied = Callable[[Connection, SloApplied], None]
OnRemoved = Callable[[Connection, SloRemoved], None]


class SloStore:
    """Reads and writes `slos`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _begin(self, conn: Connection | None) -> Iterator[Connection]:
        """`conn` (the caller's transaction), else a transaction of our own."""
        if conn is not None:
            yield conn
            return
        with self.engine.begin() as own:
            yield own

    def apply(
        self,
        definitions: Iterable[SloDefinition],
        *,
        scope: Scope,
        actor: str | None,
        on_change: OnApplied | None = None,
        now: datetime | None = None,
        conn: Connection | None = None,
    ) -> list[SloApplied]:
        """Create or replace each SLO in one transaction (all or none; `conn`'s when given);
        `on_change` runs inside it for each one that changed. SLOs the definitions do not
        name stay (`prune` deletes them)."""
        at = now or datetime.now(UTC)
        out: list[SloApplied] = []
        c = slos.c
        with self._begin(conn) as tx:
            for d in sorted(definitions, key=lambda d: d.name):
                where = (c.scope == scope) & (c.name == d.name)
                old = tx.execute(select(c.digest).where(where).with_for_update()).scalar()
                if old == d.digest:
                    out.append(SloApplied.of(d, scope, "unchanged"))
                    continue
                values = {"definition": d.to_json(), "digest": d.digest}
                if old is None:
                    tx.execute(
                        insert(slos).values(
                            scope=scope,
                            name=d.name,
                            created_at=at,
                            created_by=actor,
                            updated_at=at,
                            updated_by=actor,
                            **values,
                        )
                    )
                    result = SloApplied.of(d, scope, "created")
                else:
                    tx.execute(
                        update(slos).where(where).values(updated_at=at, updated_by=actor, **values)
                    )
                    result = SloApplied.of(d, scope, "updated")
                if on_change is not None:
                    on_change(tx, result)
                out.append(result)
        return out

    def prune(
        self,
        keep: Iterable[str],
        scope: Scope,
        *,
        on_remove: OnRemoved | None = None,
        conn: Connection | None = None,
    ) -> list[SloRemoved]:
        """Delete the SLOs of `scope` not named in `keep` (in `conn`'s transaction when
        given), `on_remove` inside it for each; what was deleted, by name."""
        kept = set(keep)
        with self._begin(conn) as tx:
            return [
                self._remove(tx, gone, on_remove)
                for gone in self._scope_rows(tx, scope)
                if gone.row.definition.name not in kept
            ]

    def plan(
        self, definitions: Iterable[SloDefinition], *, scope: Scope, prune: bool
    ) -> tuple[list[SloApplied], list[SloRemoved]]:
        """What `apply` would do, changing nothing (a dry run)."""
        with self.engine.connect() as conn:
            stored = {r.row.definition.name: r for r in self._scope_rows(conn, scope, lock=False)}
        out = []
        for d in sorted(definitions, key=lambda d: d.name):
            old = stored.get(d.name)
            status: Literal["created", "updated", "unchanged"] = (
                "created" if old is None else "unchanged" if old.digest == d.digest else "updated"
            )
            out.append(SloApplied.of(d, scope, status))
        named = {d.name for d in definitions}
        gone = [r for name, r in sorted(stored.items()) if name not in named]
        return out, gone if prune else []

    def delete(
        self,
        name: str,
        scope: Scope,
        *,
        on_remove: OnRemoved | None = None,
        conn: Connection | None = None,
    ) -> SloRemoved | None:
        """Delete one SLO of `scope` (in `conn`'s transaction when given), `on_remove`
        inside the transaction; None when `scope` has no SLO of that name."""
        with self._begin(conn) as tx:
            query = select(slos).where(slos.c.scope == scope, slos.c.name == name)
            found = tx.execute(query.with_for_update()).mappings().first()
            if found is None:
                return None
            return self._remove(tx, SloRemoved(_row(found), found["digest"]), on_remove)

    def _scope_rows(self, conn: Connection, scope: Scope, *, lock: bool = True) -> list[SloRemoved]:
        """The SLOs of `scope` by name, each with its stored digest (locked for a change)."""
        query = select(slos).where(slos.c.scope == scope).order_by(slos.c.name)
        rows = conn.execute(query.with_for_update() if lock else query).mappings().all()
        return [SloRemoved(_row(r), r["digest"]) for r in rows]

    def _remove(
        self, conn: Connection, gone: SloRemoved, on_remove: OnRemoved | None
    ) -> SloRemoved:
        c = slos.c
        name = gone.row.definition.name
        conn.execute(delete(slos).where(c.scope == gone.row.scope, c.name == name))
        if on_remove is not None:
            on_remove(conn, gone)
        return gone

    def listed(self, scope: Scope | None) -> list[SloRow]:
        """The SLOs of one scope (None: every scope), by name."""
        query = select(slos).order_by(slos.c.name, slos.c.scope)
        if scope is not None:
            query = query.where(slos.c.scope == scope)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_row(r) for r in rows]

    def get(self, name: str, scope: Scope | None) -> SloRow | None:
        """One SLO by name in `scope` (None: any scope, the shared one first)."""
        found = [r for r in self._named(name) if scope is None or r.scope == scope]
        return found[0] if found else None

    def _named(self, name: str) -> list[SloRow]:
        query = select(slos).where(slos.c.name == name).order_by(slos.c.scope)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query).mappings().all()]


def _row(r: Any) -> SloRow:
    (definition,) = parse_slos({"slos": {r["name"]: r["definition"]}}, f"stored SLO {r['name']}")
    return SloRow(
        r["scope"],
        definition,
        as_utc(r["created_at"]),
        r["created_by"],
        as_utc(r["updated_at"]),
        r["updated_by"],
    )
