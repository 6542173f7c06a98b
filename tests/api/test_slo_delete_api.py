"""Deleting SLOs through a real gateway, on SQLite and PostgreSQL: DELETE /api/slos/{name}
and an apply with `prune` (and its dry run) — audited, a tenant's scope kept apart, the
deleted SLO's paging alerts resolved with the reason and never reopened by the evaluator,
its gauges gone."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.api.support import apply_slos, with_support_route
from tests.support import (
    ADMIN_KEY,
    GLOBEX_OPERATOR_KEY,
    OPERATOR_KEY,
    ROUTE_KEYS,
    ROUTES,
    VIEWER_KEY,
    GatewayFactory,
    Running,
    auth,
)
from trimtab.alerts.model import Alert
from trimtab.alerts.outbox_store import outbox_rows
from trimtab.alerts.store import list_alerts
from trimtab.client import Client
from trimtab.slo.gauges import SloGauges
from trimtab.store.tables import audit_log, slos
from trimtab.telemetry.record import RequestRecord
from trimtab.telemetry.store import TelemetryStore

TWO = """
slos:
  faq-availability:
    route: support-answer
    sli: {kind: availability}
    objective: 0.99
    alerting: {min_events: 5}
  faq-latency:
    route: support-answer
    sli: {kind: latency, threshold_ms: 1000}
    objective: 0.99
    alerting: {min_events: 5}
"""
ONE = TWO[: TWO.index("  faq-latency:")]


@pytest.fixture
def running(gateway: GatewayFactory, store_url: str) -> Running:
    return with_support_route(gateway, store_url)


def apply(running: Running, text: str, key: str = ADMIN_KEY, **extra: Any) -> httpx.Response:
    return apply_slos(running, text, key, **extra)


def delete(running: Running, name: str, key: str = ADMIN_KEY, **params: str) -> httpx.Response:
    return httpx.delete(f"{running.url}/api/slos/{name}", params=params, headers=auth(key))


def stored(running: Running) -> list[tuple[str, str]]:
    with running.engine.connect() as conn:
        return [
            (s, n)
            for s, n in conn.execute(
                select(slos.c.scope, slos.c.name).order_by(slos.c.name, slos.c.scope)
            )
        ]


def deletions(running: Running) -> list[dict[str, Any]]:
    with running.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log).where(audit_log.c.action == "slo.delete").order_by(audit_log.c.id)
        ).mappings()
        return [dict(r) for r in rows]


def test_delete_is_audited_and_answers_404_after(running: Running) -> None:
    assert apply(running, TWO).status_code == 200
    gone = delete(running, "faq-latency")
    assert gone.status_code == 200, gone.text
    body = gone.json()
    assert (body["slo"], body["tenant"], body["alerts_resolved"]) == ("faq-latency", None, [])
    assert stored(running) == [("", "faq-availability")]
    (row,) = deletions(running)
    assert (row["target"], row["detail"]["slo_tenant"]) == ("faq-latency", None)
    assert row["detail"]["by"] == "delete" and row["detail"]["digest"] == body["digest"]
    assert row["detail"]["definition"]["sli"]["threshold_ms"] == 1000  # to put it back
    assert row["request_id"] == gone.headers["x-trimtab-request-id"]

    again = delete(running, "faq-latency")
    assert again.status_code == 404
    error = again.json()["error"]
    assert error["code"] == "slo_not_found"
    assert "no SLO named 'faq-latency' in the shared scope" in error["message"]
    assert error["request_id"] == again.headers["x-trimtab-request-id"]
    assert (
        httpx.get(f"{running.url}/api/slos/faq-latency", headers=auth(VIEWER_KEY)).status_code
        == 404
    )
    assert delete(running, "faq-availability", VIEWER_KEY).status_code == 403
    assert stored(running) == [("", "faq-availability")]


def test_another_tenants_slo_is_not_found(running: Running) -> None:
    assert apply(running, ONE, OPERATOR_KEY).status_code == 200  # acme's own
    assert apply(running, ONE, ADMIN_KEY).status_code == 200  # a shared one, same name
    theirs = delete(running, "faq-availability", GLOBEX_OPERATOR_KEY)
    assert theirs.status_code == 404, theirs.text
    assert "in tenant 'globex'" in theirs.json()["error"]["message"]
    named = delete(running, "faq-availability", GLOBEX_OPERATOR_KEY, tenant="acme")
    assert named.status_code == 403  # naming another tenant, as on every SLO read
    assert stored(running) == [("", "faq-availability"), ("acme", "faq-availability")]
    mine = delete(running, "faq-availability", OPERATOR_KEY)  # acme's, not the shared one
    assert mine.status_code == 200 and mine.json()["tenant"] == "acme"
    assert stored(running) == [("", "faq-availability")]
    assert delete(running, "faq-availability", OPERATOR_KEY, tenant="").status_code == 403
    assert apply(running, ONE, OPERATOR_KEY).status_code == 200
    by_admin = delete(running, "faq-availability", ADMIN_KEY, tenant="acme")
    assert by_admin.status_code == 200 and by_admin.json()["tenant"] == "acme"
    assert [r["detail"]["slo_tenant"] for r in deletions(running)] == ["acme", "acme"]


def test_prune_deletes_what_the_file_no_longer_names(running: Running) -> None:
    assert apply(running, TWO).status_code == 200
    assert apply(running, TWO, OPERATOR_KEY).status_code == 200  # acme's two
    dry = apply(running, ONE, prune=True, dry_run=True)
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] is True
    assert [(s["slo"], s["status"]) for s in dry.json()["slos"]] == [
        ("faq-availability", "unchanged")
    ]
    assert [p["slo"] for p in dry.json()["pruned"]] == ["faq-latency"]
    assert len(stored(running)) == 4 and deletions(running) == []  # nothing changed

    kept = apply(running, ONE)  # without prune: the SLO the file leaves out stays
    assert kept.json()["pruned"] == [] and len(stored(running)) == 4
    pruned = apply(running, ONE, prune=True)
    assert pruned.status_code == 200, pruned.text
    assert [(p["slo"], p["tenant"]) for p in pruned.json()["pruned"]] == [("faq-latency", None)]
    assert stored(running) == [
        ("", "faq-availability"),
        ("acme", "faq-availability"),
        ("acme", "faq-latency"),  # the admin's prune is of the shared scope only
    ]
    (row,) = deletions(running)
    assert row["target"] == "faq-latency" and row["detail"]["by"] == "apply --prune"
    bad = apply(running, ONE, prune="yes")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "prune"
    planned = apply(running, ONE, prune=True, planned_routes=["faq"])
    assert planned.status_code == 400 and planned.json()["error"]["param"] == "planned_routes"
    assert "goes with dry_run" in planned.json()["error"]["message"]


def _failing_traffic(running: Running) -> None:
    """50 requests of acme on the route in the last minutes, half of them failed (502) and
    slow: both SLOs burn at 50x, above every page factor."""
    now = time.time()
    TelemetryStore(running.engine).write(
        [
            RequestRecord(
                id=f"req_del_{i}",
                started_at=now - 30 - i,
                api="openai",
                operation="chat",
                tenant="acme",
                request_model="route:support-answer",
                route="support-answer",
                version="1",
                status_code=502 if i % 2 else 200,
                duration_ms=3000.0 if i % 2 else 100.0,
            )
            for i in range(50)
        ]
    )


def _open(running: Running, prefix: str) -> list[Alert]:
    found = list_alerts(running.engine, states=("firing", "acknowledged"), limit=1000)
    return [a for a in found if a.dedup_key.startswith(prefix)]


def _wait(check: Any, what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_deleted_slos_pages_resolve_and_stay_resolved(
    gateway: GatewayFactory, store_url: str
) -> None:
    running = gateway(
        store=store_url,
        keys=ROUTE_KEYS,
        slo={"evaluate_interval_s": 0.1},
        alerts={
            "sinks": {"hook": {"kind": "webhook", "url": "http://127.0.0.1:9/hook"}},
            "outbox": {"probe_interval_s": 0.1},
        },
    )
    with Client(running.url, api_key=ADMIN_KEY) as client:
        client.apply(ROUTES, "the support route")
    assert apply(running, TWO).status_code == 200
    _failing_traffic(running)
    paged = _wait(lambda: _open(running, "slo_burn/faq-availability/page-"), "the page")
    _wait(lambda: _open(running, "slo_burn/faq-latency/page-"), "the latency page")
    gauges: SloGauges = running.server_app.state.slo_gauges
    asyncio.run(gauges.refresh())  # as the 60 s refresh would: the SLOs' series are shown
    metrics = httpx.get(f"{running.url}/metrics", headers=auth(ADMIN_KEY)).text
    assert 'trimtab_slo_objective{slo="faq-availability",tenant=""}' in metrics

    gone = delete(running, "faq-availability")  # the evaluator is judging every 0.1 s
    assert gone.status_code == 200, gone.text
    resolved = gone.json()["alerts_resolved"]
    assert {a.id for a in paged} <= set(resolved)
    (row,) = deletions(running)
    assert row["detail"]["alerts_resolved"] == resolved
    by_id = {a.id: a for a in list_alerts(running.engine, limit=1000)}
    for alert_id in resolved:
        alert = by_id[alert_id]
        assert alert.state == "resolved"
        assert alert.summary.startswith("the SLO was deleted by ")
        # the sink that heard of the page hears of its end (PagerDuty's resolve)
        events = [r["event"] for r in outbox_rows(running.engine, alert_id)]
        assert events == ["trigger", "resolve"]
    metrics = httpx.get(f"{running.url}/metrics", headers=auth(ADMIN_KEY)).text
    assert 'slo="faq-availability"' not in metrics  # its gauges went with it
    assert 'trimtab_slo_objective{slo="faq-latency",tenant=""}' in metrics

    # a cycle that read the SLO before the deletion may say it once more; the sweep
    # (every probe_interval_s) resolves that too, and then nothing opens again
    time.sleep(1.0)
    _wait(lambda: not _open(running, "slo_burn/faq-availability/"), "no open alert of it")
    time.sleep(0.5)
    assert _open(running, "slo_burn/faq-availability/") == []
    assert _open(running, "slo_burn/faq-latency/page-")  # the other SLO still pages
