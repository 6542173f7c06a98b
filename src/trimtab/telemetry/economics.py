"""Unit economics per route, feature or tenant, from the per-minute rollups: cost per
request, per successful request (status < 400), per 1,000 tokens (input and output).

Cost per session is not computed: the rollups do not count sessions (a distinct count of
session ids is not additive across minutes and dimensions), and this reads no request
rows; `SESSIONS_NOTE` says so where the figures are shown.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from trimtab.telemetry.costs import CostRow, costs_by

ECONOMICS_GROUPS = ("route", "feature", "tenant")
SESSIONS_NOTE = (
    "cost per session: not computed — the per-minute rollups do not count sessions, and "
    "unit economics read no request rows"
)


def _per(cost: float, count: int, scale: float = 1.0) -> float | None:
    return round(cost / count * scale, 10) if count else None


def unit_figures(row: CostRow) -> dict[str, Any]:
    """One group's unit costs (None where the denominator is zero)."""
    successful = row.requests - row.errors
    tokens = row.input_tokens + row.output_tokens
    return {
        "requests": row.requests,
        "successful": successful,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cost_usd": round(row.cost_usd, 10),
        "cost_per_request_usd": _per(row.cost_usd, row.requests),
        "cost_per_successful_request_usd": _per(row.cost_usd, successful),
        "cost_per_1k_tokens_usd": _per(row.cost_usd, tokens, 1000.0),
        "cost_per_session_usd": None,
    }


def unit_economics(
    engine: Engine, since: datetime, group_by: str, tenant: str | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(one entry per value of `group_by`, most spend first; the total)."""
    if group_by not in ECONOMICS_GROUPS:
        raise ValueError(f"cannot group unit economics by '{group_by}'")
    rows = costs_by(engine, since, group_by, tenant)
    total = CostRow()
    groups = []
    for value, row in rows.items():
        total.add(row)
        groups.append({group_by: value if value != "" else None, **unit_figures(row)})
    groups.sort(key=lambda g: (-g["cost_usd"], -g["requests"], str(g[group_by])))
    return groups, unit_figures(total)
