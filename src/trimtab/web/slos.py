"""/ui/slos: each SLO's SLI, standing, error budget and alerts (read_status, as the API
computes it), with the budget's burn-down over the SLO window from the same rollups."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from trimtab.errors import Forbidden
from trimtab.slo.rollups import read_series
from trimtab.slo.spec import SloDefinition
from trimtab.slo.status import read_status
from trimtab.web.context import Deps, Page

POINTS = 120


def burn_down(deps: Deps, slo: SloDefinition, now: datetime) -> dict[str, list[float | None]]:
    """The budget left (a share of the window's allowance so far; below 0 when overspent)
    at POINTS times across the window, from the per-minute counts the SLI reads."""
    minutes = slo.window_minutes
    per_minute = read_series(deps.engine, slo, now, minutes)
    ordered = sorted(per_minute.items())
    step = max(1, minutes // POINTS)
    start = int(now.timestamp()) // 60 * 60 - (minutes - 1) * 60
    t: list[float | None] = []
    left: list[float | None] = []
    good = valid = 0
    i = 0
    for k in range(0, minutes, step):
        edge = start + (k + step) * 60
        while i < len(ordered) and ordered[i][0].timestamp() < edge:
            good += ordered[i][1].good
            valid += ordered[i][1].valid
            i += 1
        allowed = (1.0 - slo.objective) * valid  # > 0 once there are events
        t.append(float(edge))
        left.append(1.0 - (valid - good) / allowed if valid else 1.0)  # none spent yet
    return {"t": t, "budget_left": left}


def _statuses(deps: Deps, scope: str | None) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    out = []
    for row in deps.slos.listed(scope):
        status = read_status(deps.engine, row.definition, now).view(row.scope or None)
        out.append({**status, "burn": burn_down(deps, row.definition, now)})
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
