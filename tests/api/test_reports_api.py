"""GET /api/slos/report, /api/costs/forecast and /api/costs/economics (and the reads
behind GET /api/slos) through a real gateway: the figures from the rollups written
through the real TelemetryStore, scoping by tenant, and bad parameters refused naming
them."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import TypeAdapter
from sqlalchemy import event

from tests.support import (
    ADMIN_KEY,
    GLOBEX_VIEWER_KEY,
    OPERATOR_KEY,
    ROUTE_KEYS,
    ROUTES,
    VIEWER_KEY,
    GatewayFactory,
    Running,
    auth,
)
from trimtab.api.report_endpoints import EconomicsView, ForecastView, SloReportView, last_month
from trimtab.client import Client
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore

SLOS = """
slos:
  avail:
    route: support-answer
    sli: {kind: availability}
    objective: 0.99
"""
NOV_3 = datetime(2026, 11, 3, 10, tzinfo=UTC).timestamp()


@pytest.fixture
def running(gateway: GatewayFactory) -> Running:
    served = gateway(
        keys=ROUTE_KEYS, budgets=[{"scope": "tenant:*", "period": "month", "usd": 1000.0}]
    )
    with Client(served.url, api_key=ADMIN_KEY) as client:
        client.apply(ROUTES, "the support route")
    with Client(served.url, api_key=OPERATOR_KEY) as client:
        client.apply_slos(SLOS, "acme's objectives")  # acme's: they judge acme's traffic
    return served


def _record(i: int, at: float, **extra: object) -> RequestRecord:
    fields: dict[str, object] = {
        "id": f"req_rep_{i:05d}",
        "started_at": at,
        "api": "openai",
        "operation": "chat",
        "tenant": "acme",
        "request_model": "gpt-mock",
        "route": "support-answer",
        "version": "1",
        "status_code": 200,
        "duration_ms": 100.0,
        "input_tokens": 100,
        "output_tokens": 50,
        "cost_usd": 0.002,
    }
    fields.update(extra)
    return RequestRecord(**fields)  # type: ignore[arg-type]


def get(running: Running, path: str, key: str = VIEWER_KEY, **query: str) -> httpx.Response:
    return httpx.get(f"{running.url}{path}", params=query, headers=auth(key), timeout=10)


def test_the_sla_report_of_a_month(running: Running) -> None:
    records = [
        _record(
            i,
            NOV_3 + i,
            status_code=503 if i < 3 else 200,
            feature="faq",
            session=f"ticket-{i // 10}",  # 10 sessions of 10 requests, across two minutes
        )
        for i in range(100)
    ]
    records.append(_record(100, NOV_3, tenant="globex", cost_usd=1.0))
    TelemetryStore(running.engine).write(records)

    answer = get(running, "/api/slos/report", month="2026-11")
    assert answer.status_code == 200, answer.text
    report = answer.json()
    TypeAdapter(SloReportView).validate_python(report, strict=True)  # as documented
    assert report["month"] == "2026-11"
    (section,) = report["routes"]
    assert section["route"] == "support-answer"
    (slo,) = section["slos"]
    assert (slo["name"], slo["status"], slo["good"], slo["valid"]) == ("avail", "missed", 97, 100)
    assert slo["budget"]["requests_spent"] == 3
    assert slo["budget"]["requests_allowed"] == pytest.approx(1.0)
    kpis = section["kpis"]
    # a viewer of acme: acme's traffic only (globex's request is not in it)
    assert kpis["requests"] == 100 and kpis["successful"] == 97
    assert kpis["cost_per_successful_request_usd"] == pytest.approx(0.2 / 97)
    assert kpis["tokens_by_feature"] == [
        {
            "feature": "faq",
            "requests": 100,
            "input_tokens": 10_000,
            "output_tokens": 5_000,
            "cost_usd": pytest.approx(0.2),
        }
    ]
    # 10 sessions (exact at this size: the sketch holds the ids' hashes), $0.2 among them
    assert kpis["session_requests"] == 100
    assert kpis["sessions"]["estimate"] == pytest.approx(10)
    assert kpis["sessions"]["low"] <= 10 <= kpis["sessions"]["high"]
    assert kpis["cost_per_session_usd"] == pytest.approx(0.02)
    per = kpis["cost_per_session"]
    assert per["low_usd"] <= per["usd"] <= per["high_usd"]
    assert any("HyperLogLog" in note and "1.62 %" in note for note in report["notes"])

    # an admin reading every SLO: every tenant's traffic on the route
    admin = get(running, "/api/slos/report", ADMIN_KEY, month="2026-11").json()
    assert admin["routes"][0]["kpis"]["requests"] == 101

    # December has no traffic yet on this route: no data, never 100 %
    december = get(running, "/api/slos/report", month="2026-12").json()
    assert december["routes"][0]["slos"][0]["status"] == "no_data"
    # another route: no SLOs, no sections
    other = get(running, "/api/slos/report", month="2026-11", route="other").json()
    assert other["routes"] == []
    # globex's viewer reads globex's SLOs: none
    assert (
        get(running, "/api/slos/report", GLOBEX_VIEWER_KEY, month="2026-11").json()["routes"] == []
    )
    # absent: the last complete month
    default = get(running, "/api/slos/report").json()
    assert default["month"] == last_month(datetime.now(UTC)).label

    for bad in ("2026-13", "november", "2026-1"):
        refused = get(running, "/api/slos/report", month=bad)
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert (error["code"], error["param"]) == ("invalid_parameter", "month")
        assert error["message"].startswith("month: ") and "YYYY-MM" in error["message"]
        assert refused.headers["x-trimtab-request-id"]
    # the report is an SLO's name nowhere: the route before /api/slos/{slo}
    assert get(running, "/api/slos/avail").json()["name"] == "avail"
    assert get(running, "/api/slos/report", "").status_code == 401


def test_forecast_and_unit_economics(running: Running) -> None:
    now = time.time()
    day = 86400.0
    records = []
    n = 0
    for d in range(1, 6):  # the five days before today: 1, 2, .. 5 requests a day
        for j in range(d):
            n += 1
            feature = "faq" if j % 2 == 0 else "chat"
            # one session a day across both features; day 5's last request carries none
            session = None if (d, j) == (5, 4) else f"day-{d}"
            records.append(
                _record(
                    n,
                    now - d * day + j,
                    feature=feature,
                    status_code=500 if n == 1 else 200,
                    session=session,
                )
            )
    TelemetryStore(running.engine).write(records)

    answer = get(running, "/api/costs/forecast")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    TypeAdapter(ForecastView).validate_python(body, strict=True)
    assert body["tenant"] == "acme"
    (acme,) = body["data"]
    assert acme["scope"] == "tenant:acme" and acme["budget"] == "tenant:*"
    assert acme["period"] == "month" and acme["limit_usd"] == 1000.0
    assert acme["status"] == "ok" and acme["days"] >= 5
    assert acme["low_usd"] <= acme["projected_usd"] <= acme["high_usd"]
    assert acme["projected_usd"] >= acme["spent_usd"]
    assert acme["crosses"] is False  # cents a day against $1,000
    assert [(s["dedup_key"], s["firing"]) for s in body["signals"]] == [
        (f"cost_forecast/tenant:acme/month/{acme['period_start'][:7]}", False)
    ]
    # globex's viewer sees its own tenant only: no spend, too little data
    (globex,) = get(running, "/api/costs/forecast", GLOBEX_VIEWER_KEY).json()["data"]
    assert globex["scope"] == "tenant:globex" and globex["status"] == "too_little_data"
    assert get(running, "/api/costs/forecast", tenant="globex").status_code == 403

    econ = get(running, "/api/costs/economics", group_by="feature", window="7d")
    assert econ.status_code == 200, econ.text
    TypeAdapter(EconomicsView).validate_python(econ.json(), strict=True)
    groups = {g["feature"]: g for g in econ.json()["groups"]}
    # 15 requests: faq j = 0, 2, 4 (9), chat j = 1, 3 (6); the first faq one failed
    faq, chat = groups["faq"], groups["chat"]
    assert (faq["requests"], faq["successful"]) == (9, 8)
    assert faq["cost_per_request_usd"] == pytest.approx(0.002)
    assert faq["cost_per_successful_request_usd"] == pytest.approx(0.018 / 8)
    assert faq["cost_per_1k_tokens_usd"] == pytest.approx(0.018 / (9 * 150) * 1000)
    assert chat["requests"] == 6
    # sessions: faq on days 1-5 (its 8 session requests, $0.016), chat on days 2-5 (6,
    # $0.012); the total counts each day's session once (14 requests, $0.028)
    assert (faq["session_requests"], chat["session_requests"]) == (8, 6)
    assert faq["sessions"]["estimate"] == pytest.approx(5)
    assert chat["sessions"]["estimate"] == pytest.approx(4)
    assert faq["cost_per_session_usd"] == pytest.approx(0.016 / 5)
    assert chat["cost_per_session_usd"] == pytest.approx(0.012 / 4)
    total = econ.json()["total"]
    assert total["requests"] == 15 and total["cost_usd"] == pytest.approx(0.03)
    assert total["sessions"]["estimate"] == pytest.approx(5)
    assert total["cost_per_session_usd"] == pytest.approx(0.028 / 5)
    assert total["sessions"]["relative_standard_error"] == pytest.approx(0.0162)
    by_route = get(running, "/api/costs/economics", OPERATOR_KEY).json()
    assert by_route["group_by"] == "route"
    assert by_route["groups"][0]["route"] == "support-answer"
    refused = get(running, "/api/costs/economics", group_by="model")
    assert refused.status_code == 400 and "group_by" in refused.text


def test_slo_statuses_share_one_rollup_read_per_selector(running: Running) -> None:
    with Client(running.url, api_key=OPERATOR_KEY) as client:
        client.apply_slos(
            """
slos:
  avail: {route: support-answer, sli: {kind: availability}, objective: 0.99}
  strict: {route: support-answer, sli: {kind: availability}, objective: 0.999}
  timeouts: {route: support-answer, sli: {kind: error_rate, class: timeout}, objective: 0.99}
  fast: {route: support-answer, sli: {kind: latency, threshold_ms: 500}, objective: 0.9}
""",
            "four objectives on one route",
        )
    TelemetryStore(running.engine).write(
        [_record(i, time.time() - 120 + i, status_code=504 if i < 2 else 200) for i in range(50)]
    )
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if "rollups_minute" in statement:
            statements.append(statement)

    event.listen(running.engine, "before_cursor_execute", seen)
    try:
        answer = get(running, "/api/slos")
    finally:
        event.remove(running.engine, "before_cursor_execute", seen)
    assert answer.status_code == 200, answer.text
    by_name = {s["name"]: s for s in answer.json()["data"]}
    assert (by_name["avail"]["good"], by_name["avail"]["valid"]) == (48, 50)
    assert (by_name["timeouts"]["good"], by_name["timeouts"]["valid"]) == (48, 50)
    assert by_name["strict"]["standing"] == "missing"
    # the four SLOs of one selector, availability, error-rate and latency: one read
    assert len(statements) == 1, statements
