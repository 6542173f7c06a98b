"""The `eval_suites` table: suites applied with `trimtab apply` (an `evals:` section), per
scope (a tenant, or "" for an admin's), replaced by a new apply like SLOs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from sqlalchemy import Connection, Engine, insert, select, update

from trimtab.evals.suites import SuiteDefinition, parse_suites
from trimtab.store.engine import as_utc
from trimtab.store.tables import eval_suites
from trimtab.types import Scope


def suite_digest(definition: SuiteDefinition) -> str:
    """SHA-256 of the suite's canonical JSON: an unchanged suite applies as `unchanged`."""
    body = orjson.dumps(definition.to_json(), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True, slots=True)
class SuiteApplied:
    name: str
    scope: Scope
    status: Literal["created", "updated", "unchanged"]
    digest: str

    def view(self) -> dict[str, Any]:
        return {
            "suite": self.name,
            "tenant": self.scope or None,
            "status": self.status,
            "digest": self.digest,
        }


@dataclass(frozen=True, slots=True)
class SuiteRow:
    scope: Scope
    definition: SuiteDefinition
    digest: str
    created_at: datetime
    created_by: str | None
    updated_at: datetime
    updated_by: str | None

    def view(self) -> dict[str, Any]:
        return {
            "suite": self.definition.name,
            "tenant": self.scope or None,
            "definition": self.definition.to_json(),
            "digest": self.digest,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "updated_at": self.updated_at.isoformat(),
            "updated_by": self.updated_by,
        }


OnApplied = Callable[[Connection, SuiteApplied], None]


class SuiteStore:
    """Reads and writes `eval_suites`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def apply(
        self,
        definitions: Iterable[SuiteDefinition],
        *,
        scope: Scope,
        actor: str | None,
        on_change: OnApplied | None = None,
        now: datetime | None = None,
    ) -> list[SuiteApplied]:
        """Create or replace each suite in one transaction (all or none); `on_change` runs
        inside it for each one that changed. Suites the file does not name stay."""
        at = now or datetime.now(UTC)
        out: list[SuiteApplied] = []
        c = eval_suites.c
        with self.engine.begin() as conn:
            for d in sorted(definitions, key=lambda d: d.name):
                digest = suite_digest(d)
                where = (c.scope == scope) & (c.name == d.name)
                old = conn.execute(select(c.digest).where(where).with_for_update()).scalar()
                if old == digest:
                    out.append(SuiteApplied(d.name, scope, "unchanged", digest))
                    continue
                values = {
                    "route": d.route,
                    "tags": list(d.tags),
                    "definition": d.to_json(),
                    "digest": digest,
                }
                if old is None:
                    conn.execute(
                        insert(eval_suites).values(
                            scope=scope, name=d.name, created_at=at, created_by=actor,
                            updated_at=at, updated_by=actor, **values,
                        )
                    )  # fmt: skip
                    result = SuiteApplied(d.name, scope, "created", digest)
                else:
                    conn.execute(
                        update(eval_suites)
                        .where(where)
                        .values(updated_at=at, updated_by=actor, **values)
                    )
                    result = SuiteApplied(d.name, scope, "updated", digest)
                if on_change is not None:
                    on_change(conn, result)
                out.append(result)
        return out

    def listed(self, scope: Scope | None) -> list[SuiteRow]:
        """The suites of one scope (None: every scope), by name."""
        query = select(eval_suites).order_by(eval_suites.c.name, eval_suites.c.scope)
        if scope is not None:
            query = query.where(eval_suites.c.scope == scope)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_row(r) for r in rows]

    def get(self, name: str, scopes: Iterable[Scope]) -> SuiteRow | None:
        """The suite `name` of the first of `scopes` that has one (a tenant's own suite
        before the shared one of the same name)."""
        order = list(scopes)
        query = select(eval_suites).where(
            eval_suites.c.name == name, eval_suites.c.scope.in_(order)
        )
        with self.engine.connect() as conn:
            rows = {r["scope"]: r for r in conn.execute(query).mappings().all()}
        for scope in order:
            if scope in rows:
                return _row(rows[scope])
        return None


def _row(r: Any) -> SuiteRow:
    (definition,) = parse_suites(
        {"evals": {r["name"]: r["definition"]}}, f"stored suite {r['name']}"
    )
    return SuiteRow(
        r["scope"],
        definition,
        r["digest"],
        as_utc(r["created_at"]),
        r["created_by"],
        as_utc(r["updated_at"]),
        r["updated_by"],
    )
