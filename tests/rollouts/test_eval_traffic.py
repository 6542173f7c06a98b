"""An eval run of the candidate (feature `eval:RUN`) during its rollout moves no canary
arm: the analysis reads production traffic only (rollouts/arms.py)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from tests.rollouts.support import ROUTE, start
from trimtab.rollouts.store import RolloutStore
from trimtab.store.tables import requests


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
