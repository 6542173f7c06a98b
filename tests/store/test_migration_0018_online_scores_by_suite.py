"""0018_online_scores_by_suite: the rows from before keep their suite and scope under the
new key (request_id, scope, suite, scorer), a second suite's score of a scored request is
stored after it, and the downgrade restores the old key, keeping the first suite's score
of each request and scorer (and the upgrade rekeys again). SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError

from trimtab.evals.score_rollups import store_scores
from trimtab.store.engine import _alembic_config, make_engine, migrate
from trimtab.store.tables import online_scores

AT = datetime(2026, 12, 1, 10, 5, tzinfo=UTC)


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    made = make_engine(store_url)
    yield made
    made.dispose()


def score(n: int, scorer: str, suite: str = "live", scope: str = "") -> dict[str, Any]:
    return {
        "request_id": f"req_{n:08d}", "scorer": scorer, "suite": suite, "scope": scope,
        "tenant": "acme", "route": "support", "version": "1", "value": n / 10, "passed": True,
        "reason": "r", "request_at": AT, "scored_at": AT,
    }  # fmt: skip


def key(engine: Engine) -> list[str]:
    return list(inspect(engine).get_pk_constraint("online_scores")["constrained_columns"])


def index(engine: Engine) -> dict[str | None, list[str | None]]:
    return {ix["name"]: ix["column_names"] for ix in inspect(engine).get_indexes("online_scores")}


def rows(engine: Engine) -> list[tuple[Any, ...]]:
    s = online_scores.c
    query = select(s.request_id, s.scope, s.suite, s.scorer, s.value).order_by(
        s.request_id, s.scope, s.suite, s.scorer
    )
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


def to_before(engine: Engine) -> None:
    """The schema just before 0018: 0017 and the branch that made online_scores."""
    cfg = _alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0017_rollup_refusals")
        command.upgrade(cfg, "0012_online_scores")


def test_the_rows_keep_their_suite_under_the_new_key_and_the_old_one_again(
    engine: Engine,
) -> None:
    to_before(engine)
    assert key(engine) == ["request_id", "scorer"]
    with engine.begin() as conn:
        conn.execute(online_scores.insert(), [score(1, "short"), score(1, "refuses"),
                                              score(2, "short", "tone", "acme")])  # fmt: skip
    with pytest.raises(IntegrityError), engine.begin() as conn:  # the old key: one per scorer
        conn.execute(online_scores.insert(), [score(1, "short", "tone")])

    migrate(engine)
    assert key(engine) == ["request_id", "scope", "suite", "scorer"]
    assert index(engine) == {"ix_online_scores_route_time": ["route", "version", "request_at"]}
    before = [
        ("req_00000001", "", "live", "refuses", 0.1),
        ("req_00000001", "", "live", "short", 0.1),
        ("req_00000002", "acme", "tone", "short", 0.2),
    ]
    assert rows(engine) == before
    with engine.begin() as conn:  # another suite's `short` of request 1, and acme's `live`
        got = store_scores(conn, [score(1, "short", "tone"), score(1, "short", "live", "acme"),
                                  score(1, "short")])  # fmt: skip
    assert got == 2  # the shared live's short was there already
    assert len(rows(engine)) == 5

    cfg = _alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0017_rollup_refusals")
    assert key(engine) == ["request_id", "scorer"]
    # the old key holds one score per request and scorer: the first suite's by scope, name
    assert rows(engine) == before
    assert index(engine) == {"ix_online_scores_route_time": ["route", "version", "request_at"]}
    migrate(engine)
    assert key(engine) == ["request_id", "scope", "suite", "scorer"]
    assert rows(engine) == before
