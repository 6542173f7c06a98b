"""Every change has its audit row, committed with it, with its tenant and request id
(issue 8, item 2); on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.audit.support import accept_audit_rows, refuse_audit_rows
from tests.rollouts.support import api, routes_yaml
from tests.support import ADMIN_KEY, APP_KEY, ROUTE_KEYS, GatewayFactory, Running, stored
from trimtab.audit.log import CONTROLLER
from trimtab.registry.scope import RouteKey
from trimtab.rollouts.store import RolloutStore
from trimtab.store.tables import attestations, feedback, rollouts, route_events, route_versions

FAQ = RouteKey("acme", "faq")  # applied with acme's operator key


@pytest.fixture
def running(gateway: GatewayFactory, store_url: str) -> Running:
    return gateway(store=store_url, keys=ROUTE_KEYS)


def apply(running: Running, greeting: str) -> httpx.Response:
    resp: httpx.Response = api(
        running, "POST", "/api/routes/apply", yaml=routes_yaml("gpt-mock", greeting=greeting),
        message=f"say {greeting}",
    )  # fmt: skip
    return resp


def route_request(running: Running) -> str:
    resp = httpx.post(
        running.url + "/v1/chat/completions",
        json={"model": "route:faq", "messages": [{"role": "user", "content": "hi"}],
              "variables": {"topic": "returns"}},
        headers={"authorization": f"Bearer {APP_KEY}"}, timeout=30,
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    rid = resp.headers["x-trimtab-request-id"]
    stored(running, rid)
    return rid


def audit_rows(running: Running, **filters: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in {"limit": "1000", **filters}.items())
    resp = api(running, "GET", f"/api/audit?{query}", key=ADMIN_KEY)
    assert resp.status_code == 200, resp.text
    data: list[dict[str, Any]] = resp.json()["data"]
    return data


def count(running: Running, table: Any) -> int:
    with running.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_every_change_has_a_row_with_its_tenant_and_request_id(running: Running) -> None:
    done: list[tuple[str, httpx.Response]] = []

    def do(action: str, resp: httpx.Response, status: int = 200) -> None:
        assert resp.status_code == status, resp.text
        done.append((action, resp))

    do("route.apply", apply(running, "Hello"))
    apply(running, "Hi")
    path = "/api/routes/faq/versions/v2/attestations"
    do("version.attest", api(running, "POST", path, kind="eval", result="pass"), 201)
    start = api(running, "POST", "/api/routes/faq/rollouts", to="v2", reason="go")
    do("rollout.start", start, 201)
    for move in ("pause", "resume", "promote"):
        do(f"rollout.{move}", api(running, "POST", f"/api/routes/faq/rollout/{move}", reason="x"))
    do("route.rollback", api(running, "POST", "/api/routes/faq/rollback", reason="undo"))
    api(running, "POST", "/api/routes/faq/rollouts", to="v2", reason="again")
    do("rollout.abort", api(running, "POST", "/api/routes/faq/rollout/abort", reason="stop"))
    rid = route_request(running)
    fb = api(running, "POST", "/api/feedback", key=APP_KEY, request_id=rid, thumbs="down")
    do("feedback.add", fb, 201)
    rows = {r["request_id"]: r for r in audit_rows(running, tenant="acme")}
    for action, resp in done:
        row = rows.get(resp.headers["x-trimtab-request-id"])
        assert row is not None, f"{action}: no audit row of tenant acme with its request id"
        assert row["action"] == action and row["tenant"] == "acme"
        assert row["remote_addr"] == "127.0.0.1"
        if action == "feedback.add":
            assert row["actor"] == "support-bot" and row["target"] == rid
            assert row["detail"]["route"] == "faq" and row["detail"]["negative"] is True
        else:
            assert row["actor"] == "ml@acme" and row["target"] == "faq"
    assert rows[start.headers["x-trimtab-request-id"]]["detail"]["to"] == 2


def test_a_change_and_its_audit_row_commit_together(running: Running) -> None:
    assert apply(running, "Hello").status_code == 200
    assert apply(running, "Hi").status_code == 200
    rid = route_request(running)
    engine = running.engine
    refuse_audit_rows(engine)
    before = {t.name: count(running, t) for t in (route_events, attestations, feedback)}
    start = api(running, "POST", "/api/routes/faq/rollouts", to="v2", reason="go")
    assert start.status_code == 503, start.text
    assert "nothing changed" in start.json()["error"]["message"]
    assert count(running, rollouts) == 0
    path = "/api/routes/faq/versions/v2/attestations"
    assert api(running, "POST", path, kind="eval", result="pass").status_code == 503
    fb = api(running, "POST", "/api/feedback", key=APP_KEY, request_id=rid, thumbs="up")
    assert fb.status_code == 503
    assert apply(running, "Hey").status_code == 503
    assert count(running, route_versions) == 2
    # nothing reached the timeline either (a refused gate would, but this one passed)
    assert {t.name: count(running, t) for t in (route_events, attestations, feedback)} == before

    accept_audit_rows(engine)
    started = api(running, "POST", "/api/routes/faq/rollouts", to="v2", reason="go")
    assert started.status_code == 201, started.text
    refuse_audit_rows(engine)
    for move in ("pause", "promote", "abort"):
        resp = api(running, "POST", f"/api/routes/faq/rollout/{move}", reason="x")
        assert resp.status_code == 503, (move, resp.text)
    back = api(running, "POST", "/api/routes/faq/rollback", reason="undo")
    assert back.status_code == 503
    rollout = api(running, "GET", "/api/routes/faq/rollout").json()
    assert rollout["status"] == "running" and rollout["stage"] == 0
    assert api(running, "GET", "/api/routes/faq").json()["stable_version"] == 1
    # the controller's moves too: none happens without its row
    store = RolloutStore(engine)
    ro = store.current(FAQ)
    assert ro is not None
    controller_moves: list[Callable[[], bool]] = [
        lambda: store.advance(ro, CONTROLLER, None),
        lambda: store.finish(ro, "rolled_back", CONTROLLER, "regressed"),
        lambda: store.set_paused(ro, True, CONTROLLER, "inconclusive"),
    ]
    for controller_move in controller_moves:
        with pytest.raises(Exception, match="audit log refuses"):
            controller_move()
    still = store.current(FAQ)
    assert still is not None and (still.status, still.stage) == ("running", 0)
    accept_audit_rows(engine)
    assert api(running, "POST", "/api/routes/faq/rollout/abort", reason="x").status_code == 200
    assert [r["action"] for r in audit_rows(running)][:2] == ["rollout.abort", "rollout.start"]
