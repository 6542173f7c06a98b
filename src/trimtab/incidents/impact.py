"""What an incident touched, read from telemetry's per-minute rollups (`rollups_minute`):
requests, failed requests, tenants, spend, and the minutes that went bad. Users are the one
figure the rollups do not carry: they are counted over the failed request rows of the
window (a bounded read on the route index).

A request is bad when it was answered 5xx (a provider failure, a timeout, the gateway's
own); client errors (4xx, a client gone) are the caller's and not counted, as the
availability SLI counts them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, case, false, func, select

from trimtab.incidents.model import Impact
from trimtab.store.engine import as_utc
from trimtab.store.tables import requests, rollups

LOOKBACK = timedelta(hours=6)  # how far before the detection a first bad minute is sought


@dataclass(frozen=True, slots=True)
class Affected:
    """What the incident names: its routes, else its models, else its tenants; `scope` a
    tenant limits every count to that tenant's traffic ("" = every tenant's)."""

    routes: Sequence[str]
    models: Sequence[str]
    tenants: Sequence[str]
    scope: str = ""

    def rollup_where(self) -> list[ColumnElement[bool]]:
        c = rollups.c
        out: list[ColumnElement[bool]] = []
        if self.routes:
            out.append(c.route.in_(sorted(self.routes)))
        elif self.models:
            out.append(c.model.in_(sorted(self.models)))
        elif self.tenants:
            out.append(c.tenant.in_(sorted(self.tenants)))
        else:
            out.append(false())  # names nothing: nothing is measured
        if self.routes and self.models:
            out.append(c.model.in_(sorted(self.models)))
        if self.scope:
            out.append(c.tenant == self.scope)
        return out

    def request_where(self) -> list[ColumnElement[bool]]:
        r = requests.c
        out: list[ColumnElement[bool]] = []
        if self.routes:
            out.append(r.route.in_(sorted(self.routes)))
        elif self.models:
            out.append(r.request_model.in_(sorted(self.models)))
        elif self.tenants:
            out.append(r.tenant.in_(sorted(self.tenants)))
        else:
            out.append(false())
        if self.scope:
            out.append(r.tenant == self.scope)
        return out


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def bad_minutes(
    engine: Engine, affected: Affected, start: datetime, end: datetime
) -> list[datetime]:
    """The minutes in [start, end] with at least one bad request, oldest first."""
    c = rollups.c
    query = (
        select(c.minute)
        .where(c.minute >= _minute(start), c.minute <= _minute(end), c.status_code >= 500)
        .where(*affected.rollup_where())
        .group_by(c.minute)
        .having(func.sum(c.count) > 0)
        .order_by(c.minute)
    )
    with engine.connect() as conn:
        return [as_utc(m) for (m,) in conn.execute(query)]


def measure(engine: Engine, affected: Affected, start: datetime, end: datetime) -> Impact:
    """The incident's impact over the minutes from `start`'s to `end`'s, both included."""
    c = rollups.c
    bad = c.status_code >= 500
    where = [c.minute >= _minute(start), c.minute <= _minute(end), *affected.rollup_where()]
    totals = select(
        func.coalesce(func.sum(c.count), 0),
        func.coalesce(func.sum(case((bad, c.count), else_=0)), 0),
        func.coalesce(func.sum(c.cost_usd), 0.0),
        func.coalesce(func.sum(case((bad, c.cost_usd), else_=0.0)), 0.0),
    ).where(*where)
    per_tenant = (
        select(c.tenant, func.sum(case((bad, c.count), else_=0)))
        .where(*where)
        .group_by(c.tenant)
        .having(func.sum(c.count) > 0)
    )
    r = requests.c
    users = (
        select(func.count(func.distinct(r.user_id)))
        .where(r.started_at >= start, r.started_at < end + timedelta(minutes=1))
        .where(r.status_code >= 500, r.user_id.is_not(None))
        .where(*affected.request_where())
    )
    with engine.connect() as conn:
        total, failed, spend, failed_spend = conn.execute(totals).one()
        tenants = conn.execute(per_tenant).all()
        users_failed = int(conn.execute(users).scalar_one() or 0)
    return Impact(
        start=start,
        end=end,
        requests=int(total),
        failed=int(failed),
        tenants=len(tenants),
        tenants_failed=sum(1 for _, n in tenants if n and int(n) > 0),
        users_failed=users_failed,
        spend_usd=float(spend),
        failed_spend_usd=float(failed_spend),
        scoped=bool(affected.scope),
    )


def window_of(first_bad: datetime | None, detected: datetime, resolved: datetime | None,
              now: datetime) -> tuple[datetime, datetime]:  # fmt: skip
    """The incident's window: from its first bad minute (else its detection) to its
    resolution (else now)."""
    start = first_bad or detected
    end = resolved or now
    return start, max(start, end)


__all__ = ["LOOKBACK", "Affected", "bad_minutes", "measure", "window_of"]
