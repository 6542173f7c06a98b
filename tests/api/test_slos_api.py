"""The SLO API through a real gateway, on SQLite and PostgreSQL: apply (strict, unknown
routes refused, audited, per tenant), each SLO's status from the rollups, roles."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.api.support import apply_slos, with_support_route
from tests.support import (
    ADMIN_KEY,
    APP_KEY,
    GLOBEX_OPERATOR_KEY,
    GLOBEX_VIEWER_KEY,
    OPERATOR_KEY,
    VIEWER_KEY,
    GatewayFactory,
    Running,
    auth,
)
from trimtab.client import AsyncClient, Client, TrimtabError
from trimtab.store.tables import audit_log
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore

SLOS = """
slos:
  support-availability:
    route: support-answer
    sli: {kind: availability}
    objective: 0.99
  support-latency:
    route: support-answer
    sli: {kind: latency, threshold_ms: 1000}
    objective: 0.9
"""


@pytest.fixture
def running(gateway: GatewayFactory, store_url: str) -> Running:
    return with_support_route(gateway, store_url)


def apply(running: Running, text: str, key: str = OPERATOR_KEY, **extra: Any) -> httpx.Response:
    return apply_slos(running, text, key, **extra)


def _traffic(running: Running, tenant: str = "acme") -> None:
    now = time.time()
    records = [
        RequestRecord(
            id=f"req_slo_{tenant}_{i}",
            started_at=now - 60 - i,
            api="openai",
            operation="chat",
            tenant=tenant,
            request_model="route:support-answer",
            route="support-answer",
            version="1",
            status_code=502 if i < 2 else 200,
            duration_ms=3000.0 if i < 5 else 100.0,
        )
        for i in range(100)
    ]
    TelemetryStore(running.engine).write(records)


def test_apply_read_and_audit(running: Running) -> None:
    first = apply(running, SLOS)
    assert first.status_code == 200, first.text
    assert [(s["slo"], s["status"], s["tenant"]) for s in first.json()["slos"]] == [
        ("support-availability", "created", "acme"),
        ("support-latency", "created", "acme"),
    ]
    again = apply(running, SLOS.replace("0.9\n", "0.95\n"))
    assert [s["status"] for s in again.json()["slos"]] == ["unchanged", "updated"]
    with running.engine.connect() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.action == "slo.apply")).all()
    assert [(r.target, r.tenant, r.actor, r.detail["status"]) for r in rows] == [
        ("support-availability", "acme", "ml@acme", "created"),
        ("support-latency", "acme", "ml@acme", "created"),
        ("support-latency", "acme", "ml@acme", "updated"),
    ]
    _traffic(running)
    _traffic(running, tenant="globex")  # the operator's SLO judges acme's traffic only
    with Client(running.url, api_key=VIEWER_KEY) as client:
        listed = client.slos(route="support-answer")
        assert [s["name"] for s in listed] == ["support-availability", "support-latency"]
        avail = client.slo("support-availability")
    assert avail["definition"]["tenant"] == "acme"
    assert (avail["good"], avail["valid"], avail["standing"]) == (98, 100, "missing")
    assert avail["sli"] == pytest.approx(0.98)
    assert avail["budget"]["total"] == pytest.approx(1.0)
    assert avail["budget"]["spent"] == 2 and avail["budget"]["remaining_share"] == pytest.approx(-1)
    page = avail["alerts"][0]
    assert (page["severity"], page["long"], page["short"], page["factor"]) == (
        "page",
        "1h",
        "5m",
        14.4,
    )
    assert page["state"] == "ok"  # 2 % is a burn of 2
    assert page["long_window"]["valid"] == 100 and page["long_window"]["burn"] == pytest.approx(2.0)
    assert page["method"].startswith("burn = bad share / (1 - objective)")
    latency = next(s for s in listed if s["name"] == "support-latency")
    assert (latency["good"], latency["valid"]) == (95, 100)  # 2 failed, 3 slow
    assert "±1 %" in latency["notes"][0]
    assert httpx.get(f"{running.url}/api/slos/nope", headers=auth(VIEWER_KEY)).status_code == 404


async def test_the_async_client_reads_them(running: Running) -> None:
    assert apply(running, SLOS).status_code == 200
    async with AsyncClient(running.url, api_key=OPERATOR_KEY) as client:
        applied = await client.apply_slos(SLOS, "again", source="slos.yaml")
        assert [a["status"] for a in applied] == ["unchanged", "unchanged"]
        status = await client.slo("support-latency")
    assert status["standing"] == "no_data" and status["sli"] is None  # never 100 %


def test_bad_files_name_the_file_and_key(running: Running) -> None:
    bad = SLOS.replace("0.99", "1.5").replace(
        "route: support-answer\n    sli: {kind: latency", "route: nope\n    sli: {kind: latency"
    )
    r = apply(running, bad)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_slos"
    assert (
        "slos.yaml: slos.support-availability.objective: Input should be less than 1"
        in error["message"]
    )
    r = apply(running, SLOS.replace("support-answer", "nope"))
    assert r.status_code == 400
    lines = r.json()["error"]["message"].splitlines()
    assert lines[0] == "slos.yaml: slos.support-availability.route: unknown route 'nope'"
    assert lines[1].startswith("slos.yaml: slos.support-latency.route: unknown route 'nope' (")
    assert "request id: req_" in lines[1]
    assert (
        apply(running, "slos: {a: [\n")
        .json()["error"]["message"]
        .startswith("slos.yaml: invalid YAML")
    )
    assert apply(running, SLOS, message="").status_code == 400
    with Client(running.url, api_key=ADMIN_KEY) as client:
        assert client.slos() == []  # nothing stored


def test_roles_and_tenants(running: Running) -> None:
    r = apply(running, SLOS, key=VIEWER_KEY)
    assert r.status_code == 403 and "operator" in r.json()["error"]["message"]
    other = SLOS.replace(
        "route: support-answer\n    sli: {kind: availability}",
        "route: support-answer\n    tenant: globex\n    sli: {kind: availability}",
    )
    r = apply(running, other)
    assert r.status_code == 403
    assert "may only judge its own tenant's traffic" in r.json()["error"]["message"]
    assert apply(running, SLOS).status_code == 200  # acme's
    assert apply(running, SLOS, key=GLOBEX_OPERATOR_KEY).status_code == 200  # globex's own
    shared = apply(running, SLOS, key=ADMIN_KEY)
    assert [s["tenant"] for s in shared.json()["slos"]] == [None, None]
    with Client(running.url, api_key=GLOBEX_VIEWER_KEY) as client:
        mine = client.slos()
        assert {(s["name"], s["tenant"]) for s in mine} == {
            ("support-availability", "globex"),
            ("support-latency", "globex"),
        }
        with pytest.raises(TrimtabError) as refused:
            client.slos(tenant="acme")
        assert refused.value.status == 403
    with Client(running.url, api_key=ADMIN_KEY) as client:
        assert len(client.slos()) == 6
        assert {s["tenant"] for s in client.slos(tenant="")} == {None}
        assert client.slo("support-latency", tenant="globex")["tenant"] == "globex"


def test_the_statuses_the_gateway_records(running: Running) -> None:
    """Real calls through the gateway: a timeout (504) and a cut stream (502) are bad, a
    bad request (400) and a rate limit (429) in neither count of availability."""
    text = """
slos:
  e2e-availability: {feature: slo-e2e, sli: {kind: availability}, objective: 0.9}
  e2e-timeouts: {feature: slo-e2e, sli: {kind: error_rate, class: timeout}, objective: 0.9}
  e2e-limited: {feature: slo-e2e, sli: {kind: error_rate, class: rate_limited}, objective: 0.9}
"""
    assert apply(running, text).status_code == 200
    headers = {**auth(APP_KEY), "x-trimtab-feature": "slo-e2e"}
    calls = [("gpt-mock", False)] * 6 + [
        ("gpt-hang", False),
        ("gpt-cut", True),
        ("gpt-400", False),
        ("gpt-429", False),
    ]
    statuses = []
    with httpx.Client(timeout=30) as http:
        for model, stream in calls:
            body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
            if stream:
                body["stream"] = True
            r = http.post(f"{running.url}/v1/chat/completions", json=body, headers=headers)
            statuses.append(r.status_code)
    assert statuses == [200] * 6 + [504, 200, 400, 429]  # the cut stream began with a 200
    assert running.wait_for_rows(len(calls)) == len(calls)

    def read(name: str) -> dict[str, Any]:
        deadline = time.monotonic() + 15
        while True:  # the rollups may be merged a moment after the rows
            got = httpx.get(f"{running.url}/api/slos/{name}", headers=auth(VIEWER_KEY))
            status: dict[str, Any] = got.json()
            if status["valid"] >= 8 or time.monotonic() > deadline:
                return status
            time.sleep(0.05)

    avail = read("e2e-availability")
    assert (avail["good"], avail["valid"]) == (6, 8)  # 504 and the cut stream's 502 bad
    timeouts = read("e2e-timeouts")
    assert (timeouts["good"], timeouts["valid"]) == (7, 8)
    limited = read("e2e-limited")
    assert (limited["good"], limited["valid"]) == (8, 9)  # the 429 bad, the 400 out
