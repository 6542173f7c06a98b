"""Erasure's and access's queries on the eval tables (privacy/erasure.py runs them).

A person's dataset items are those whose `metadata.user` names them. Items are stored
once, by content, however many versions hold them (evals/store.py); erasing one removes
it from every version that holds it (of the tenant, when one is named), lowers those
versions' item counts, deletes the eval results of runs over those versions for that
item, and deletes the content row once no version holds it. A version keeps its number
and its digest (the digest names what was pushed; the audit row says what was erased
since): a new version without the item would leave the data in the old ones.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, delete, func, select, update

from trimtab.store.tables import (
    dataset_items,
    dataset_version_items,
    dataset_versions,
    eval_results,
    eval_runs,
)


@dataclass(frozen=True, slots=True)
class Holding:
    """One position of one version that holds an item."""

    scope: str
    dataset: str
    number: int
    position: int
    item_id: str


def items_of_user(engine: Engine, user: str, batch: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """(digest, body) of every stored item whose metadata.user is `user`, read in batches
    (JSON paths differ between SQLite and PostgreSQL: the bodies are read and matched here)."""
    after = ""
    while True:
        query = (
            select(dataset_items.c.digest, dataset_items.c.body)
            .where(dataset_items.c.digest > after)
            .order_by(dataset_items.c.digest)
            .limit(batch)
        )
        with engine.connect() as conn:
            rows = list(conn.execute(query))
        for digest, body in rows:
            metadata = body.get("metadata") if isinstance(body, dict) else None
            if isinstance(metadata, dict) and metadata.get("user") == user:
                yield digest, body
        if len(rows) < batch:
            return
        after = rows[-1][0]


def holdings(engine: Engine, digest: str, scope: str | None) -> list[Holding]:
    j = dataset_version_items.c
    query = select(j.scope, j.dataset, j.number, j.position, j.item_id).where(
        j.item_digest == digest
    )
    if scope is not None:
        query = query.where(j.scope == scope)
    with engine.connect() as conn:
        return [Holding(*row) for row in conn.execute(query.order_by(*j))]


def _results_where(h: Holding) -> Any:
    r, runs = eval_results.c, eval_runs.c
    run_ids = select(runs.id).where(
        runs.dataset_scope == h.scope, runs.dataset == h.dataset, runs.dataset_version == h.number
    )
    return and_(r.run_id.in_(run_ids), r.item_id == h.item_id)


def results_for(engine: Engine, h: Holding) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(eval_results).where(_results_where(h)))
        return [dict(row) for row in rows.mappings()]


def results_of_requests(engine: Engine, request_ids: Collection[str]) -> list[dict[str, Any]]:
    if not request_ids:
        return []
    query = select(eval_results).where(eval_results.c.request_id.in_(list(request_ids)))
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def delete_results_of_requests(engine: Engine, request_ids: Collection[str]) -> int:
    if not request_ids:
        return 0
    with engine.begin() as conn:
        result = conn.execute(
            delete(eval_results).where(eval_results.c.request_id.in_(list(request_ids)))
        )
    return int(result.rowcount or 0)


def erase_item(engine: Engine, digest: str, scope: str | None) -> tuple[int, int, int]:
    """Remove one item from the versions holding it (of `scope`, or every one) in one
    transaction: (positions removed, eval results deleted, content rows deleted)."""
    held = holdings(engine, digest, scope)
    removed = results = 0
    j, v = dataset_version_items.c, dataset_versions.c
    with engine.begin() as conn:
        for h in held:
            results += int(conn.execute(delete(eval_results).where(_results_where(h))).rowcount)
            removed += int(
                conn.execute(
                    delete(dataset_version_items).where(
                        j.scope == h.scope,
                        j.dataset == h.dataset,
                        j.number == h.number,
                        j.position == h.position,
                    )
                ).rowcount
            )
            conn.execute(
                update(dataset_versions)
                .where(v.scope == h.scope, v.dataset == h.dataset, v.number == h.number)
                .values(items=v["items"] - 1)
            )
        left = conn.scalar(
            select(func.count()).select_from(dataset_version_items).where(j.item_digest == digest)
        )
        gone = 0
        if not left:
            gone = int(
                conn.execute(delete(dataset_items).where(dataset_items.c.digest == digest)).rowcount
            )
    return removed, results, gone
