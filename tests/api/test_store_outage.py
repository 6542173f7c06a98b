"""The store goes away: every /api endpoint that reads or writes it answers the same 503, and
an /api failure nothing anticipated is a 500 that keeps the connection open."""

from __future__ import annotations

import http.client
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from tests.api.support import ADMIN, ROUTES
from tests.conftest import KEYS, GatewayFactory, Running
from trimtab.testing.outage import StoppablePostgres

# every /api endpoint of the README that touches the store (GET /api/budgets and
# /api/breakers read the shared state, not the store), with a body it would accept
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/requests", None),
    ("GET", "/api/requests/req_0123", None),
    ("GET", "/api/metrics/summary?window=1h", None),
    ("GET", "/api/costs", None),
    ("GET", "/api/budget-events", None),
    ("GET", "/api/routes", None),
    ("GET", "/api/routes/r1", None),
    ("GET", "/api/routes/r1/versions", None),
    ("GET", "/api/routes/r1/versions/1", None),
    ("GET", "/api/routes/r1/diff", None),
    ("GET", "/api/routes/r1/timeline", None),
    ("GET", "/api/routes/r1/rollout", None),
    ("GET", "/api/keys", None),
    ("GET", "/api/keys/key_0123", None),
    ("GET", "/api/audit", None),
    ("POST", "/api/routes/apply", {"message": "outage", "routes": ROUTES}),
    ("POST", "/api/routes/r1/rollouts", {"to": "v1"}),
    ("POST", "/api/routes/r1/rollout/pause", {"reason": "outage"}),
    ("POST", "/api/routes/r1/rollback", {"reason": "outage"}),
    ("POST", "/api/routes/r1/versions/1/attestations", {"kind": "eval", "result": "pass"}),
    ("POST", "/api/feedback", {"request_id": "req_0123", "thumbs": "up"}),
    ("POST", "/api/keys", {"tenant": "acme", "role": "app", "owner": "svc"}),
    ("DELETE", "/api/keys/key_0123", None),
]


@pytest.mark.postgres
def test_every_endpoint_answers_a_store_outage_with_the_same_503(
    gateway: GatewayFactory, doomed_postgres: StoppablePostgres
) -> None:
    running = gateway(store=doomed_postgres.url, keys=KEYS)
    with httpx.Client(base_url=running.url, headers=ADMIN, timeout=30) as client:
        applied = client.post("/api/routes/apply", json={"message": "m", "routes": ROUTES})
        assert applied.status_code == 200, applied.text
        doomed_postgres.stop()
        for method, path, body in ENDPOINTS:
            resp = client.request(method, path, json=body)
            where = f"{method} {path}: {resp.text}"
            assert resp.status_code == 503, where
            rid = resp.headers["x-trimtab-request-id"]
            error = resp.json()["error"]
            assert set(error) == {"type", "code", "message", "param", "request_id"}, where
            assert (error["type"], error["code"]) == ("api_error", "store_unavailable"), where
            assert error["request_id"] == rid, where
            assert error["message"].startswith("the store "), where
            assert error["message"].endswith(f"OperationalError (request id: {rid})"), where


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
