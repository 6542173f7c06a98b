"""/ui/routes, /ui/routes/{name} (versions, a bundle, the timeline, the release gate's
checklist) and /ui/routes/{name}/diff?from=&to= (side by side)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response

from trimtab.canary.gates import REQUIRED, missing_evidence
from trimtab.errors import Invalid, NotFound
from trimtab.registry.diff import diff_bundles
from trimtab.registry.rows import RouteRow, VersionRow
from trimtab.rollouts.attestations import AttestationStore
from trimtab.web.context import Page

TIMELINE_PAGE = 50
_GATE_WORDS = {"changelog": "a changelog", "approval": "an approval", "eval": "a passing eval",
               "redteam": "a red-team"}  # fmt: skip


async def index(page: Page) -> Response:
    p = page.viewer.principal
    rows = await asyncio.to_thread(page.deps.routes.list_routes, p.tenant, p.is_admin)
    return page.render("routes.html.j2", routes=rows)


async def resolve(page: Page) -> RouteRow:
    """The route the path names, as the API resolves it (the caller's tenant's, else the
    shared one; `?tenant=` picks); one the caller may not see is missing."""
    name = page.request.path_params["name"]
    p = page.viewer.principal
    asked = page.request.query_params.get("tenant")
    row = await asyncio.to_thread(page.deps.routes.resolve, name, p.tenant, p.is_admin, asked)
    if row is None:
        raise NotFound(f"no route named '{name}'")
    return row


def _number(page: Page, name: str) -> int | None:
    value = page.param(name)
    if value is None:
        return None
    digits = value[1:] if value[:1] in ("v", "V") else value
    if not digits.isdigit():
        raise Invalid(f"'{name}' must be a version number like 2 or v2, got '{value}'", param=name)
    return int(digits)


@dataclass(frozen=True, slots=True)
class GateItem:
    kind: str
    present: bool
    missing: str | None


def checklist(page: Page, row: RouteRow, version: VersionRow) -> list[GateItem]:
    """Blocking: what the risk tier's gate needs for `version`, each present or not."""
    with page.deps.engine.connect() as conn:
        attestations = AttestationStore.of(conn, row.key, version.number)
    missing = missing_evidence(
        row.risk_tier, version.author or "", attestations,
        has_message=bool(version.message.strip()),
    )  # fmt: skip
    items = []
    for kind in REQUIRED[row.risk_tier]:
        said = next((m for m in missing if m.startswith(_GATE_WORDS[kind])), None)
        items.append(GateItem(kind, said is None, said))
    return items


async def route(page: Page) -> Response:
    row = await resolve(page)
    store = page.deps.routes
    versions = await asyncio.to_thread(store.versions, row.key)
    chosen = _number(page, "version") or row.stable_version or row.latest_version
    shown = next((v for v in versions if v.number == chosen), None)
    if chosen is not None and shown is None:
        raise NotFound(f"route '{row.name}' has no version v{chosen}", param="version")
    after = page.param("after")
    if after is not None and not after.isdigit():
        raise Invalid("'after' must be an event id", param="after")
    events = await asyncio.to_thread(
        store.events, row.key, int(after) if after else None, TIMELINE_PAGE + 1
    )
    more = len(events) > TIMELINE_PAGE
    events = events[:TIMELINE_PAGE]
    newest = versions[0] if versions else None
    candidate = newest if newest is not None and newest.number != row.stable_version else None
    gate = await asyncio.to_thread(checklist, page, row, candidate) if candidate else []
    bundle = (
        orjson.dumps(shown.bundle.to_json(), option=orjson.OPT_INDENT_2).decode() if shown else ""
    )
    return page.render(
        "route.html.j2", route=row, versions=versions, shown=shown, bundle=bundle,
        events=events, next_after=events[-1].id if more and events else None,
        candidate=candidate, gate=gate,
    )  # fmt: skip


def side_by_side(diff_text: str) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """A unified diff as rows of (left, right), each (kind, text): kind is "same",
    "removed", "added" or "" (no line on that side)."""
    rows: list[tuple[tuple[str, str], tuple[str, str]]] = []
    removed: list[str] = []
    added: list[str] = []

    def flush() -> None:
        for i in range(max(len(removed), len(added))):
            left = ("removed", removed[i]) if i < len(removed) else ("", "")
            right = ("added", added[i]) if i < len(added) else ("", "")
            rows.append((left, right))
        removed.clear()
        added.clear()

    for line in diff_text.splitlines():
        if line.startswith(("---", "+++", "@@")):
            continue
        if line.startswith("-"):
            removed.append(line[1:])
        elif line.startswith("+"):
            added.append(line[1:])
        else:
            flush()
            text = line[1:] if line.startswith(" ") else line
            rows.append((("same", text), ("same", text)))
    flush()
    return rows


async def diff(page: Page) -> Response:
    row = await resolve(page)
    store = page.deps.routes
    second = _number(page, "to") or row.latest_version
    if second is None:
        raise NotFound(f"route '{row.name}' has no versions")
    after = await asyncio.to_thread(store.version, row.key, second)
    if after is None:
        raise NotFound(f"route '{row.name}' has no version v{second}", param="to")
    first = _number(page, "from") or after.parent
    if first is None:
        raise Invalid(f"v{second} has no parent version; give from=", param="from")
    before = await asyncio.to_thread(store.version, row.key, first)
    if before is None:
        raise NotFound(f"route '{row.name}' has no version v{first}", param="from")
    changes = diff_bundles(before.bundle, after.bundle, f"v{first}", f"v{second}")
    a, b = before.bundle.to_json(), after.bundle.to_json()
    params: list[dict[str, Any]] = []
    pa, pb = a.get("params") or {}, b.get("params") or {}
    for name in sorted({*pa, *pb}):
        params.append({"name": name, "from": pa.get(name), "to": pb.get(name),
                       "changed": pa.get(name) != pb.get(name)})  # fmt: skip
    messages = [
        {"index": m.index, "change": m.change, "role_from": m.role_before,
         "role_to": m.role_after, "rows": side_by_side(m.diff)}
        for m in changes.messages
    ]  # fmt: skip
    versions = await asyncio.to_thread(store.versions, row.key)
    return page.render(
        "diff.html.j2", route=row, before=before, after=after, changes=changes,
        params=params, messages=messages, a=a, b=b, versions=versions,
    )  # fmt: skip
