"""The feedback on one request, read for its page (rollouts/ owns and writes the table)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from trimtab.store.engine import as_utc
from trimtab.store.tables import feedback


def of_request(engine: Engine, request_id: str, tenant: str | None) -> list[dict[str, Any]]:
    """Oldest first; only `tenant`'s when given (None: an admin's view, every tenant)."""
    f = feedback.c
    query = select(f.score, f.comment, f.escalated, f.by, f.at).where(f.request_id == request_id)
    if tenant is not None:
        query = query.where(f.tenant == tenant)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(f.at, f.id).limit(100)).mappings().all()
    return [{**r, "at": as_utc(r["at"])} for r in rows]
