"""Eval runs' calls (feature `eval:RUN`) stay out of production figures: the request list,
costs, SLO SLIs and the summary; naming the feature shows them (telemetry/production.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Engine

from tests.slo.support import request
from tests.support import ROUTE_KEYS, VIEWER_KEY, GatewayFactory
from trimtab.slo.rollups import read_windows
from trimtab.slo.spec import load_slos
from trimtab.store.engine import make_engine
from trimtab.telemetry.costs import costs_by
from trimtab.telemetry.queries import RequestFilter, list_requests
from trimtab.telemetry.store import TelemetryStore
from trimtab.types import is_eval_feature

RUN = "eval:run_0123456789abcdef"


def traffic(at: datetime) -> list:  # type: ignore[type-arg]
    """Four production calls that succeed, and an eval run's six that fail."""
    t = at.timestamp() - 5
    ok = [request(i, t, feature="support", cost_usd=0.01) for i in range(4)]
    failed = [request(10 + i, t, feature=RUN, status_code=500, cost_usd=0.5) for i in range(6)]
    return ok + failed


def test_the_predicate() -> None:
    assert is_eval_feature(RUN) and is_eval_feature("eval:")
    assert not is_eval_feature(None) and not is_eval_feature("support")
    assert not is_eval_feature("evaluation")  # only the runner's prefix


def test_eval_calls_are_out_of_requests_costs_and_slos(engine: Engine) -> None:
    now = datetime.now(UTC)
    TelemetryStore(engine).write(traffic(now))
    rows, _ = list_requests(engine, RequestFilter(), 100)
    assert len(rows) == 4 and {r["feature"] for r in rows} == {"support"}
    named, _ = list_requests(engine, RequestFilter(feature=RUN), 100)
    assert len(named) == 6  # asked for by name: there

    costs = costs_by(engine, now - timedelta(hours=1), "feature", None)
    assert set(costs) == {"support"} and costs["support"].requests == 4

    slos = {
        d.name: d
        for d in load_slos(
            f"""
slos:
  avail: {{route: support, sli: {{kind: availability}}, objective: 0.99}}
  runs: {{route: support, feature: "{RUN}", sli: {{kind: availability}}, objective: 0.99}}
"""
        )
    }
    counts = read_windows(engine, slos["avail"], now, [60])[60]
    assert (counts.good, counts.valid) == (4, 4)  # the run's 500s burn no budget
    named_counts = read_windows(engine, slos["runs"], now, [60])[60]
    assert (named_counts.good, named_counts.valid) == (0, 6)


def test_the_summary_leaves_eval_runs_out(gateway: GatewayFactory, sqlite_url: str) -> None:
    running = gateway(store=sqlite_url, keys=ROUTE_KEYS)
    engine = make_engine(sqlite_url)
    try:
        TelemetryStore(engine).write(traffic(datetime.now(UTC)))
    finally:
        engine.dispose()
    resp = httpx.get(
        running.url + "/api/metrics/summary",
        params={"group_by": "feature"},
        headers={"authorization": f"Bearer {VIEWER_KEY}"},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["total"]["count"] == 4 and body["total"]["errors"] == 0
    assert [g["feature"] for g in body["groups"]] == ["support"]
