"""/ui/requests, the explorer (the API's filters, keyset pages), and /ui/requests/{id}
with its guardrail outcomes and, for operators, "add to dataset": the request into its
tenant's dataset's next version through evals/adding.add_recorded, as
`POST /api/datasets/{name}/from-requests` adds (the push audited as `dataset.push`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.responses import RedirectResponse, Response

from trimtab.errors import Invalid, NotFound
from trimtab.evals.adding import add_recorded
from trimtab.evals.from_requests import RequestQuery
from trimtab.evals.store import DatasetKey
from trimtab.telemetry.queries import (
    MAX_SEARCH,
    SEARCH_SCAN,
    BadCursor,
    RequestFilter,
    get_request,
    list_requests,
    view,
)
from trimtab.types import name_problem
from trimtab.web.context import Page
from trimtab.web.feedback import of_request
from trimtab.web.render import preview

FILTERS = ("q", "since", "until", "model", "provider", "route", "version", "tenant",
           "feature", "user", "session", "status", "limit")  # fmt: skip
PAGE_SIZE = 50
MAX_PAGE = 200  # the API's limit on /api/requests


def _time(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(f"'{name}' must be an ISO 8601 time, got '{value}'", param=name) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _status(value: str | None) -> int | str | None:
    if value is None or value in ("error", "ok"):
        return value
    if value.isdigit() and 100 <= int(value) <= 599:
        return int(value)
    raise Invalid(
        f"'status' must be an HTTP status, 'error' or 'ok', got '{value}'", param="status"
    )


async def explorer(page: Page) -> Response:
    params = page.params(FILTERS)
    tenant = page.viewer.tenant(params.get("tenant"))
    f = RequestFilter(
        since=_time("since", params.get("since")),
        until=_time("until", params.get("until")),
        model=params.get("model"),
        provider=params.get("provider"),
        tenant=tenant,
        status=_status(params.get("status")),
        user=params.get("user"),
        session=params.get("session"),
        feature=params.get("feature"),
        route=params.get("route"),
        version=params.get("version"),
        text=params.get("q"),
    )
    if f.text is not None and len(f.text) > MAX_SEARCH:
        raise Invalid(f"'q' must be at most {MAX_SEARCH} characters", param="q")
    cursor = page.param("cursor")
    limit_text = page.param("limit") or str(PAGE_SIZE)
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_PAGE:
        raise Invalid(f"'limit' must be a whole number from 1 to {MAX_PAGE}", param="limit")
    limit = int(limit_text)
    try:
        rows, next_cursor = await asyncio.to_thread(
            list_requests, page.deps.engine, f, limit, cursor
        )
    except BadCursor as exc:
        raise Invalid(str(exc), param="cursor") from None
    return page.render(
        "requests.html.j2", rows=[view(r) for r in rows], next_cursor=next_cursor,
        filters=params, cursor=cursor, page_size=limit, search_scan=SEARCH_SCAN,
    )  # fmt: skip


def _pretty(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _text(content: Any) -> str:
    """A message's content as text: a string, or the text parts of a list of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                if isinstance(block.get("text"), str):
                    parts.append(block["text"])
                else:
                    parts.append(f"[{block.get('type', 'part')}]")
        return "\n".join(parts)
    return "" if content is None else _pretty(content)


def conversation(body: Any) -> list[dict[str, str]]:
    """The request's messages as (role, text): OpenAI's and Anthropic's shapes."""
    if not isinstance(body, dict):
        return []
    out: list[dict[str, str]] = []
    if body.get("system") is not None:
        out.append({"role": "system", "text": _text(body["system"])})
    for m in body.get("messages") or []:
        if isinstance(m, dict):
            out.append({"role": str(m.get("role", "?")), "text": _text(m.get("content"))})
    if not out and "input" in body:  # embeddings
        out.append({"role": "input", "text": _text(body["input"])})
    return out


def answer(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None if body is None else str(body)
    choices = body.get("choices")
    if isinstance(choices, list) and choices:
        first = choices[0] if isinstance(choices[0], dict) else {}
        message = first.get("message") or {}
        return _text(message.get("content")) if isinstance(message, dict) else None
    if isinstance(body.get("content"), list):
        return _text(body["content"])
    if "error" in body:
        return None
    return None


async def _visible(page: Page) -> dict[str, Any]:
    rid = page.request.path_params["request_id"]
    row = await asyncio.to_thread(get_request, page.deps.engine, rid)
    p = page.viewer.principal
    if row is None or not (p.is_admin or row["tenant"] == p.tenant):
        raise NotFound(f"no request with id '{rid}'")  # another tenant's looks missing
    return row


def guardrails(attributes: dict[str, Any]) -> dict[str, Any] | None:
    """The record's guardrail runs (gateway/guarding.py), or None when none ran."""
    found = attributes.get("guardrails")
    if not isinstance(found, dict):
        return None
    checks = [c for c in found.get("checks") or [] if isinstance(c, dict)]
    return {**found, "checks": checks}


async def detail(page: Page) -> Response:
    row = await _visible(page)
    rid = row["id"]
    p = page.viewer.principal
    shown = view(row)
    whole = page.param("whole") == "1"
    limit = 10**9 if whole else None
    bodies = {}
    for name in ("request", "upstream_request", "response"):
        text = _pretty(shown.get(name))
        bodies[name] = preview(text, limit) if limit else preview(text)
    tenant = None if p.is_admin else p.tenant
    fb = await asyncio.to_thread(of_request, page.deps.engine, rid, tenant)
    attributes = shown.get("attributes") or {}
    # what the model saw: the upstream body when it differs (a route's rendered messages,
    # a translation), else the client's
    sent = shown.get("upstream_request") or shown.get("request")
    return page.render(
        "request.html.j2", r=shown, bodies=bodies, whole=whole,
        messages=conversation(sent), answer=answer(shown.get("response")),
        attempts=attributes.get("attempts") or [], guardrails=guardrails(attributes),
        other_attributes={k: v for k, v in attributes.items()
                          if k not in ("attempts", "guardrails")},
        feedback=fb, added=page.params(("dataset", "version", "added")),
    )  # fmt: skip


async def add_to_dataset(page: Page) -> Response:
    """The request as an item of its tenant's dataset `dataset` (its next version)."""
    page.viewer.require_operator("add to datasets")
    row = await _visible(page)
    if not row["route"]:
        raise Invalid("only a route's request becomes a dataset item (its variables or "
                      "messages against the route's template)", param="dataset")  # fmt: skip
    name = page.field("dataset", required=True)
    problem = name_problem("dataset", name)
    if problem is not None:
        raise Invalid(problem, param="dataset")
    assert name is not None
    message = page.field("message") or f"{row['route']}: request {row['id']}"
    key = DatasetKey(row["tenant"], name)
    query = RequestQuery(route=row["route"], tenant=row["tenant"], request_id=row["id"], limit=1)
    store = page.deps.datasets
    result, found = await asyncio.to_thread(add_recorded, store, key, query, message, page.actor())
    if result is None:
        raise Invalid(
            f"request {row['id']} gives no item (its body was not stored, was redacted or "
            "hashed, or holds no variables or messages)", param="dataset",
        )  # fmt: skip
    done = {"dataset": name, "version": str(result.version.number), "added": str(len(found.items))}
    return RedirectResponse(f"/ui/requests/{row['id']}?{urlencode(done)}", 303)
