"""Dataset items from recorded requests (`trimtab datasets add NAME --from-requests`): the
failure samples of production turned into cases.

A request's input is the variables it sent to a route template (the `variables` field of
its body), else its messages (an Anthropic body's `system` becomes the first message); the
answer it got is kept as `metadata.observed`, with the request id, route, version and
status. Items are deduplicated by input (the newest request of an input wins, and an input
the dataset already holds is not added again). A request whose body was not stored, was
redacted or hashed (`storage.bodies`), or holds no usable input is skipped and counted.
Eval runs' own calls are never harvested (telemetry/production.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, exists, select

from trimtab.evals.datasets import DatasetError, Item, input_id, parse
from trimtab.store.tables import feedback, requests
from trimtab.telemetry.production import production

MAX_REQUESTS = 10_000  # at most this many recorded requests are read for one version


@dataclass(frozen=True, slots=True)
class RequestQuery:
    """Which recorded requests: of `route` (and `version`, a label like v2), newest first."""

    route: str
    version: str | None = None
    negative_feedback: bool = False  # only requests someone gave negative feedback on
    errors: bool = False  # only requests that failed (status >= 400)
    since: datetime | None = None
    limit: int = 100
    tenant: str | None = None  # None: every tenant's (an admin's)
    request_id: str | None = None  # only this request (the console's "add to dataset")


@dataclass(frozen=True, slots=True)
class Harvest:
    items: tuple[Item, ...]  # new inputs, newest request first
    considered: int  # requests read
    unusable: int  # without a stored, readable body or a usable input
    duplicates: int  # inputs seen in a newer request or already in the dataset


def recorded(engine: Engine, q: RequestQuery) -> list[dict[str, Any]]:
    """The matching requests' ids, bodies, route, version and status, newest first."""
    c = requests.c
    where = [c.route == q.route, production(c.feature)]
    if q.version is not None:
        where.append(c.version == q.version)
    if q.tenant is not None:
        where.append(c.tenant == q.tenant)
    if q.request_id is not None:
        where.append(c.id == q.request_id)
    if q.since is not None:
        where.append(c.started_at >= q.since)
    if q.errors:
        where.append(c.status_code >= 400)
    if q.negative_feedback:
        f = feedback.c
        where.append(exists().where(f.request_id == c.id, f.negative.is_(True)))
    query = (
        select(c.id, c.route, c.version, c.status_code, c.request_body, c.response_body)
        .where(*where)
        .order_by(c.started_at.desc(), c.id.desc())
        .limit(min(q.limit, MAX_REQUESTS))
    )
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None  # hashed, redacted to text, or cut: not a body we can read


def request_input(body: Any) -> dict[str, Any] | None:
    """The item input a request body carries, or None."""
    if not isinstance(body, dict):
        return None
    variables = body.get("variables")
    if isinstance(variables, dict) and variables:
        return {"variables": variables}
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    system = body.get("system")  # Anthropic's
    if isinstance(system, str) and system:
        messages = [{"role": "system", "content": system}, *messages]
    return {"messages": messages}


def observed_answer(body: Any) -> str | None:
    """The text of the answer a response body holds (OpenAI's or Anthropic's), or None."""
    if not isinstance(body, dict):
        return None
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            return str(message["content"])
    content = body.get("content")
    if isinstance(content, list):
        texts = [b.get("text") for b in content if isinstance(b, dict) and b.get("type") == "text"]
        if texts and all(isinstance(t, str) for t in texts):
            return "".join(str(t) for t in texts)
    return None


def harvest(rows: Iterable[Mapping[str, Any]], existing: Sequence[Item] = ()) -> Harvest:
    """Items from recorded request rows (newest first), none whose input `existing` or a
    newer row already holds."""
    seen = {input_id(item.input()) for item in existing}
    items: list[Item] = []
    considered = unusable = duplicates = 0
    for row in rows:
        considered += 1
        given = request_input(_json(row.get("request_body")))
        if given is None:
            unusable += 1
            continue
        key = input_id(given)
        if key in seen:
            duplicates += 1
            continue
        metadata = {
            "observed": observed_answer(_json(row.get("response_body"))),
            "request_id": row["id"],
            "route": row.get("route"),
            "version": row.get("version"),
            "status": row.get("status_code"),
        }
        raw = {"id": key, **given, "metadata": metadata}
        try:  # the same checks as a pushed file's rows
            (item,) = parse(orjson.dumps(raw).decode() + "\n", "jsonl", f"request {row['id']}")
        except DatasetError:
            unusable += 1
            continue
        seen.add(key)
        items.append(item)
    return Harvest(tuple(items), considered, unusable, duplicates)
