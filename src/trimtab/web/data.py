"""/ui/data/series: the overview's charts, from the per-minute rollups the summary reads.

The API's /api/metrics/summary totals a window per group; it has no series over time, so
the charts read the same rollups (TelemetryStore.rollups_since) with the same tenant
scoping, bucketed here.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
from starlette.responses import Response

from trimtab.web.context import Page
from trimtab.web.windows import series as bucketed
from trimtab.web.windows import since, window


async def series(page: Page) -> Response:
    name, span, step = window(page.param("window"))
    tenant = page.viewer.tenant(page.param("tenant"))
    route = page.param("route")
    now = datetime.now(UTC)
    start = since(span, now)
    rows = await asyncio.to_thread(page.deps.telemetry.rollups_since, start, tenant)
    if route is not None:
        rows = [r for r in rows if r[0][6] == route]
    body = {"window": name, "step_minutes": step, "route": route, "tenant": tenant,
            **bucketed(rows, start, now, step)}  # fmt: skip
    return Response(
        orjson.dumps(body),
        headers={"x-trimtab-request-id": page.request_id, "cache-control": "no-store"},
        media_type="application/json",
    )
