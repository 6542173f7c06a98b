"""/ui: per route, traffic, errors, p95, spend today against its budget, SLOs and the
active rollout; charts of the chosen window below (fed by /ui/data/series)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from trimtab.rollouts.row import RolloutRow
from trimtab.slo.status import SloStatus, read_status
from trimtab.web import alerts
from trimtab.web.context import Deps, Page, Viewer
from trimtab.web.rollup_reads import by_route, midnight, spend_by_route
from trimtab.web.windows import WINDOWS, since, window


@dataclass(slots=True)
class RouteLine:
    name: str
    tenant: str | None = None
    requests: int = 0
    error_rate: float | None = None
    p95_ms: float | None = None
    spend_today: float = 0.0
    budget: dict[str, Any] | None = None  # {"limit_usd", "used", "period"}
    slos: list[SloStatus] = field(default_factory=list)
    rollout: RolloutRow | None = None


def _visible(viewer: Viewer, scope: str) -> bool:
    p = viewer.principal
    return p.is_admin or scope in ("", p.tenant)


def _gather(deps: Deps, viewer: Viewer, tenant: str | None, span: Any) -> list[RouteLine]:
    """Blocking: the store reads behind the table (rollups, routes, SLOs, rollouts)."""
    now = datetime.now(UTC)
    window_by = by_route(deps.engine, since(span, now), tenant)
    today_by = spend_by_route(deps.engine, midnight(now), tenant)  # what /api/costs sums
    p = viewer.principal
    lines: dict[str, RouteLine] = {}
    for r in deps.routes.list_routes(p.tenant, p.is_admin):
        lines.setdefault(r.name, RouteLine(r.name, r.tenant))
    for name in (*window_by, *today_by):
        lines.setdefault(name, RouteLine(name))
    for name, line in lines.items():
        w = window_by.get(name)
        if w is not None and w.requests:
            line.requests = w.requests
            line.error_rate = w.error_rate
            line.p95_ms = w.p95_ms
        line.spend_today = today_by.get(name, 0.0)
    # the SLOs the API lists for this key, as of the gauges' last refresh (each reads its
    # whole window of rollups: once a minute in the background, not once a page); one
    # applied or changed since is read now
    cached = {(scope, st.slo.name): st for scope, st in deps.slo_gauges.latest}
    for row in deps.slos.listed(None if p.is_admin else p.tenant):
        route = row.definition.selector.route
        if route not in lines:
            continue
        status = cached.get((row.scope, row.definition.name))
        if status is None or status.slo != row.definition:
            status = read_status(deps.engine, row.definition, now)
        lines[route].slos.append(status)
    for ro in deps.rollouts.active():
        if ro.route in lines and _visible(viewer, ro.scope):
            lines[ro.route].rollout = ro
    return sorted(lines.values(), key=lambda line: (line.name == "", -line.requests, line.name))


def _attention(page: Page) -> tuple[list[Any], list[dict[str, Any]]]:
    """Blocking: the firing alerts and open incidents this viewer sees (the top of the page)."""
    firing: list[Any] = []
    if page.deps.alerts is not None:
        scan = 50 if page.viewer.is_admin else 5000
        visible = alerts.visible(page)
        found = page.deps.alerts.alerts(states=("firing",), limit=scan)
        firing = [a for a in found if visible(a)][:50]
    opened: list[dict[str, Any]] = []
    if page.deps.incidents is not None:
        p = page.viewer.principal
        scope = None if p.is_admin else p.tenant
        opened = [i.view() for i in page.deps.incidents.listed(scope, "open", None, 20)]
    return firing, opened


async def overview(page: Page) -> Response:
    name, span, _ = window(page.param("window"))
    tenant = page.viewer.tenant(page.param("tenant"))
    lines = await asyncio.to_thread(_gather, page.deps, page.viewer, tenant, span)
    budgets = await page.deps.policy.report.budgets(tenant)
    for b in budgets:
        kind, _, _ = b["scope"].partition(":")
        if kind != "route" or b["period"] != "day":
            continue
        for entry in b["values"]:
            route = entry["scope"].partition(":")[2]
            for line in lines:
                if line.name == route:
                    line.budget = {"limit_usd": b["limit_usd"], "used": entry["used"]}
    firing, open_incidents = await asyncio.to_thread(_attention, page)
    filters = {"window": name, "tenant": page.param("tenant")}
    return page.render(
        "overview.html.j2", lines=lines, window=name, windows=list(WINDOWS),
        filters=filters, tenant=tenant, firing=firing, open_incidents=open_incidents,
    )  # fmt: skip
