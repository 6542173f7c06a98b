"""Eval runs in the store: a run of a suite's pinned dataset version against a route version
or a model, and each item's answer and scores.

A result is written once: recording an item a run already holds changes nothing, so a
resumed run, or a retried batch, never overwrites what was stored. A run is `complete` when
it holds a result for every item of its dataset version. The cache is the results of the
tenant's earlier runs: an answer to the same request body (by its SHA-256) from the same
target (the route version's digest, or the model's name) is reused instead of called.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, case, func, select
from sqlalchemy.dialects import postgresql, sqlite

from trimtab.audit.log import Actor, AuditLog
from trimtab.errors import NotFound
from trimtab.store.engine import as_utc
from trimtab.store.tables import eval_results, eval_runs

RUN_ID_PREFIX = "run_"


def new_run_id() -> str:
    return RUN_ID_PREFIX + secrets.token_hex(8)


def model_digest(model: str) -> str:
    """The cache's target for a plain model: its name, hashed to the column's width."""
    return hashlib.sha256(b"model:" + model.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class NewRun:
    scope: str
    suite: str
    definition: dict[str, Any]
    dataset_scope: str
    dataset: str
    dataset_version: int
    route_scope: str | None
    route: str | None
    route_version: int | None
    model: str | None
    target_digest: str
    items: int


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    new: NewRun
    created_at: datetime
    created_by: str | None
    done: int  # items with a result
    errors: int  # of which the call failed
    cached: int  # of which were reused from an earlier run

    @property
    def status(self) -> str:
        return "complete" if self.done >= self.new.items else "incomplete"

    def to_json(self) -> dict[str, Any]:
        n = self.new
        return {
            "id": self.id,
            "suite": n.suite,
            "tenant": n.scope or None,
            "status": self.status,
            "dataset": n.dataset,
            "dataset_tenant": n.dataset_scope or None,
            "dataset_version": n.dataset_version,
            "route": n.route,
            "route_version": n.route_version,
            "model": n.model,
            "target_digest": n.target_digest,
            "items": n.items,
            "done": self.done,
            "errors": self.errors,
            "cached": self.cached,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "definition": n.definition,
        }


@dataclass(frozen=True, slots=True)
class Result:
    item_id: str
    request_digest: str
    output: str | None
    error: str | None
    scores: dict[str, dict[str, Any]]
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    request_id: str | None = None
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "request_digest": self.request_digest,
            "output": self.output,
            "error": self.error,
            "scores": self.scores,
            "latency_ms": self.latency_ms,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "request_id": self.request_id,
            "cached": self.cached,
        }


def _result(row: Any) -> Result:
    return Result(
        item_id=row.item_id,
        request_digest=row.request_digest,
        output=row.output,
        error=row.error,
        scores=row.scores,
        latency_ms=row.latency_ms,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost_usd=row.cost_usd,
        request_id=row.request_id,
        cached=bool(row.cached),
    )


_NEW_FIELDS = tuple(NewRun.__dataclass_fields__)


class RunStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, new: NewRun, *, actor: Actor, now: datetime | None = None) -> Run:
        """Store a new run (no results yet), with its audit row."""
        at = now or datetime.now(UTC)
        run_id = new_run_id()
        with self.engine.begin() as conn:
            conn.execute(
                eval_runs.insert().values(
                    id=run_id,
                    **{f: getattr(new, f) for f in _NEW_FIELDS},
                    created_at=at,
                    created_by=actor.name or None,
                )
            )
            AuditLog.write(
                conn,
                actor.event(
                    "eval.run",
                    target=run_id,
                    tenant=new.scope or None,
                    detail={
                        "suite": new.suite,
                        "dataset": f"{new.dataset}@{new.dataset_version}",
                        "route": new.route,
                        "version": new.route_version,
                        "model": new.model,
                    },
                ),
            )
        return Run(run_id, new, at, actor.name or None, 0, 0, 0)

    def _counts(self, run_ids: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        r = eval_results.c
        query = (
            select(
                r.run_id,
                func.count(),
                func.count(r.error),
                func.sum(case((r.cached, 1), else_=0)),
            )
            .where(r.run_id.in_(list(run_ids)))
            .group_by(r.run_id)
        )
        with self.engine.connect() as conn:
            return {
                row[0]: (int(row[1]), int(row[2]), int(row[3] or 0)) for row in conn.execute(query)
            }

    def _runs(self, rows: Sequence[Any]) -> list[Run]:
        counts = self._counts([row.id for row in rows]) if rows else {}
        out = []
        for row in rows:
            done, errors, cached = counts.get(row.id, (0, 0, 0))
            new = NewRun(**{f: getattr(row, f) for f in _NEW_FIELDS})
            out.append(
                Run(row.id, new, as_utc(row.created_at), row.created_by, done, errors, cached)
            )
        return out

    def get(self, run_id: str, tenant: str | None) -> Run:
        """A run of `tenant` (None: any tenant's); NotFound else, another tenant's too."""
        query = select(eval_runs).where(eval_runs.c.id == run_id)
        if tenant is not None:
            query = query.where(eval_runs.c.scope == tenant)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"no eval run '{run_id}'", param="run")
        return self._runs([row])[0]

    def list(self, tenant: str | None, suite: str | None, limit: int) -> list[Run]:
        """Runs, newest first: a tenant's (None: every tenant's), of one suite or all."""
        c = eval_runs.c
        query = select(eval_runs).order_by(c.created_at.desc(), c.id).limit(limit)
        if tenant is not None:
            query = query.where(c.scope == tenant)
        if suite is not None:
            query = query.where(c.suite == suite)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return self._runs(rows)

    def results(self, run_id: str) -> dict[str, Result]:
        """The run's results by item id."""
        query = select(eval_results).where(eval_results.c.run_id == run_id)
        with self.engine.connect() as conn:
            return {row.item_id: _result(row) for row in conn.execute(query)}

    def record(self, run: Run, results: Sequence[Result], now: datetime | None = None) -> int:
        """Store results the run does not hold yet; how many were new."""
        if not results:
            return 0
        at = now or datetime.now(UTC)
        rows = [
            {
                "run_id": run.id,
                "scope": run.new.scope,
                "target_digest": run.new.target_digest,
                "created_at": at,
                **{k: v for k, v in r.to_json().items()},
            }
            for r in results
        ]
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        with self.engine.begin() as conn:
            before = self._count(conn, run.id)
            conn.execute(insert(eval_results).values(rows).on_conflict_do_nothing())
            return self._count(conn, run.id) - before

    @staticmethod
    def _count(conn: Any, run_id: str) -> int:
        query = select(func.count()).where(eval_results.c.run_id == run_id)
        return int(conn.scalar(query) or 0)

    def cached(self, run: Run, digests: Sequence[str]) -> dict[str, Result]:
        """Earlier answers of this tenant's runs to these request bodies from this run's
        target, by request digest (the newest; failed calls are never reused)."""
        if not digests:
            return {}
        r = eval_results.c
        query = (
            select(eval_results)
            .where(
                r.scope == run.new.scope,
                r.target_digest == run.new.target_digest,
                r.request_digest.in_(list(digests)),
                r.error.is_(None),
                r.run_id != run.id,
            )
            .order_by(r.created_at)
        )
        with self.engine.connect() as conn:
            found = {row.request_digest: _result(row) for row in conn.execute(query)}
        return found
