"""The `slos` table: SLO declarations, applied per scope (a tenant, or "" for an admin's)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, insert, select, update

from trimtab.slo.spec import SloDefinition, parse_slos
from trimtab.store.engine import as_utc
from trimtab.store.tables import slos
from trimtab.types import Scope


@dataclass(frozen=True, slots=True)
class SloApplied:
    name: str
    scope: Scope
    status: Literal["created", "updated", "unchanged"]
    digest: str

    def view(self) -> dict[str, Any]:
        return {
            "slo": self.name,
            "tenant": self.scope or None,
            "status": self.status,
            "digest": self.digest,
        }


@dataclass(frozen=True, slots=True)
class SloRow:
    scope: Scope
    definition: SloDefinition
    created_at: datetime
    created_by: str | None
    updated_at: datetime
    updated_by: str | None


OnApplied = Callable[[Connection, SloApplied], None]


class SloStore:
    """Reads and writes `slos`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def apply(
        self,
        definitions: Iterable[SloDefinition],
        *,
        scope: Scope,
        actor: str | None,
        on_change: OnApplied | None = None,
        now: datetime | None = None,
    ) -> list[SloApplied]:
        """Create or replace each SLO in one transaction (all or none); `on_change` runs
        inside it for each one that changed. SLOs the file does not name stay."""
        at = now or datetime.now(UTC)
        out: list[SloApplied] = []
        c = slos.c
        with self.engine.begin() as conn:
            for d in sorted(definitions, key=lambda d: d.name):
                where = (c.scope == scope) & (c.name == d.name)
                old = conn.execute(select(c.digest).where(where).with_for_update()).scalar()
                if old == d.digest:
                    out.append(SloApplied(d.name, scope, "unchanged", d.digest))
                    continue
                values = {"definition": d.to_json(), "digest": d.digest}
                if old is None:
                    conn.execute(
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
                    result = SloApplied(d.name, scope, "created", d.digest)
                else:
                    conn.execute(
                        update(slos).where(where).values(updated_at=at, updated_by=actor, **values)
                    )
                    result = SloApplied(d.name, scope, "updated", d.digest)
                if on_change is not None:
                    on_change(conn, result)
                out.append(result)
        return out

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
