"""Budget crossings on the alert model: each crossing recorded for the first time is a
signal; one alert per budget and period, a ticket at 80 %, escalated to a page at 100 %,
resolved when the period ends. The budget_events rows and legacy webhooks stay as they were
(tests/alerts/test_webhooks.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from trimtab.alerts.dispatcher import AlertDispatcher, BudgetAlert
from trimtab.alerts.events import BudgetEvent, insert_event, list_events
from trimtab.alerts.service import AlertService
from trimtab.alerts.signal import Signal
from trimtab.alerts.webhooks import WebhookMetrics
from trimtab.config import AlertsConfig

START = datetime(2026, 12, 1, tzinfo=UTC)
END = datetime(2027, 1, 1, tzinfo=UTC)


def crossing(threshold: float, spent: float) -> BudgetAlert:
    at = datetime(2026, 12, 2, 6, tzinfo=UTC)
    return BudgetAlert(
        BudgetEvent(at, "tenant:acme", "month", START, threshold, spent, 10.0, "block"), END
    )


async def test_crossings_become_one_escalating_alert(sqlite_engine: Engine) -> None:
    insert_event(sqlite_engine, crossing(1.1, 11.5).event)  # recorded before: no signal
    seen: list[Signal] = []
    dispatcher = AlertDispatcher(
        sqlite_engine, [], WebhookMetrics(CollectorRegistry()), signals=seen.append
    )
    dispatcher.start()
    for c in (crossing(0.8, 8.5), crossing(1.0, 10.2), crossing(1.1, 11.5)):
        dispatcher.submit(c)
    await dispatcher.close()
    assert len(list_events(sqlite_engine, None, None, 10)) == 3
    assert [(s.severity, s.details["threshold"]) for s in seen] == [("ticket", 0.8), ("page", 1.0)]
    first = seen[0]
    assert first.source == "budget" and first.firing
    assert first.dedup_key == "budget/tenant:acme/month/2026-12-01T00:00:00+00:00"
    assert {s.dedup_key for s in seen} == {first.dedup_key}
    assert first.labels == {"budget": "tenant:acme", "period": "month", "tenant": "acme"}
    assert first.summary == "budget tenant:acme (month, $10.00) crossed 80%: $8.50 spent"
    assert first.expires_at == END

    clock = [datetime(2026, 12, 2, 6, tzinfo=UTC)]
    alerts = AlertService(sqlite_engine, AlertsConfig(), clock=lambda: clock[0])
    changes = alerts.observe(seen)
    assert [(c.change, c.alert.severity) for c in changes] == [
        ("opened", "ticket"),
        ("escalated", "page"),
    ]
    clock[0] = END + timedelta(seconds=1)
    (resolved,) = alerts.resolve_expired()
    assert resolved.alert.state == "resolved"


def test_the_page_threshold_is_configurable() -> None:
    assert crossing(1.0, 10.0).signal(page_at=1.1).severity == "ticket"
    assert crossing(1.1, 11.0).signal(page_at=1.1).severity == "page"
    assert crossing(0.8, 8.0).signal(page_at=0.5).severity == "page"
