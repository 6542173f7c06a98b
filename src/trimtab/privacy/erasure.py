"""A person's right to erasure and of access: everything the store holds of one user.

"Of one user" is: the request rows whose `user` tag is theirs (of one tenant, or of
every tenant), the feedback and the eval results recorded on those requests, the dataset
items whose `metadata.user` is theirs, and the eval results of those items (see
evals/erasure.py for how an item leaves the versions that share it). Rollups keep their
counts: they have no user dimension.

`erase` deletes in batches of `batch` rows, each its own transaction, so it never holds
the store for long, and ends with one audit row (`privacy.erase`, target `user:U`) with
the counts; run twice, the second finds nothing. `export` yields the same rows as JSON
objects (the right of access), read in batches too, and `jsonl` encodes them as JSON
Lines a chunk at a time: an export of any size takes the memory of one batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine

from trimtab.audit.log import Actor, AuditLog
from trimtab.evals import erasure as evals
from trimtab.rollouts import erasure as rollouts
from trimtab.telemetry import retention as telemetry

ACTION = "privacy.erase"


@dataclass(frozen=True, slots=True)
class Erased:
    requests: int = 0
    feedback: int = 0
    eval_results: int = 0
    dataset_items: int = 0  # positions removed from dataset versions
    dataset_item_contents: int = 0  # content rows no version holds any more

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def erase(
    engine: Engine,
    audit: AuditLog,
    actor: Actor,
    user: str,
    tenant: str | None,
    *,
    batch: int = 500,
) -> Erased:
    requests = feedback = results = 0
    while True:
        ids = telemetry.user_request_ids(engine, user, tenant, batch)
        if not ids:
            break
        feedback += rollouts.delete_feedback_on(engine, ids)
        results += evals.delete_results_of_requests(engine, ids)
        requests += telemetry.delete_request_ids(engine, ids)
    positions = contents = 0
    for digest, _ in list(evals.items_of_user(engine, user, batch)):
        removed, item_results, gone = evals.erase_item(engine, digest, tenant)
        positions += removed
        results += item_results
        contents += gone
    done = Erased(requests, feedback, results, positions, contents)
    detail: dict[str, Any] = {"user": user, "tenant": tenant, "erased": done.to_json()}
    audit.append(actor.event(ACTION, target=f"user:{user}", tenant=tenant, detail=detail))
    return done


def export(
    engine: Engine, user: str, tenant: str | None, *, batch: int = 500
) -> Iterator[dict[str, Any]]:
    """Every row of the user, as {"kind": ..., "data": {...}} objects ready for JSON."""
    chunk: list[str] = []
    for row in telemetry.user_requests(engine, user, tenant, batch):
        yield {"kind": "request", "data": _plain(row)}
        chunk.append(row["id"])
        if len(chunk) >= batch:
            yield from _on_requests(engine, chunk)
            chunk = []
    yield from _on_requests(engine, chunk)
    for digest, body in evals.items_of_user(engine, user, batch):
        held = evals.holdings(engine, digest, tenant)
        if tenant is not None and not held:
            continue  # an item of another tenant's datasets only
        versions = [
            {"scope": h.scope, "dataset": h.dataset, "version": h.number, "item_id": h.item_id}
            for h in held
        ]
        yield {"kind": "dataset_item", "data": {"digest": digest, "body": body, "in": versions}}
        for h in held:
            for result in evals.results_for(engine, h):
                yield {"kind": "eval_result", "data": _plain(result)}


def _on_requests(engine: Engine, ids: list[str]) -> Iterator[dict[str, Any]]:
    for row in rollouts.feedback_on(engine, ids):
        yield {"kind": "feedback", "data": _plain(row)}
    for row in evals.results_of_requests(engine, ids):
        yield {"kind": "eval_result", "data": _plain(row)}


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {str(k): v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


def jsonl(records: Iterator[dict[str, Any]], lines: int = 200) -> Iterator[bytes]:
    """The records as JSON Lines, `lines` records a chunk (the last may hold fewer)."""
    chunk: list[bytes] = []
    for record in records:
        chunk.append(orjson.dumps(record))
        if len(chunk) >= lines:
            yield b"\n".join(chunk) + b"\n"
            chunk = []
    if chunk:
        yield b"\n".join(chunk) + b"\n"
