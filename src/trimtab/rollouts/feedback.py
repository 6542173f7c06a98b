"""Feedback on a request's answer, joined to the route and version that served it: the
votes the canary analysis weighs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select

from trimtab.audit.log import Actor, AuditLog
from trimtab.errors import NotFound
from trimtab.store.tables import feedback, requests


class FeedbackStore:
    """The feedback table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(
        self,
        request_id: str,
        tenant: str | None,
        score: float,
        comment: str | None,
        escalated: bool,
        by: Actor,
    ) -> dict[str, Any]:
        """Join the request's route and version; `tenant` None: any tenant (admin)."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            row = conn.execute(
                select(requests.c.tenant, requests.c.route, requests.c.version).where(
                    requests.c.id == request_id
                )
            ).first()
            if row is None or (tenant is not None and row.tenant != tenant):
                raise NotFound(f"no request with id '{request_id}'")
            negative = score < 0.5 or escalated
            conn.execute(
                insert(feedback).values(
                    request_id=request_id, tenant=row.tenant, route=row.route,
                    version=row.version, score=score, negative=negative, comment=comment,
                    escalated=escalated, by=by.name or None, at=now,
                )
            )  # fmt: skip
            out = {
                "request_id": request_id,
                "route": row.route,
                "version": row.version,
                "score": score,
                "negative": negative,
                "escalated": escalated,
            }
            AuditLog.write(
                conn, by.event("feedback.add", target=request_id, tenant=row.tenant, detail=out)
            )
        return out
