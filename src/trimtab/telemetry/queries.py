"""Read the request log: filtered, newest first, cursor-paginated."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, and_, func, or_, select

from trimtab.store.engine import as_utc
from trimtab.store.tables import requests
from trimtab.telemetry.production import unless_named

_BODY_COLUMNS = ("request_body", "upstream_request_body", "response_body")
_LIST_COLUMNS = [c for c in requests.c if c.name not in _BODY_COLUMNS]
# a text search reads at most this many requests (newest first, after the other filters)
# for one page, so a page costs the same however rare the text; the cursor goes on from
# the oldest one read
SEARCH_SCAN = 20_000
MAX_SEARCH = 256  # characters of searched text


class BadCursor(ValueError):
    """A pagination cursor this server did not make."""


@dataclass(frozen=True, slots=True)
class RequestFilter:
    since: datetime | None = None
    until: datetime | None = None
    model: str | None = None
    provider: str | None = None
    tenant: str | None = None
    status: int | str | None = None  # a code, or "error" / "ok"
    user: str | None = None
    session: str | None = None
    feature: str | None = None
    route: str | None = None
    version: str | None = None
    # text in the stored request or answer body, case-insensitive (what storage.bodies
    # kept: a redacted body is searched as redacted, a hashed or absent one not at all)
    text: str | None = None


def encode_cursor(started_at: datetime, request_id: str) -> str:
    raw = orjson.dumps([as_utc(started_at).isoformat(), request_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, rid = orjson.loads(raw)
        return datetime.fromisoformat(when), str(rid)
    except (ValueError, TypeError) as exc:
        raise BadCursor(f"invalid cursor '{cursor}'") from exc


def _conditions(f: RequestFilter) -> list[Any]:
    c = requests.c
    out: list[Any] = []
    if f.since is not None:
        out.append(c.started_at >= f.since)
    if f.until is not None:
        out.append(c.started_at < f.until)
    for column, value in (
        (c.request_model, f.model),
        (c.provider, f.provider),
        (c.tenant, f.tenant),
        (c.user_id, f.user),
        (c.session_id, f.session),
        (c.feature, f.feature),
        (c.route, f.route),
        (c.version, f.version),
    ):
        if value is not None:
            out.append(column == value)
    out += unless_named(c.feature, f.feature)  # eval runs' calls only when named
    if f.status == "error":
        out.append(c.status_code >= 400)
    elif f.status == "ok":
        out.append(c.status_code < 400)
    elif isinstance(f.status, int):
        out.append(c.status_code == f.status)
    return out


def list_requests(
    engine: Engine,
    f: RequestFilter,
    limit: int,
    cursor: str | None = None,
    scan: int = SEARCH_SCAN,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of requests (without bodies) and the cursor of the next page, if any. With
    ``f.text``, the page holds the matches among the next ``scan`` requests at most, and
    the cursor goes on after the last request read, so a page may have fewer than ``limit``
    rows (even none) and still a next one."""
    c = requests.c
    where = _conditions(f)
    if cursor:
        when, rid = decode_cursor(cursor)
        where.append(or_(c.started_at < when, and_(c.started_at == when, c.id < rid)))
    newest_first = (c.started_at.desc(), c.id.desc())
    with engine.connect() as conn:
        boundary = None
        if f.text is not None:  # read at most `scan` requests: where this page stops
            last = select(c.started_at, c.id).where(*where).order_by(*newest_first)
            # the last request this page reads, and whether any is older than it
            edge = conn.execute(last.offset(scan - 1).limit(2)).all()
            if edge:
                at, rid = edge[0]
                where.append(or_(c.started_at > at, and_(c.started_at == at, c.id >= rid)))
            boundary = edge[0] if len(edge) == 2 else None
            where.append(
                or_(*(getattr(c, name).icontains(f.text, autoescape=True)
                      for name in ("request_body", "response_body")))
            )  # fmt: skip
        query = select(*_LIST_COLUMNS).where(*where).order_by(*newest_first).limit(limit + 1)
        rows = [dict(r) for r in conn.execute(query).mappings()]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["started_at"], rows[-1]["id"])
    elif boundary is not None:  # fewer matches than a page in the requests read: go on
        next_cursor = encode_cursor(boundary[0], boundary[1])
    return rows, next_cursor


def get_request(engine: Engine, request_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(requests).where(requests.c.id == request_id)).mappings().first()
    return dict(row) if row is not None else None


def count_requests(engine: Engine, f: RequestFilter) -> int:
    with engine.connect() as conn:
        value = conn.execute(
            select(func.count()).select_from(requests).where(*_conditions(f))
        ).scalar_one()
    return int(value)


def _body(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def view(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the API shows it: OTel GenAI attribute names where one exists."""
    out: dict[str, Any] = {
        "id": row["id"],
        "started_at": as_utc(row["started_at"]).isoformat(),
        "ended_at": as_utc(row["ended_at"]).isoformat(),
        "api": row["api"],
        "gen_ai.operation.name": row["operation"],
        "gen_ai.request.model": row["request_model"],
        "gen_ai.response.model": row["response_model"],
        "gen_ai.response.id": row["response_id"],
        "gen_ai.provider.name": row["provider_kind"],
        "gen_ai.usage.input_tokens": row["input_tokens"],
        "gen_ai.usage.output_tokens": row["output_tokens"],
        "gen_ai.response.finish_reasons": row["finish_reasons"],
        "provider": row["provider"],
        "upstream_model": row["upstream_model"],
        "tenant": row["tenant"],
        "key_id": row["key_id"],
        "user.id": row["user_id"],
        "session.id": row["session_id"],
        "feature": row["feature"],
        "route": row["route"],
        "version": row["version"],
        "http.response.status_code": row["status_code"],
        "error.type": row["error_type"],
        "error_message": row["error_message"],
        "latency_ms": row["duration_ms"],
        "ttft_ms": row["ttft_ms"],
        "overhead_ms": row["overhead_ms"],
        "cost_usd": row["cost_usd"],
        "streamed": bool(row["streamed"]),
        "attributes": row["attributes"],
    }
    if "request_body" in row:
        out["request"] = _body(row["request_body"])
        # null: the request went upstream as the client sent it
        out["upstream_request"] = _body(row["upstream_request_body"])
        out["response"] = _body(row["response_body"])
    return out
