"""The eval-score SLI read from `score_rollups` (evals/score_rollups.py), never from
`online_scores` or the request rows.

Valid: the sampled requests the suite's scorer scored (an answer it could not score, its
value null, is in neither count). Good: a value at or above `threshold`, or, without a
threshold, the scorer's own `passed`. Scores count in the minute of their request, so a
window judges the requests made in it; a score that arrives later changes the minute of
its request. The rollups keep values in hundredths, so a threshold must be a multiple of
0.01 in [0, 1] (`threshold_bin` refuses any other), and then the counts are exact.

The selector can narrow by route, tenant and version only (`SCORE_SELECTOR_KEYS`): scores
carry no model and no feature (eval traffic is never scored).

A suite is its scope and name (a shared suite and a tenant's may share a name; the rollups
keep each one's rows, migration 0019), so every read names the scope too: `suite_scope`
finds the one an SLI means (`suite_scope: shared`, the shared suite; `tenant`, the SLO's
tenant's own). The apply (api/slos.py) stores an eval-score SLO with its `suite_scope`
resolved; without one (an SLO stored before the apply did so, or a definition parsed and
read directly) it means its tenant's own suite of that name if it has one, else the
shared one, as a tenant's route is found by name, looked up in `eval_suites` at each read.

The windows read each window's whole UTC days from the day rows, the whole hours left
from the hour rows and the rest from the minute rows (`slo.windows.plan`, each window cut
at its own first minute), in one query: the writer adds each score to all three, so they
are always the same sums (a 30-day window reads about 30 day rows per bin instead of
43,200 minutes'; docs/benchmarks.md). The series reads the minute rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, and_, case, false, func, or_, select, union_all

from trimtab.slo.burn import Counts
from trimtab.slo.spec import FILE_SELECTORS, Selector, SuiteScope, score_bin
from trimtab.slo.windows import Ranges, cutoffs, plan
from trimtab.store.engine import as_utc
from trimtab.store.tables import eval_suites, score_rollups
from trimtab.types import SHARED, Scope

SCORE_SELECTOR_KEYS = FILE_SELECTORS["eval_score"] | {"version"}
SPANS = (1, 60, 24 * 60)  # its rows' spans, minutes: `plan`'s minutes, hours and days


def threshold_bin(threshold: float) -> int:
    """The first value bin at or above `threshold`; ValueError unless it is a multiple of
    0.01 in [0, 1]."""
    k = score_bin(threshold)
    if k is None:
        raise ValueError(f"threshold {threshold} is not a multiple of 0.01 in [0, 1]")
    return k


def suite_scope(
    conn: Connection, suite: str, asked: SuiteScope | None, tenant: str | None
) -> Scope | None:
    """The scope of the suite `suite` an SLI of an SLO of `tenant` (its selector's) means:
    `asked` "shared", the shared one; "tenant", the tenant's own (None for an SLO without
    a tenant, which the apply refuses); None, the tenant's own if it has applied one of
    that name, else the shared one. The apply stores `asked` resolved; None is kept for
    the SLOs stored before it did, which go on being resolved here at each read."""
    if asked == "shared" or (asked is None and tenant is None):
        return SHARED
    if asked == "tenant" or tenant is None:
        return tenant
    s = eval_suites.c
    own = conn.execute(select(s.scope).where(s.scope == tenant, s.name == suite)).first()
    return tenant if own is not None else SHARED


def _where(
    selector: Selector, suite: str, scope: Scope, scorer: str, span: int, ranges: Ranges
) -> list[ColumnElement[bool]]:
    names = ("route", "model", "tenant", "feature", "version")
    used = {k for k in names if getattr(selector, k) is not None}
    if used - SCORE_SELECTOR_KEYS:
        others = ", ".join(sorted(used - SCORE_SELECTOR_KEYS))
        raise ValueError(f"an eval-score SLI cannot select by {others}")
    c = score_rollups.c
    within = or_(false(), *(and_(c.minute >= a, c.minute < b) for a, b in ranges))
    out = [c.suite == suite, c.scope == scope, c.scorer == scorer, c.span == span, within]
    out.append(c.bin >= 0)
    for name in sorted(used):
        out.append(c[name] == getattr(selector, name))
    return out


def _good(threshold: float | None) -> ColumnElement[int]:
    c = score_rollups.c
    if threshold is None:
        return c.passed
    return case((c.bin >= threshold_bin(threshold), c.count), else_=0)


def score_windows(
    conn: Connection,
    selector: Selector,
    suite: str,
    scorer: str,
    threshold: float | None,
    end: datetime,
    spans: Sequence[int],
    *,
    scope: Scope,
) -> dict[int, Counts]:
    """The counts over each window of `spans` minutes up to `end` (included) of the suite
    `suite` of `scope`, in one query of the day, hour and minute rows."""
    spans = sorted(set(spans))
    cuts = cutoffs(end, spans)
    c = score_rollups.c
    good = _good(threshold)
    parts = [
        select(c.minute.label("at"), c.count.label("n"), good.label("good")).where(
            *_where(selector, suite, scope, scorer, span, [r])
        )
        for span, ranges in zip(SPANS, plan(end, cuts.values(), {}), strict=True)
        for r in ranges
    ]
    u = union_all(*parts).subquery()
    columns = []
    for w in spans:
        recent = u.c.at >= cuts[w]
        columns.append(func.sum(case((recent, u.c.n), else_=0)))
        columns.append(func.sum(case((recent, u.c.good), else_=0)))
    row = conn.execute(select(*columns)).one()
    return {w: Counts(int(row[2 * i + 1] or 0), int(row[2 * i] or 0)) for i, w in enumerate(spans)}


def score_series(
    conn: Connection,
    selector: Selector,
    suite: str,
    scorer: str,
    threshold: float | None,
    start: datetime,
    end: datetime,
    *,
    scope: Scope,
) -> dict[datetime, Counts]:
    """The counts per minute from `start` to `end` (included) of the suite `suite` of
    `scope`; minutes without a valid score are absent."""
    c = score_rollups.c
    query = (
        select(c.minute, func.sum(c.count), func.sum(_good(threshold)))
        .where(*_where(selector, suite, scope, scorer, 1, [(start, end + timedelta(minutes=1))]))
        .group_by(c.minute)
    )
    return {
        as_utc(minute): Counts(int(good), int(valid))
        for minute, valid, good in conn.execute(query)
        if valid
    }
