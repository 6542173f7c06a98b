"""The failed requests of an incident, read from telemetry's request rows: what a dataset
case is built from (`trimtab incident rule ID --kind dataset_case --from-failed`). A read
of the requests table within the incident's window, on the route index, bounded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, select

from trimtab.incidents.records import Incident
from trimtab.store.engine import as_utc
from trimtab.store.tables import requests

MAX_CASES = 200


@dataclass(frozen=True, slots=True)
class FailedRequest:
    id: str
    route: str | None
    version: str | None
    status_code: int
    error: str | None
    body: dict[str, Any] | None  # the request as the client sent it, when recorded
    started_at: str


def failed_requests(
    engine: Engine, incident: Incident, now: Any, limit: int = MAX_CASES
) -> list[FailedRequest]:
    """The incident's failed (5xx) requests on its routes over its window, oldest first,
    at most `limit`; only those whose body was recorded can become cases."""
    start, end = incident.window(now)
    r = requests.c
    query = (
        select(r.id, r.route, r.version, r.status_code, r.error_message, r.request_body,
               r.started_at)
        .where(r.started_at >= start.replace(second=0, microsecond=0),
               r.started_at < end + timedelta(minutes=1))
        .where(r.status_code >= 500)
        .where(*incident.affected.request_where())
        .order_by(r.started_at, r.id)
        .limit(limit)
    )  # fmt: skip
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    out = []
    for row in rows:
        body: dict[str, Any] | None = None
        if row.request_body:
            try:
                parsed = orjson.loads(row.request_body)
            except orjson.JSONDecodeError:
                parsed = None
            body = parsed if isinstance(parsed, dict) else None
        out.append(
            FailedRequest(
                row.id, row.route, row.version, row.status_code, row.error_message, body,
                as_utc(row.started_at).isoformat(),
            )
        )  # fmt: skip
    return out
