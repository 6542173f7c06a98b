"""The SLA report of a month: by hand from per-minute counts, and from records and feedback
written through the real stores into SQLite (the rollups, never the request rows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert

from tests.slo.support import request
from trimtab.slo.burn import Counts
from trimtab.slo.report import (
    INCIDENTS_NOT_RECORDED,
    SESSIONS_NOTE,
    build_report,
    parse_month,
    render_markdown,
    slo_month,
)
from trimtab.slo.report_data import read_report
from trimtab.slo.spec import load_slos
from trimtab.slo.store import SloRow
from trimtab.store.tables import feedback, incidents
from trimtab.telemetry.store import TelemetryStore

SLOS = load_slos(
    """
slos:
  avail: {route: support, sli: {kind: availability}, objective: 0.99}
  fast: {route: support, sli: {kind: latency, threshold_ms: 500}, objective: 0.9}
  other: {route: billing, sli: {kind: availability}, objective: 0.999}
  by-model: {model: gpt-mock, sli: {kind: availability}, objective: 0.5}
"""
)
AVAIL, FAST, OTHER, BY_MODEL = SLOS
NOV = parse_month("2026-11")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _row(definition: object, scope: str = "") -> SloRow:
    return SloRow(scope, definition, T0, None, T0, None)  # type: ignore[arg-type]


def test_months_are_calendar_months_in_utc() -> None:
    assert NOV.start == datetime(2026, 11, 1, tzinfo=UTC)
    assert NOV.end == datetime(2026, 12, 1, tzinfo=UTC)
    assert NOV.minutes == 30 * 1440
    dec = parse_month("2026-12")
    assert dec.end == datetime(2027, 1, 1, tzinfo=UTC) and dec.minutes == 31 * 1440
    assert parse_month("2028-02").minutes == 29 * 1440
    for bad in ("2026-13", "2026-1", "26-11", "2026-11-01", ""):
        with pytest.raises(ValueError, match="expected YYYY-MM"):
            parse_month(bad)


def test_an_slo_over_a_month_by_hand() -> None:
    start = NOV.start
    series = {start + timedelta(minutes=m): Counts(100, 100) for m in range(1000)}
    series[start + timedelta(minutes=5)] = Counts(98, 100)  # 98 % < 99 %: a bad minute
    series[start + timedelta(minutes=6)] = Counts(99, 100)  # exactly the objective: good
    series[start + timedelta(minutes=7)] = Counts(0, 0)  # no traffic: neither
    series[start - timedelta(minutes=1)] = Counts(0, 100)  # October: not this month
    series[NOV.end] = Counts(0, 100)  # December: not this month
    month = slo_month(AVAIL, "", series, NOV)
    # 999 minutes with traffic: 99,900 valid, 3 bad (2 + 1)
    assert (month.counts.good, month.counts.valid) == (99_897, 99_900)
    assert month.counts.bad == 3
    assert month.sli == pytest.approx(99_897 / 99_900)
    assert month.met is True
    assert month.bad_minutes == 1 and month.minutes_with_data == 999
    assert month.budget_minutes == pytest.approx(0.01 * 43_200)  # 432 minutes
    assert month.budget_requests == pytest.approx(999.0)
    assert month.spent_share == pytest.approx(3 / 999)
    view = month.view()
    assert view["status"] == "met"
    assert view["budget"]["minutes_allowed"] == pytest.approx(432.0)
    assert view["budget"]["minutes_spent"] == 1
    assert view["budget"]["requests_spent"] == 3

    assert slo_month(OTHER, "", series, NOV).met is True  # 99.997 % >= 99.9 %
    worse = {start + timedelta(minutes=m): Counts(99, 100) for m in range(10)}
    month = slo_month(OTHER, "", worse, NOV)
    assert month.met is False and month.view()["status"] == "missed"
    assert month.spent_share == pytest.approx(10 / (0.001 * 1000))  # 10x the budget
    assert month.bad_minutes == 10


def test_no_traffic_is_no_data_never_a_hundred_percent() -> None:
    month = slo_month(AVAIL, "", {}, NOV)
    assert month.sli is None and month.met is None and month.spent_share is None
    assert month.view()["status"] == "no_data"
    report = build_report(NOV, [month], {}, {}, None)
    (section,) = report.view()["routes"]
    assert section["met"] == 0 and section["missed"] == 0
    assert section["kpis"]["requests"] == 0
    assert section["kpis"]["cost_per_request_usd"] is None
    assert section["kpis"]["csat"]["share_positive"] is None
    assert section["incidents"] is None
    assert report.notes == (SESSIONS_NOTE, INCIDENTS_NOT_RECORDED)


def _at(day: int, hour: int = 12) -> float:
    return datetime(2026, 11, day, hour, tzinfo=UTC).timestamp()


def test_the_report_from_the_store(sqlite_engine: Engine) -> None:
    records = []
    n = 0
    # support, November: 40 requests on day 3 (4 of them 502), latency 100 or 900 ms
    for i in range(40):
        n += 1
        records.append(
            request(
                n,
                _at(3) + i,
                status_code=502 if i < 4 else 200,
                duration_ms=900.0 if i % 10 == 0 else 100.0,
                feature="faq" if i % 2 else "chat",
                input_tokens=10,
                output_tokens=5 if i % 2 else 20,
                cost_usd=0.001,
                session=f"s{i % 3}",
            )
        )
    # two client errors (neither good nor bad for availability), one October, one December
    for status, at in ((400, _at(4)), (404, _at(4) + 1)):
        n += 1
        records.append(request(n, at, status_code=status, cost_usd=0.0))
    n += 1
    records.append(request(n, datetime(2026, 10, 31, 23, 59, tzinfo=UTC).timestamp()))
    n += 1
    records.append(request(n, NOV.end.timestamp() + 5, status_code=500))
    # billing: another tenant's traffic too
    for i in range(10):
        n += 1
        records.append(request(n, _at(5) + i, route="billing", tenant="globex", cost_usd=0.01))
    TelemetryStore(sqlite_engine).write(records)
    with sqlite_engine.begin() as conn:
        rated = [
            ("support", False, False, _at(3)),
            ("support", False, False, _at(3)),
            ("support", True, True, _at(3)),
            ("support", True, False, datetime(2026, 10, 2, tzinfo=UTC).timestamp()),  # October
            ("billing", False, False, _at(6)),
        ]
        for route, negative, escalated, at in rated:
            when = datetime.fromtimestamp(at, UTC)
            conn.execute(
                insert(feedback).values(
                    request_id="req_x",
                    tenant="acme" if route == "support" else "globex",
                    route=route,
                    version="1",
                    score=0.0 if negative else 1.0,
                    negative=negative,
                    escalated=escalated,
                    at=when,
                )
            )

    with sqlite_engine.begin() as conn:
        nov_3, dec_2 = datetime(2026, 11, 3, 9, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)
        oct_30 = datetime(2026, 10, 30, tzinfo=UTC)
        for ident, routes, opened, resolved in (
            ("inc_a", ["support"], nov_3, nov_3 + timedelta(hours=2)),
            ("inc_b", ["support", "billing"], oct_30, None),  # still open: in November too
            ("inc_c", ["support"], dec_2, None),  # December's
            ("inc_d", ["support"], oct_30, oct_30 + timedelta(hours=1)),  # October's
        ):
            conn.execute(
                insert(incidents).values(
                    id=ident,
                    scope="",
                    title=f"{ident} | bad",
                    type="vendor_outage",
                    severity=2,
                    customer_impact="high",
                    state="resolved" if resolved else "open",
                    routes=routes,
                    models=[],
                    tenants=[],
                    opened_at=opened,
                    detected_at=opened,
                    resolved_at=resolved,
                )
            )

    report = read_report(sqlite_engine, [_row(d) for d in SLOS], NOV, tenant=None)
    view = report.view()
    assert [r["route"] for r in view["routes"]] == ["billing", "support", None]
    billing, support, no_route = view["routes"]

    avail, fast = support["slos"]
    assert avail["name"] == "avail"
    assert (avail["good"], avail["valid"]) == (36, 40)  # client errors excluded
    assert avail["status"] == "missed"  # 90 % < 99 %
    assert avail["budget"]["requests_spent"] == 4
    assert avail["budget"]["requests_allowed"] == pytest.approx(0.4)
    assert avail["budget"]["minutes_spent"] == 1  # all 40 fell in one minute
    assert avail["budget"]["minutes_allowed"] == pytest.approx(432.0)
    # latency: 36 answered, of them those at 900 ms (i = 10, 20, 30) are slow
    assert (fast["good"], fast["valid"]) == (33, 40)
    assert fast["status"] == "missed"

    k = support["kpis"]
    assert k["requests"] == 42 and k["successful"] == 36
    assert k["cost_usd"] == pytest.approx(0.04)
    assert k["cost_per_request_usd"] == pytest.approx(0.04 / 42)
    assert k["cost_per_successful_request_usd"] == pytest.approx(0.04 / 36)
    # 3 sessions (s0, s1, s2) across faq and chat, counted once; the client errors had none
    assert (k["session_requests"], k["session_cost_usd"]) == (40, pytest.approx(0.04))
    assert k["sessions"]["estimate"] == pytest.approx(3)
    assert k["cost_per_session_usd"] == pytest.approx(0.04 / 3)
    assert k["csat"] == {
        "rated": 3,
        "positive": 2,
        "share_positive": pytest.approx(2 / 3),
        "escalated": 1,
    }
    by_feature = {f["feature"]: f for f in k["tokens_by_feature"]}
    assert by_feature["chat"]["input_tokens"] == 200 and by_feature["chat"]["output_tokens"] == 400
    assert by_feature["faq"]["input_tokens"] == 200 and by_feature["faq"]["output_tokens"] == 100
    assert by_feature[None]["requests"] == 2  # the client errors carried no feature
    assert k["tokens_by_feature"][0]["feature"] == "chat"  # the most tokens first

    assert billing["slos"][0]["status"] == "met"
    assert billing["kpis"]["requests"] == 10
    assert billing["kpis"]["csat"]["share_positive"] == 1.0
    # the SLO selecting a model, no route: its own section, KPIs of route-less traffic
    assert no_route["slos"][0]["name"] == "by-model"
    assert no_route["kpis"]["requests"] == 0

    # the incidents open at any time in November that name the route, oldest first
    assert [i["id"] for i in support["incidents"]] == ["inc_b", "inc_a"]
    assert support["incidents"][1]["resolved_at"] == "2026-11-03T11:00:00+00:00"
    assert [i["id"] for i in billing["incidents"]] == ["inc_b"]
    assert no_route["incidents"] == [] and INCIDENTS_NOT_RECORDED not in view["notes"]

    # one tenant's KPIs: globex's traffic is not acme's
    scoped = read_report(sqlite_engine, [_row(OTHER, "acme")], NOV, tenant="acme").view()
    (only,) = scoped["routes"]
    assert only["kpis"]["requests"] == 0 and only["kpis"]["csat"]["rated"] == 0

    text = render_markdown(view)
    assert text.startswith("# SLA report 2026-11\n")
    assert "## support" in text and "## billing" in text
    assert "0 met, 2 missed of 2 SLOs." in text
    assert (
        "| avail | availability | 99 % | 90.000 % | missed | 4 of 0.4 (1000.0 %) | 1 of 432.0 |"
        in text
    )
    assert "| CSAT (positive of rated) | 66.7 % (2 of 3; 1 escalated) |" in text
    assert "| cost per session | $0.013333 ($0.01" in text and "3 sessions ±1.62 %" in text
    assert SESSIONS_NOTE in text
    assert "- inc_a (sev 2, vendor_outage, resolved): inc_a \\| bad" in text


def test_markdown_escapes_a_pipe_in_a_name() -> None:
    (piped,) = load_slos(
        "slos:\n  a-b: {route: 'x|y', sli: {kind: availability}, objective: 0.9}\n"
    )
    view = build_report(NOV, [slo_month(piped, "", {}, NOV)], {}, {}, {}).view()
    text = render_markdown(view)
    assert "## x\\|y" in text
    assert "Incidents: none." in text
