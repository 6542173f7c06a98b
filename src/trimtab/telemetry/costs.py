"""Spend, requests and tokens per dimension, summed from the per-minute rollups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from trimtab.store.engine import as_utc
from trimtab.store.tables import rollups
from trimtab.telemetry.production import production

COST_GROUPS = ("model", "tenant", "feature", "route", "day")


@dataclass(slots=True)
class CostRow:
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, other: CostRow) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd


def costs_by(
    engine: Engine, since: datetime, group_by: str, tenant: str | None
) -> dict[str, CostRow]:
    """Totals per value of `group_by` ("" = none) over rollup minutes from `since` on.

    `day` sums the minutes of each UTC date: the database groups by minute (at most 44,640
    rows for 31 days) and the dates are formed here, the same way on SQLite and PostgreSQL.
    """
    if group_by not in COST_GROUPS:
        raise ValueError(f"cannot group costs by '{group_by}'")
    column = rollups.c.minute if group_by == "day" else rollups.c[group_by]
    query = (
        select(
            column,
            func.sum(rollups.c.count),
            func.sum(rollups.c.errors),
            func.sum(rollups.c.input_tokens),
            func.sum(rollups.c.output_tokens),
            func.sum(rollups.c.cost_usd),
        )
        .where(rollups.c.minute >= since, production(rollups.c.feature))
        .group_by(column)
    )
    if tenant is not None:
        query = query.where(rollups.c.tenant == tenant)
    out: dict[str, CostRow] = {}
    with engine.connect() as conn:
        for value, count, errors, tokens_in, tokens_out, cost in conn.execute(query):
            label = as_utc(value).date().isoformat() if group_by == "day" else str(value)
            row = CostRow(
                int(count or 0),
                int(errors or 0),
                int(tokens_in or 0),
                int(tokens_out or 0),
                float(cost or 0.0),
            )
            if label in out:
                out[label].add(row)
            else:
                out[label] = row
    return out
