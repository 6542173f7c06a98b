"""An eval run of the candidate (feature `eval:RUN`) during its rollout moves no canary
arm: the analysis reads production traffic only (rollouts/arms.py)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from tests.rollouts.support import ROUTE, start
from trimtab.rollouts.store import RolloutStore
from trimtab.store.tables import online_scores, requests


def rows(version: int, n: int, status: int, feature: str | None) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "id": "req_" + secrets.token_hex(8),
            "started_at": now,
            "ended_at": now,
            "api": "openai",
            "operation": "chat",
            "tenant": "acme",
            "route": ROUTE,
            "version": f"v{version}",
            "status_code": status,
            "duration_ms": 100.0,
            "overhead_ms": 0.5,
            "cost_usd": 0.001,
            "streamed": False,
            "feature": feature,
        }
        for _ in range(n)
    ]


def test_an_eval_runs_failures_are_not_the_candidates(engine: Engine, store: RolloutStore) -> None:
    ro = start(store)
    with engine.begin() as conn:
        conn.execute(insert(requests), rows(1, 30, 200, None))
        conn.execute(insert(requests), rows(2, 10, 200, "support"))
        conn.execute(insert(requests), rows(2, 25, 500, "eval:run_0123456789abcdef"))
    stable, candidate = store.arms.between(ro, ro.started_at - timedelta(minutes=1), None)
    assert (stable.n, stable.errors) == (30, 0)
    assert (candidate.n, candidate.errors) == (10, 0)


def test_each_arms_online_quality(engine: Engine, store: RolloutStore) -> None:
    """The data of the canary metric quality_score: each arm's online scores."""
    ro = start(store)
    now = datetime.now(UTC)
    scores = [(f"req_s{i}", "v1", 1.0, True) for i in range(4)] + [
        ("req_c0", "v2", 1.0, True), ("req_c1", "v2", 0.0, False), ("req_c1x", "v2", None, None)
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            insert(online_scores),
            [
                {"request_id": rid, "scorer": "refuses", "suite": "s", "scope": "acme",
                 "tenant": "acme", "route": ROUTE, "version": version, "value": value,
                 "passed": passed, "reason": "", "request_at": now, "scored_at": now}
                for rid, version, value, passed in scores
            ],
        )  # fmt: skip
    stable, candidate = store.arms.quality(ro, ro.started_at - timedelta(minutes=1), None)
    assert (stable.answers, stable.mean, stable.passes) == (4, 1.0, 4)
    assert (candidate.answers, candidate.mean, candidate.passes) == (2, 0.5, 1)
