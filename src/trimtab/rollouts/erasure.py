"""Erasure's and access's queries on `feedback` (privacy/erasure.py runs them): the
feedback left on a person's requests."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Engine, delete, select

from trimtab.store.tables import feedback


def feedback_on(engine: Engine, request_ids: Collection[str]) -> list[dict[str, Any]]:
    if not request_ids:
        return []
    c = feedback.c
    query = select(feedback).where(c.request_id.in_(list(request_ids))).order_by(c.id)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def delete_feedback_on(engine: Engine, request_ids: Collection[str]) -> int:
    if not request_ids:
        return 0
    with engine.begin() as conn:
        result = conn.execute(delete(feedback).where(feedback.c.request_id.in_(list(request_ids))))
    return int(result.rowcount or 0)
