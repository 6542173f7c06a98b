"""The online scores folded into `score_rollups` (the eval-score SLI's rollups, issue 14),
in the transaction that stores them in `online_scores`.

A score counts in the minute of its REQUEST (`request_at`), not of its scoring, so a
window's SLI is over the requests made in it, however late their scores arrive. Each row
of `score_rollups` is one span of requests' time (`span` minutes from `minute`: the
minute, its hour and its UTC day; each score is added to all three in the same
statement, so the hours and days are always the sums of their minutes and need no
compaction, late scores included), suite (its name and scope), scorer, route, tenant and
version, and one
value bin: the value in hundredths, floor(round(value * 100, 6)) clamped to 0-100 (so a
threshold that is a multiple of 0.01 splits the bins exactly; the rounding to 1e-6 keeps
0.29 * 100 = 28.999999999999996 in bin 29), or -1 for an answer the scorer could not
score (value null: no SLI counts it). Only the `online_scores` rows the insert made are
folded, so a score stored twice (two processes, a retried cycle) counts once.

A score is one per request, suite (its scope and name) and scorer (`online_scores`' key,
migration 0018), so two suites with a scorer of the same name each add their score of a
request to their own suite's rows. The rollups name the suite by scope and name too
(migration 0019): a shared suite and a tenant's of the same name add to rows of their
own, and the SLI of either counts only its suite's scores (slo/score_reads.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from trimtab.store.engine import as_utc
from trimtab.store.tables import online_scores, score_rollups
from trimtab.telemetry.retention import Tenants

UNSCORED = -1  # the bin of a null value
BINS = 100  # hundredths: bins 0..100
SPANS = (1, 60, 24 * 60)  # minutes: each score is in its minute's, hour's and day's row
# a score's row in `online_scores` (its primary key, migration 0018): one per suite
KEY = ("request_id", "scope", "suite", "scorer")
# (suite, scope, scorer, span, start, route, tenant, version, bin): uq_score_rollups' order
ScoreKey = tuple[str, str, str, int, datetime, str, str, str, int]
ROLLUP_KEY = ("suite", "scope", "scorer", "span", "minute", "route", "tenant", "version", "bin")


def value_bin(value: float | None) -> int:
    """The bin of a score: its hundredths, rounded down (to within 1e-6), 0-100; -1 for none."""
    if value is None or math.isnan(value):
        return UNSCORED
    return min(BINS, max(0, math.floor(round(value * BINS, 6))))


def fold(rows: Iterable[Mapping[str, Any]]) -> dict[ScoreKey, list[int]]:
    """`online_scores` rows as deltas of `score_rollups`: key -> [count, passed]."""
    out: dict[ScoreKey, list[int]] = {}
    for r in rows:
        minute = as_utc(r["request_at"]).replace(second=0, microsecond=0)
        starts = (minute, minute.replace(minute=0), minute.replace(hour=0, minute=0))
        b = value_bin(r["value"])
        passed = 1 if r["passed"] and r["value"] is not None else 0
        for span, start in zip(SPANS, starts, strict=True):
            key = (r["suite"], r["scope"], r["scorer"], span, start, r["route"],
                   r["tenant"], r["version"] or "", b)  # fmt: skip
            acc = out.setdefault(key, [0, 0])
            acc[0] += 1
            acc[1] += passed
    return out


def store_scores(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert `online_scores` rows (a row already there is left as it is) and add the new
    ones to `score_rollups`; the number of new rows."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    key = [online_scores.c[n] for n in KEY]
    new: set[tuple[str, ...]] = set()
    for start in range(0, len(rows), 500):
        query = (
            insert(online_scores)
            .values(list(rows[start : start + 500]))
            .on_conflict_do_nothing()
            .returning(*key)
        )
        new.update(tuple(r) for r in conn.execute(query))
    # each new row once: a row given twice in `rows` is inserted once and returned once
    deltas = fold(r for r in _once(rows) if tuple(r[n] for n in KEY) in new)
    _merge(conn, deltas)
    return len(new)


def _once(rows: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    seen: set[tuple[str, ...]] = set()
    for r in rows:
        k = tuple(r[n] for n in KEY)
        if k not in seen:
            seen.add(k)
            yield r


def _merge(conn: Connection, deltas: Mapping[ScoreKey, list[int]]) -> None:
    if not deltas:
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    c = score_rollups.c
    names = ROLLUP_KEY
    values = [
        {**dict(zip(names, key, strict=True)), "count": n, "passed": p}
        for key, (n, p) in sorted(deltas.items())  # one order for every writer: no deadlock
    ]
    for start in range(0, len(values), 500):
        query = insert(score_rollups).values(values[start : start + 500])
        conn.execute(
            query.on_conflict_do_update(
                index_elements=[c[n] for n in names],
                set_={
                    "count": c.count + query.excluded.count,
                    "passed": c.passed + query.excluded.passed,
                },
            )
        )


def delete_score_rollups(engine: Engine, tenants: Tenants, before: datetime, limit: int) -> int:
    """Retention (privacy/retention.py, with the rollups' TTL): up to `limit` rows whose
    span starts before `before` (a day row goes with its first minute)."""
    c = score_rollups.c
    picked = select(c.id).where(c.minute < before, tenants.where(c.tenant)).limit(limit)
    with engine.begin() as conn:
        result = conn.execute(delete(score_rollups).where(c.id.in_(picked.scalar_subquery())))
    return int(result.rowcount or 0)
