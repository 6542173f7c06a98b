"""What the SLA report (slo/report.py) is computed from, read from the store: the SLIs'
per-minute counts (slo/rollups.read_series), the month's sums per route and feature from
the per-minute rollups, the feedback counts per route, and the incidents when this store
has them. Never the request rows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, MetaData, Table, case, func, inspect, or_, select

from trimtab.slo.report import (
    Feedback,
    Incident,
    Month,
    Report,
    SloMonth,
    Usage,
    build_report,
    slo_month,
)
from trimtab.slo.rollups import read_series
from trimtab.slo.store import SloRow
from trimtab.store.engine import as_utc
from trimtab.store.tables import feedback, rollups
from trimtab.telemetry.session_reads import session_rows


def read_usage(
    engine: Engine, month: Month, routes: Iterable[str], tenant: str | None
) -> dict[str, dict[str, Usage]]:
    """route -> feature -> sums over the month ("" for no route, no feature)."""
    c = rollups.c
    wanted = sorted(set(routes))
    ok = c.status_code < 400
    query = (
        select(
            c.route,
            c.feature,
            func.sum(c.count),
            func.sum(case((ok, c.count), else_=0)),
            func.sum(c.input_tokens),
            func.sum(c.output_tokens),
            func.sum(c.cost_usd),
        )
        .where(c.minute >= month.start, c.minute < month.end, c.route.in_(wanted))
        .group_by(c.route, c.feature)
    )
    if tenant is not None:
        query = query.where(c.tenant == tenant)
    out: dict[str, dict[str, Usage]] = {}
    with engine.connect() as conn:
        for route, feature, n, good, tokens_in, tokens_out, cost in conn.execute(query):
            out.setdefault(str(route), {})[str(feature)] = Usage(
                int(n or 0),
                int(good or 0),
                int(tokens_in or 0),
                int(tokens_out or 0),
                float(cost or 0.0),
            )
        # the session sums and sketches, from the day, hour and minute rows that cover the
        # month (production traffic; a union of sketches is not a SQL sum)
        got = session_rows(conn, month.start, month.end, ("route", "feature"), tenant, wanted)
        for route, feature, s_n, s_cost, raw in got:
            usage = out.setdefault(str(route), {}).setdefault(str(feature), Usage())
            usage.session_requests += int(s_n)
            usage.session_cost_usd += float(s_cost)
            usage.sessions.add(raw)
    return out


def read_feedback(
    engine: Engine, month: Month, routes: Iterable[str], tenant: str | None
) -> dict[str, Feedback]:
    """route -> the month's ratings: rated, positive (not negative), escalated."""
    c = feedback.c
    wanted = sorted(set(routes))
    route = func.coalesce(c.route, "")
    query = (
        select(
            route,
            func.count(),
            func.sum(case((c.negative.is_(False), 1), else_=0)),
            func.sum(case((c.escalated.is_(True), 1), else_=0)),
        )
        .where(c.at >= month.start, c.at < month.end, route.in_(wanted))
        .group_by(route)
    )
    if tenant is not None:
        query = query.where(c.tenant == tenant)
    with engine.connect() as conn:
        return {
            str(r): Feedback(int(n), int(pos or 0), int(esc or 0))
            for r, n, pos, esc in conn.execute(query)
        }


def read_incidents(
    engine: Engine, month: Month, routes: Iterable[str], tenant: str | None
) -> dict[str, list[Incident]] | None:
    """route -> the incidents open at any time in the month that name it; None when this
    store has no incidents table (a version without incidents/)."""
    if not inspect(engine).has_table("incidents"):
        return None
    table = Table("incidents", MetaData(), autoload_with=engine)
    c = table.c
    query = select(
        c.id, c.title, c.type, c.severity, c.state, c.routes, c.opened_at, c.resolved_at
    ).where(c.opened_at < month.end, or_(c.resolved_at.is_(None), c.resolved_at >= month.start))
    if tenant is not None:
        query = query.where(c.scope == tenant)
    wanted = set(routes)
    out: dict[str, list[Incident]] = {}
    with engine.connect() as conn:
        for row in conn.execute(query.order_by(c.opened_at, c.id)):
            named: Any = row.routes or []
            incident = Incident(
                str(row.id),
                str(row.title),
                str(row.type),
                int(row.severity),
                str(row.state),
                as_utc(row.opened_at),
                as_utc(row.resolved_at) if row.resolved_at is not None else None,
            )
            for route in named if isinstance(named, list) else []:
                if route in wanted:
                    out.setdefault(str(route), []).append(incident)
    return out


def read_slo_month(engine: Engine, row: SloRow, month: Month) -> SloMonth:
    last = month.end - timedelta(minutes=1)
    series = read_series(engine, row.definition, last, month.minutes)
    return slo_month(row.definition, row.scope, series, month)


def read_report(
    engine: Engine,
    rows: list[SloRow],
    month: Month,
    tenant: str | None,
) -> Report:
    """The month's report of these SLOs (a running month: up to now); `tenant` limits the
    KPIs, feedback and incidents to one tenant's."""
    months = [read_slo_month(engine, r, month) for r in rows]
    routes = {r.definition.selector.route or "" for r in rows}
    return build_report(
        month,
        months,
        read_usage(engine, month, routes, tenant),
        read_feedback(engine, month, routes, tenant),
        read_incidents(engine, month, routes, tenant),
    )
