"""The store goes away: every control-plane endpoint that reads or writes it answers the same
503 with the same body, and an /api failure nothing anticipated is a 500 that keeps the
connection open.

The endpoints come from the built app's routes, so a new endpoint cannot be forgotten: it
needs a body below (if it takes one) or a place among the exceptions, with the reason."""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from starlette.routing import Route

from tests.api.support import ADMIN, ROUTES
from tests.support import KEYS, GatewayFactory, Running
from trimtab.testing.outage import StoppablePostgres

# what each path parameter is filled with (r1 exists: it is applied before the outage)
PATH_VALUES = {
    "route": "r1",
    "number": "1",
    "version": "1",
    "move": "pause",
    "key_id": "key_0123",
    "request_id": "req_0123",
    "dataset": "golden",
    "run": "run_0123456789abcdef",
    "slo": "s1",
    "suite": "s1",
    "alert_id": "1",
    "silence_id": "1",
    "incident": "1",
}
# a body each endpoint would accept, for those that take one
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/routes/apply"): {"message": "outage", "routes": ROUTES},
    ("POST", "/api/routes/{route}/rollouts"): {"to": "v1"},
    ("POST", "/api/routes/{route}/rollout/{move}"): {"reason": "outage"},
    ("POST", "/api/routes/{route}/rollback"): {"reason": "outage"},
    ("POST", "/api/routes/{route}/versions/{version}/attestations"): {
        "kind": "eval",
        "result": "pass",
    },
    ("POST", "/api/feedback"): {"request_id": "req_0123", "thumbs": "up"},
    ("POST", "/api/keys"): {"tenant": "acme", "role": "app", "owner": "svc"},
    ("POST", "/api/datasets/{dataset}/versions"): {
        "format": "jsonl",
        "content": '{"id": "a", "variables": {"q": "x"}}\n',
        "message": "outage",
    },
    ("POST", "/api/evals/runs"): {
        "suite": "s1",
        "definition": {
            "model": "gpt-mock",
            "dataset": "golden",
            "scorers": [{"name": "ok", "kind": "is_json"}],
        },
    },
    ("POST", "/api/evals/runs/{run}/results"): {
        "results": [{"item_id": "a", "request_digest": "0" * 64, "output": "x", "scores": {}}]
    },
    ("POST", "/api/evals/runs/{run}/cache"): {"digests": ["0" * 64]},
    ("POST", "/api/datasets/{dataset}/from-requests"): {"route": "r1"},
    ("POST", "/api/evals/suites/apply"): {
        "message": "outage",
        "yaml": (
            "evals:\n  s1: {route: r1, dataset: golden, scorers: [{name: ok, kind: is_json}]}\n"
        ),
    },
    ("POST", "/api/evals/runs/{run}/attestation"): {},
    ("POST", "/api/alerts/{alert_id}/ack"): {"message": "outage"},
    ("POST", "/api/silences"): {"matchers": ["route=r1"], "duration": "1h", "message": "outage"},
    ("POST", "/api/incidents"): {"message": "outage", "type": "vendor_outage", "routes": ["r1"]},
    ("POST", "/api/incidents/{incident}/notes"): {"message": "outage"},
    ("POST", "/api/incidents/{incident}/actions"): {"action": "acknowledge"},
    ("POST", "/api/incidents/{incident}/severity"): {"severity": 2, "message": "outage"},
    ("POST", "/api/incidents/{incident}/postmortem"): {},
    ("POST", "/api/incidents/{incident}/rules"): {"kind": "slo", "message": "outage", "ref": "s1"},
    ("POST", "/api/incidents/{incident}/close"): {},
    ("POST", "/api/erasures"): {"user": "u1"},
    ("POST", "/api/slos/apply"): {
        "message": "outage",
        "yaml": "slos:\n  s1: {route: r1, sli: {kind: availability}, objective: 0.99}\n",
    },
}
# the query an endpoint requires, for those that require one
QUERIES: dict[tuple[str, str], str] = {
    ("GET", "/api/evals/online"): "?route=r1",
    ("GET", "/api/exports"): "?user=u1",
}
# the endpoints that do not touch the store, what they answer during the outage, and why
NOT_THE_STORE: dict[tuple[str, str], tuple[int, str]] = {
    ("GET", "/api/budgets"): (200, "budgets are the policy's, read from the shared state"),
    ("GET", "/api/breakers"): (200, "breakers live in the shared state"),
    ("GET", "/api/costs/forecast"): (
        200,
        "no budget is configured here, so no spend is read (with budgets it reads the "
        "store's daily spend, and its error answers through the same path)",
    ),
    ("GET", "/api/openapi.json"): (200, "the document is built from the declarations"),
    ("GET", "/healthz"): (200, "liveness: the process answers"),
    ("GET", "/readyz"): (503, "readiness answers its own 503 body, naming the problem"),
    ("GET", "/metrics"): (200, "the process's counters, in memory"),
}
DATA_PLANE = "/v1/"  # model calls: an outage does not stop them (telemetry spills to disk)


def control_plane(running: Running) -> list[tuple[str, str]]:
    """Every (method, path template) the app serves outside the data plane."""
    found = []
    for route in running.server_app.routes:
        if getattr(route, "path", "").startswith("/ui"):
            continue  # the console's pages: HTML, their outage is tests/web/test_outage.py
        assert isinstance(route, Route), route
        if route.path.startswith(DATA_PLANE):
            continue
        found += [(m, route.path) for m in sorted(route.methods or ()) if m != "HEAD"]
    return found


def filled(template: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], template)


def assert_every_endpoint_answers_the_same_503(
    running: Running, make_the_store_unreachable: Callable[[], None]
) -> None:
    endpoints = control_plane(running)
    assert ("GET", "/api/requests") in endpoints and ("DELETE", "/api/keys/{key_id}") in endpoints
    with httpx.Client(base_url=running.url, headers=ADMIN, timeout=30) as client:
        applied = client.post("/api/routes/apply", json={"message": "m", "routes": ROUTES})
        assert applied.status_code == 200, applied.text
        make_the_store_unreachable()
        checked = 0
        for method, template in endpoints:
            body = BODIES.get((method, template))
            assert body is not None or method in ("GET", "DELETE"), (
                f"{method} {template}: add the body it accepts to BODIES"
            )
            query = QUERIES.get((method, template), "")
            resp = client.request(method, filled(template) + query, json=body)
            where = f"{method} {template}: {resp.status_code} {resp.text}"
            if (method, template) in NOT_THE_STORE:
                assert resp.status_code == NOT_THE_STORE[method, template][0], where
                continue
            checked += 1
            assert resp.status_code == 503, where
            rid = resp.headers["x-trimtab-request-id"]
            assert resp.json() == {
                "error": {
                    "message": f"the store is unreachable: OperationalError (request id: {rid})",
                    "type": "api_error",
                    "param": None,
                    "code": "store_unavailable",
                    "request_id": rid,
                }
            }, where
        assert checked >= 23  # the endpoints of the README that read or write the store


def test_every_endpoint_answers_an_unreachable_sqlite_store_with_the_same_503(
    gateway: GatewayFactory, tmp_path: Path
) -> None:
    home = tmp_path / "store"
    running = gateway(store=f"sqlite:///{home}/trimtab.db", keys=KEYS)

    def unreachable() -> None:
        # the database's directory is gone and a file stands in its place: no connection
        # opens ("unable to open database file"); the pooled ones are closed
        home.rename(tmp_path / "store-gone")
        home.write_text("not a directory")
        running.engine.dispose()

    assert_every_endpoint_answers_the_same_503(running, unreachable)


@pytest.mark.postgres
def test_every_endpoint_answers_a_postgres_outage_with_the_same_503(
    gateway: GatewayFactory, doomed_postgres: StoppablePostgres
) -> None:
    running = gateway(store=doomed_postgres.url, keys=KEYS)
    assert_every_endpoint_answers_the_same_503(running, doomed_postgres.stop)


def test_an_api_failure_is_a_500_that_keeps_the_connection(
    gateway: GatewayFactory, store_url: str
) -> None:
    """A table gone from under the gateway (a restore gone wrong): GET /api/requests fails
    in a way no handler expects, and the store is there (not a 503). The answer is a 500
    and the connection carries on."""
    running: Running = gateway(store=store_url, keys=KEYS)
    cause = "OperationalError" if store_url.startswith("sqlite") else "ProgrammingError"
    with running.engine.begin() as db:
        db.execute(text("DROP TABLE requests"))
    host, port = running.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        for _ in range(2):  # the second goes down the same connection as the first
            conn.request("GET", "/api/requests", headers=ADMIN)
            resp = conn.getresponse()
            data = orjson.loads(resp.read())
            assert resp.status == 500
            rid = resp.getheader("x-trimtab-request-id")
            assert data["error"]["code"] == "internal_error"
            assert data["error"]["message"] == (
                f"internal error ({cause}); the gateway's log has the details (request id: {rid})"
            )
            assert resp.getheader("connection") != "close"
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
    finally:
        conn.close()
