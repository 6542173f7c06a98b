"""/ui/data/series: the overview's charts, from the per-minute rollups.

The API's /api/metrics/summary totals a window per group; it has no series over time, so
the charts read the same rollups with the same tenant scoping (web/rollup_reads.py),
summed per bucket.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
from starlette.responses import Response

from trimtab.web.context import Page
from trimtab.web.rollup_reads import by_bucket
from trimtab.web.rollup_reads import series as bucketed
from trimtab.web.windows import since, window


async def series(page: Page) -> Response:
    name, span, step = window(page.param("window"))
    tenant = page.viewer.tenant(page.param("tenant"))
    route = page.param("route")
    now = datetime.now(UTC)
    start = since(span, now)
    sums = await asyncio.to_thread(by_bucket, page.deps.engine, start, step, tenant, route)
    body = {"window": name, "step_minutes": step, "route": route, "tenant": tenant,
            **bucketed(sums, start, now, step)}  # fmt: skip
    return Response(
        orjson.dumps(body),
        headers={"x-trimtab-request-id": page.request_id, "cache-control": "no-store"},
        media_type="application/json",
    )
