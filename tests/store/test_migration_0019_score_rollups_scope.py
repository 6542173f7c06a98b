"""0019_score_rollups_scope: the eval-score rollups written before it (one row for a shared
suite and a tenant's of the same name) get their suite's scope from `online_scores`: a
suite name and tenant scored from one scope keep their counts under it, the rows both
scopes added to are rebuilt per scope from the scores (those retention deleted are not
made again), a row no score explains is the shared suite's; the result is what today's
writer makes of the same scores. The downgrade adds the scopes' rows back into the old
sums under the old key, and the upgrade splits them again. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine, inspect

from trimtab.evals.score_rollups import ROLLUP_KEY, fold
from trimtab.store.engine import _alembic_config, as_utc, make_engine, migrate
from trimtab.store.tables import online_scores

AT = datetime(2026, 12, 1, 10, 5, 20, tzinfo=UTC)
OLD_KEY = tuple(n for n in ROLLUP_KEY if n != "scope")
# score_rollups as 0016 made it: no scope
OLD = sa.table(
    "score_rollups",
    *(sa.column(n) for n in OLD_KEY if n != "minute"),
    sa.column("minute", sa.DateTime(timezone=True)),
    sa.column("count"),
    sa.column("passed"),
)
NEW = sa.table(
    "score_rollups",
    *(sa.column(n) for n in ROLLUP_KEY if n != "minute"),
    sa.column("minute", sa.DateTime(timezone=True)),
    sa.column("count"),
    sa.column("passed"),
)


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    made = make_engine(store_url)
    yield made
    made.dispose()


def score(n: int, suite: str, scope: str, tenant: str, value: float | None, minutes: int = 0,
          **kw: Any) -> dict[str, Any]:  # fmt: skip
    row: dict[str, Any] = {
        "request_id": f"req_{n:08d}", "scorer": "short", "suite": suite, "scope": scope,
        "tenant": tenant, "route": "support", "version": "1", "value": value,
        "passed": value is not None and value >= 0.5, "reason": "",
        "request_at": AT + timedelta(minutes=minutes), "scored_at": AT + timedelta(hours=1),
    }  # fmt: skip
    row.update(kw)
    return row


SCORES = [
    # the shared `live` scores acme's and globex's requests, acme's own `live` acme's
    score(1, "live", "", "acme", 0.9), score(1, "live", "acme", "acme", 0.2),
    score(2, "live", "", "acme", 0.6, 1), score(2, "live", "acme", "acme", 0.6, 1),
    score(3, "live", "", "acme", None, 70), score(3, "live", "acme", "acme", 0.4, 70),
    score(4, "live", "", "globex", 0.3), score(5, "live", "", "globex", 0.8, 2 * 1440),
    # acme's `tone`, no shared one; another scorer of the shared `live`
    score(1, "tone", "acme", "acme", 0.7), score(6, "live", "", "acme", 1.0, scorer="refuses"),
]  # fmt: skip
# a row no stored score explains (kept, as the shared suite's)
STRAY = ("gone", "short", 1, AT.replace(second=0), "support", "acme", "1", 50, 3, 1)
# retention deleted the spans that started before it: AT's day row
RETAINED = AT.replace(minute=0, second=0)


def today(with_scope: bool) -> set[tuple[Any, ...]]:
    """The rows today's writer makes of SCORES (per scope, or summed as before 0019) and
    STRAY, but those retention deleted."""
    rows: dict[tuple[Any, ...], list[int]] = {}
    for key, (n, p) in fold(SCORES).items():
        named = dict(zip(ROLLUP_KEY, key, strict=True))
        if not with_scope:
            named.pop("scope")
        acc = rows.setdefault(tuple(named.values()), [0, 0])
        acc[0] += n
        acc[1] += p
    out = {(*k, n, p) for k, (n, p) in rows.items()}
    out.add((STRAY[0], "", *STRAY[1:]) if with_scope else STRAY)
    at = (ROLLUP_KEY if with_scope else OLD_KEY).index("minute")
    return {r for r in out if r[at] >= RETAINED}


def stored(engine: Engine, table: Any, key: tuple[str, ...]) -> set[tuple[Any, ...]]:
    at = key.index("minute")
    with engine.connect() as conn:
        got = conn.execute(sa.select(*(table.c[n] for n in key), table.c.count, table.c.passed))
        return {(*r[:at], as_utc(r[at]), *r[at + 1 :]) for r in got}


def to(engine: Engine, revision: str, down: bool = False) -> None:
    cfg = _alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(cfg, revision)


def unique(engine: Engine) -> list[str | None]:
    (uq,) = inspect(engine).get_unique_constraints("score_rollups")
    return list(uq["column_names"])


def test_the_rows_from_before_get_their_scope_and_the_downgrade_sums_them(
    engine: Engine,
) -> None:
    to(engine, "0018_online_scores_by_suite")
    assert unique(engine) == list(OLD_KEY)
    before = today(with_scope=False)
    with engine.begin() as conn:  # as the writer left them before 0019, retention since
        conn.execute(online_scores.insert(), SCORES)
        conn.execute(sa.insert(OLD), [dict(zip((*OLD_KEY, "count", "passed"), r, strict=True))
                                      for r in sorted(before, key=str)])  # fmt: skip
    # before: acme's requests under `live` count twice, in rows the two suites share
    live_acme = [r for r in before if r[:3] == ("live", "short", 1) and r[5] == "acme"]
    assert sum(r[-2] for r in live_acme) == 6

    migrate(engine)
    assert unique(engine) == list(ROLLUP_KEY)
    after = today(with_scope=True)
    assert stored(engine, NEW, ROLLUP_KEY) == after
    # the minute and the hour where both suites scored acme's request 2 at 0.6: one row
    # each before, two now (each bin of either scope was a row of its own already)
    assert len(after) == len(before) + 2
    # AT's day row, deleted by retention, is not made again; globex's later day is shared
    assert not any(r[3] == 1440 and r[4] < RETAINED for r in stored(engine, NEW, ROLLUP_KEY))
    day = AT.replace(hour=0, minute=0, second=0) + timedelta(days=2)
    assert ("live", "", "short", 1440, day, "support", "globex", "1", 80, 1, 1) in after
    assert ("tone", "acme", "short", 1, AT.replace(second=0), "support", "acme", "1", 70,
            1, 1) in after  # fmt: skip

    to(engine, "0018_online_scores_by_suite", down=True)
    assert unique(engine) == list(OLD_KEY)
    assert "scope" not in {c["name"] for c in inspect(engine).get_columns("score_rollups")}
    assert stored(engine, OLD, OLD_KEY) == before
    migrate(engine)
    assert stored(engine, NEW, ROLLUP_KEY) == after
