"""/ui/slos: each SLO's SLI, standing, error budget and alerts (read_status, as the API
computes it), with the budget's burn-down over the SLO window from the same rollups
(hourly and daily where whole, slo/windows.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from starlette.responses import Response

from trimtab.errors import Forbidden
from trimtab.slo.burn import Counts
from trimtab.slo.kinds import columns, reads_rollups, series
from trimtab.slo.rollups import minute_floor, read_series
from trimtab.slo.spec import SloDefinition
from trimtab.slo.status import read_status
from trimtab.slo.windows import rows
from trimtab.web.context import Deps, Page

POINTS = 120


def burn_down(engine: Engine, slo: SloDefinition, now: datetime) -> dict[str, list[float | None]]:
    """The budget left (a share of the window's allowance so far; below 0 when overspent)
    at POINTS times across the window, from the counts the SLI reads. With a step of an
    hour or more the points are on whole hours (the last one at now), so that the hourly
    and daily rollups serve all but the window's edges (slo/windows.py)."""
    minutes = slo.window_minutes
    step = max(1, minutes // POINTS)
    start = int(now.timestamp()) // 60 * 60 - (minutes - 1) * 60
    edges = [start + (k + step) * 60 for k in range(0, minutes, step)]
    if step >= 60 and reads_rollups(slo.sli):  # hour-aligned points: hour and day rows
        edges = [e // 3600 * 3600 for e in edges[:-1]] + edges[-1:]
        ordered = _by_edges(engine, slo, now, start, edges)
    else:
        ordered = sorted(
            (m.timestamp(), c) for m, c in read_series(engine, slo, now, minutes).items()
        )
    t: list[float | None] = []
    left: list[float | None] = []
    good = valid = 0
    i = 0
    for edge in edges:
        while i < len(ordered) and ordered[i][0] < edge:
            good += ordered[i][1].good
            valid += ordered[i][1].valid
            i += 1
        allowed = (1.0 - slo.objective) * valid  # > 0 once there are events
        t.append(float(edge))
        left.append(1.0 - (valid - good) / allowed if valid else 1.0)  # none spent yet
    return {"t": t, "budget_left": left}


def _by_edges(
    engine: Engine, slo: SloDefinition, now: datetime, start: int, edges: list[int]
) -> list[tuple[float, Counts]]:
    """(a row's start, the SLI's counts in it) of the window's minute, hour and day rows,
    cut at `edges` so that no row spans one."""
    end = minute_floor(now)
    cuts = [datetime.fromtimestamp(e, UTC) for e in [start, *edges] if e <= end.timestamp()]
    with engine.connect() as conn:
        u = rows(conn, slo.selector, end, cuts, columns(slo.sli))
        return [(at.timestamp(), counts) for at, counts in series(conn, u, slo.sli)]


def _statuses(deps: Deps, scope: str | None) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    out = []
    for row in deps.slos.listed(scope):
        status = read_status(deps.engine, row.definition, now).view(row.scope or None)
        burn = burn_down(deps.engine, row.definition, now)
        out.append({**status, "kind": row.definition.sli.describe(), "burn": burn})
    return out


async def index(page: Page) -> Response:
    p = page.viewer.principal
    asked = page.request.query_params.get("tenant")
    if p.is_admin:
        scope = asked
    else:  # the API's rule (api/slos.py): a non-admin reads its own tenant's SLOs
        if asked is not None and asked != p.tenant:
            raise Forbidden(f"a key of tenant '{p.tenant}' may not read the SLOs of '{asked}'")
        scope = p.tenant
    slos = await asyncio.to_thread(_statuses, page.deps, scope)
    return page.render("slos.html.j2", slos=slos)
