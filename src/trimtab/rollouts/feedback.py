"""Feedback on a request's answer, joined to the route and version that served it: the
votes the canary analysis weighs. A request's first negative feedback also counts in its
minute's rollup row (`negative_feedback`, the negative-feedback SLI's; docs/slos.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, bindparam, func, insert, select

from trimtab.audit.log import Actor, AuditLog
from trimtab.errors import NotFound
from trimtab.store.tables import feedback, requests
from trimtab.telemetry.feedback_rollups import KEY_COLUMNS, count_negative_feedback


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
            # locked (PostgreSQL) so that two adds on one request count its first negative
            # feedback once: the second waits, then sees the first's row; on SQLite the
            # insert below takes the database's write lock before the count reads
            row = conn.execute(_REQUEST, {"id": request_id}).first()
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
            if negative and conn.execute(_NEGATIVES, {"id": request_id}).scalar_one() == 1:
                count_negative_feedback(conn, row)
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


_COLUMNS = dict.fromkeys(("tenant", "route", "version", *KEY_COLUMNS))
_REQUEST = (
    select(*(requests.c[name] for name in _COLUMNS))
    .where(requests.c.id == bindparam("id"))
    .with_for_update()
)
_NEGATIVES = select(func.count()).where(
    feedback.c.request_id == bindparam("id"), feedback.c.negative.is_(True)
)
