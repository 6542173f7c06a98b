"""Alerts whose condition no longer exists (a deleted SLO's): resolved with a reason in the
caller's transaction, or by the sweep of orphans; the sinks hear of the end. And the labels
of a breaker's alert."""

from __future__ import annotations

from sqlalchemy import Engine

from tests.alerts.support import T0, alerts_config, signal
from trimtab.alerts.outbox_store import outbox_rows
from trimtab.alerts.probes import breaker_labels
from trimtab.alerts.service import AlertService


def _service(engine: Engine) -> AlertService:
    service = AlertService(engine, alerts_config(), clock=lambda: T0)
    service.observe(
        [
            signal("slo_burn/faq/page-1h-5m"),
            signal("slo_burn/faq/page-1h-5m/v2"),  # its candidate's
            signal("slo_burn/faq-latency/page-1h-5m"),  # another SLO, a longer name
            signal("slo_burn/acme:faq/page-1h-5m"),  # tenant acme's SLO of the same name
            signal("breaker/upstream/faq", source="breaker"),
        ]
    )
    return service


def _states(service: AlertService) -> dict[str, tuple[str, str]]:
    return {a.dedup_key: (a.state, a.summary) for a in service.alerts()}


def test_resolve_in_ends_the_alerts_of_one_prefix_with_the_reason(engine: Engine) -> None:
    service = _service(engine)
    with service.transaction() as conn:
        changes = service.resolve_in(conn, "slo_burn", "slo_burn/faq/", "the SLO was deleted")
    assert sorted(c.alert.dedup_key for c in changes) == [
        "slo_burn/faq/page-1h-5m",
        "slo_burn/faq/page-1h-5m/v2",
    ]
    states = _states(service)
    assert states["slo_burn/faq/page-1h-5m"] == ("resolved", "the SLO was deleted")
    assert states["slo_burn/faq-latency/page-1h-5m"][0] == "firing"
    assert states["slo_burn/acme:faq/page-1h-5m"][0] == "firing"
    assert states["breaker/upstream/faq"][0] == "firing"
    for change in changes:  # each sink told of the page is told of its end
        rows = outbox_rows(engine, change.alert.id)
        triggered = sorted(r["sink"] for r in rows if r["event"] == "trigger")
        assert triggered and triggered == sorted(r["sink"] for r in rows if r["event"] == "resolve")
    with service.transaction() as conn:  # nothing left open there
        assert service.resolve_in(conn, "slo_burn", "slo_burn/faq/", "again") == []


def test_a_transaction_that_fails_resolves_nothing(engine: Engine) -> None:
    service = _service(engine)
    try:
        with service.transaction() as conn:
            assert service.resolve_in(conn, "slo_burn", "slo_burn/faq/", "deleted")
            raise RuntimeError("the deletion failed")
    except RuntimeError:
        pass
    assert _states(service)["slo_burn/faq/page-1h-5m"][0] == "firing"
    assert not any(r["event"] == "resolve" for r in outbox_rows(engine))


def test_the_sweep_resolves_the_alerts_of_conditions_gone(engine: Engine) -> None:
    service = _service(engine)
    living = ["slo_burn/faq-latency/", "slo_burn/acme:faq/"]
    changes = service.resolve_orphans("slo_burn", lambda: living, "the SLO no longer exists")
    assert sorted(c.alert.dedup_key for c in changes) == [
        "slo_burn/faq/page-1h-5m",
        "slo_burn/faq/page-1h-5m/v2",
    ]
    states = _states(service)
    assert states["slo_burn/faq/page-1h-5m/v2"] == ("resolved", "the SLO no longer exists")
    assert states["slo_burn/faq-latency/page-1h-5m"][0] == "firing"
    assert states["breaker/upstream/faq"][0] == "firing"  # another source: not its business
    asked: list[int] = []

    def nothing_lives() -> list[str]:
        asked.append(1)
        return []

    assert len(service.resolve_orphans("slo_burn", nothing_lives, "gone")) == 2
    assert service.resolve_orphans("slo_burn", nothing_lives, "gone") == []
    assert asked == [1]  # with no open alert of the source, the store is not asked


def test_a_breakers_labels_name_the_models_it_serves() -> None:
    assert breaker_labels("upstream/mock-1", []) == {"deployment": "upstream/mock-1"}
    assert breaker_labels("upstream/mock-1", ["gpt-mock"]) == {
        "deployment": "upstream/mock-1",
        "models": "gpt-mock",
        "model": "gpt-mock",
    }
    assert breaker_labels("upstream/mock-1", ["b", "a", "b"]) == {
        "deployment": "upstream/mock-1",
        "models": "a,b",
    }
