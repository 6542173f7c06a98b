"""GET /api/evals/online: a route's online scores per version, suite, scorer and time bucket
(a suite named with its tenant), and what this process's online scorer did."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy import insert

from tests.support import ROUTE_KEYS, VIEWER_KEY, GatewayFactory
from trimtab.store.engine import make_engine
from trimtab.store.tables import online_scores


def test_online_scores_per_version_and_bucket(gateway: GatewayFactory, sqlite_url: str) -> None:
    running = gateway(store=sqlite_url, keys=ROUTE_KEYS)
    now = datetime.now(UTC)
    rows = [
        {"request_id": f"req_{i}", "scorer": "refuses", "suite": "live", "scope": "",
         "tenant": "acme", "route": "support-answer", "version": "v1" if i < 3 else "v2",
         "value": 1.0 if i != 4 else 0.0, "passed": i != 4, "reason": "", "request_at": now,
         "scored_at": now}
        for i in range(5)
    ]  # fmt: skip
    # acme's own suite of the same name scores request 0 with a scorer of the same name
    rows.append({**rows[0], "scope": "acme", "value": 0.0, "passed": False})
    engine = make_engine(sqlite_url)
    try:
        with engine.begin() as conn:
            conn.execute(insert(online_scores), rows)
    finally:
        engine.dispose()
    headers = {"authorization": f"Bearer {VIEWER_KEY}"}
    resp = httpx.get(
        running.url + "/api/evals/online",
        params={"route": "support-answer", "bucket": "1d"},
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    by = {
        (d["version"], d["suite"], d["suite_tenant"], d["scorer"]): (d["scored"], d["mean"])
        for d in body["data"]
    }
    assert by == {
        ("v1", "live", None, "refuses"): (3, 1.0),
        ("v1", "live", "acme", "refuses"): (1, 0.0),
        ("v2", "live", None, "refuses"): (2, 0.5),
    }
    other = httpx.get(
        running.url + "/api/evals/online",
        params={"route": "support-answer", "bucket": "1d", "suite": "tone"},
        headers=headers,
    )
    assert other.status_code == 200 and other.json()["data"] == []  # no suite of that name
    assert set(body["scorer"]) >= {"read", "sampled", "scored", "dropped_queue", "dropped_budget"}
    missing = httpx.get(running.url + "/api/evals/online", headers=headers)
    assert missing.status_code == 400 and "route" in missing.text
