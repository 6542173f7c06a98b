"""An eval-score SLO's suite checked at apply (POST /api/slos/apply) through a real gateway,
on SQLite and PostgreSQL: the suite its SLI means (`suite_scope`, else the SLO's tenant's
own suite of that name, else the shared one) must exist and score production answers with
its scorer; each refusal names the file, the SLO and the key, with the request id, and
applies nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from tests.api.support import apply_slos, with_support_route
from tests.evals.online_support import answer
from tests.slo.support import request
from tests.support import (
    ADMIN_KEY,
    GLOBEX_OPERATOR_KEY,
    OPERATOR_KEY,
    GatewayFactory,
    Running,
    auth,
)
from trimtab.evals.online import OnlineScoring
from trimtab.evals.suite_store import SuiteStore
from trimtab.evals.suites import parse_suites
from trimtab.slo.spec import SloDefinition, load_slos
from trimtab.store.tables import audit_log, score_rollups, slos
from trimtab.telemetry.store import TelemetryStore

SUITES = """
evals:
  support-live:
    route: support-answer
    dataset: golden
    scorers:
      - {name: short, kind: length, max: 40}
      - {name: right, kind: contains}
    online: {sample: 1.0, scorers: [short]}
  offline:
    route: support-answer
    dataset: golden
    scorers:
      - {name: short, kind: length, max: 40}
"""
ACME = SUITES.replace("support-live", "acme-live").split("  offline:")[0]


def slo(sli: str, tenant: str = "") -> str:
    where = f", tenant: {tenant}" if tenant else ""
    return f"slos:\n  q: {{route: support-answer{where}, sli: {sli}, objective: 0.9}}\n"


@pytest.fixture
def running(gateway: GatewayFactory, store_url: str) -> Running:
    served = with_support_route(gateway, store_url)
    store = SuiteStore(served.engine)
    store.apply(parse_suites(yaml.safe_load(SUITES), "evals.yaml"), scope="", actor="admin")
    store.apply(parse_suites(yaml.safe_load(ACME), "evals.yaml"), scope="acme", actor="ml@acme")
    return served


def refused(r: httpx.Response) -> str:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_slos"
    message, rid = str(error["message"]).rsplit(" (request id: ", 1)
    assert rid.startswith("req_") and "\n" not in message  # one problem
    return message


def test_the_suite_an_slo_means_must_be_there(running: Running) -> None:
    live = "{kind: eval_score, suite: support-live, scorer: short}"
    mine = "{kind: eval_score, suite: acme-live, scorer: short}"
    # acme's SLO: its own suite, else the shared one; globex has no acme-live
    assert apply_slos(running, slo(live), OPERATOR_KEY).status_code == 200
    assert apply_slos(running, slo(mine), OPERATOR_KEY).status_code == 200
    assert refused(apply_slos(running, slo(mine), GLOBEX_OPERATOR_KEY)) == (
        "slos.yaml: slos.q.sli.suite: unknown suite 'acme-live' (neither tenant 'globex' "
        "nor the shared scope has one of that name)"
    )
    # a shared SLO: the shared suite, unless its selector names a tenant
    assert refused(apply_slos(running, slo(mine), ADMIN_KEY)) == (
        "slos.yaml: slos.q.sli.suite: unknown suite 'acme-live' (no shared suite of that name)"
    )
    assert apply_slos(running, slo(mine, "acme"), ADMIN_KEY).status_code == 200
    # named: `shared` or the tenant's own, and nothing else
    shared = mine.replace("}", ", suite_scope: shared}")
    assert refused(apply_slos(running, slo(shared), OPERATOR_KEY)) == (
        "slos.yaml: slos.q.sli.suite: unknown suite 'acme-live' (no shared suite of that name)"
    )
    own = live.replace("}", ", suite_scope: tenant}")
    assert refused(apply_slos(running, slo(own), OPERATOR_KEY)) == (
        "slos.yaml: slos.q.sli.suite: unknown suite 'support-live' (tenant 'acme' has none "
        "of that name)"
    )
    assert refused(apply_slos(running, slo(own), ADMIN_KEY)) == (
        "slos.yaml: slos.q.sli.suite_scope: 'tenant' is the SLO's tenant's own suite, and "
        "the SLO has no tenant (give it `tenant:`, or `suite_scope: shared`)"
    )
    # the suite must score production answers, with that scorer
    offline = "{kind: eval_score, suite: offline, scorer: short}"
    assert refused(apply_slos(running, slo(offline), ADMIN_KEY)) == (
        "slos.yaml: slos.q.sli.suite: suite 'offline' of the shared scope scores no "
        "production answers (it has no `online:`)"
    )
    right = live.replace("short", "right")
    assert refused(apply_slos(running, slo(right), OPERATOR_KEY)) == (
        "slos.yaml: slos.q.sli.scorer: suite 'support-live' of the shared scope scores "
        "production answers with short, not 'right'"
    )
    with running.engine.connect() as conn:  # acme's q (applied twice) and the admin's q
        assert conn.scalar(select(func.count()).select_from(slos)) == 2


NEW_LIVE = "{kind: eval_score, suite: new-live, scorer: short}"


def test_a_dry_run_takes_the_planned_suites_as_known(running: Running) -> None:
    new = slo(NEW_LIVE)
    assert refused(apply_slos(running, new, OPERATOR_KEY, prune=True, dry_run=True)) == (
        "slos.yaml: slos.q.sli.suite: unknown suite 'new-live' (neither tenant 'acme' nor "
        "the shared scope has one of that name)"
    )
    planned = {"prune": True, "dry_run": True, "planned_suites": ["new-live"]}
    r = apply_slos(running, new, OPERATOR_KEY, **planned)
    assert r.status_code == 200, r.text
    assert [s["status"] for s in r.json()["slos"]] == ["created"]
    # in the caller's scope: the admin's planned suite is a shared one, not acme's own
    acme_own = slo(
        "{kind: eval_score, suite: new-live, scorer: short, suite_scope: tenant}", "acme"
    )
    assert apply_slos(running, slo(NEW_LIVE, "acme"), ADMIN_KEY, **planned).status_code == 200
    assert refused(apply_slos(running, acme_own, ADMIN_KEY, **planned)) == (
        "slos.yaml: slos.q.sli.suite: unknown suite 'new-live' (tenant 'acme' has none of "
        "that name)"
    )
    r = apply_slos(running, new, OPERATOR_KEY, planned_suites=["new-live"])
    assert r.status_code == 400 and r.json()["error"]["param"] == "planned_suites"


SHARED_LIVE = "{kind: eval_score, suite: support-live, scorer: short}"
ACME_LIVE = "{kind: eval_score, suite: acme-live, scorer: short}"
AVAILABILITY = "{kind: availability}"


def pinned(sli: str, scope: str, tenant: str = "acme") -> SloDefinition:
    """The SLO `slo(sli, tenant)` with `suite_scope: scope`: what the apply stores."""
    (d,) = load_slos(slo(sli.replace("}", f", suite_scope: {scope}}}"), tenant))
    return d


def stored(running: Running, key: str = OPERATOR_KEY) -> dict[str, Any]:
    """GET /api/slos/q as `key` sees it."""
    r = httpx.get(f"{running.url}/api/slos/q", headers=auth(key))
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_the_apply_stores_the_suite_scope_it_resolved(running: Running) -> None:
    # acme's unscoped SLO of its own acme-live: stored as the tenant's, in its digest
    first = apply_slos(running, slo(ACME_LIVE), OPERATOR_KEY)
    assert first.status_code == 200, first.text
    want = pinned(ACME_LIVE, "tenant")
    assert [(s["status"], s["digest"], s["suite_scope"]) for s in first.json()["slos"]] == [
        ("created", want.digest, "tenant")
    ]
    assert stored(running)["definition"] == want.to_json()
    with running.engine.connect() as conn:
        row = conn.execute(select(slos.c.definition, slos.c.digest)).one()
    assert (row.definition["sli"]["suite_scope"], row.digest) == ("tenant", want.digest)
    # the same file again, nothing else changed: the same pin, unchanged
    again = apply_slos(running, slo(ACME_LIVE), OPERATOR_KEY)
    assert [(s["status"], s["digest"], s["suite_scope"]) for s in again.json()["slos"]] == [
        ("unchanged", want.digest, "tenant")
    ]
    # the shared suite (acme has no support-live): pinned `shared`
    (shared,) = apply_slos(running, slo(SHARED_LIVE), OPERATOR_KEY).json()["slos"]
    assert (shared["digest"], shared["suite_scope"]) == (
        pinned(SHARED_LIVE, "shared").digest,
        "shared",
    )
    assert stored(running)["definition"]["sli"]["suite_scope"] == "shared"
    # an SLO without a tenant can mean only the shared suite: stored as written, and so
    # named; an SLO whose SLI names no suite reads none
    text = slo(SHARED_LIVE, "") + slo(AVAILABILITY, "").replace("slos:\n  q:", "  up:")
    admins = apply_slos(running, text, ADMIN_KEY)
    unscoped, up = load_slos(text)
    assert [(s["slo"], s["digest"], s["suite_scope"]) for s in admins.json()["slos"]] == [
        ("q", unscoped.digest, "shared"),
        ("up", up.digest, None),
    ]
    assert "suite_scope" not in stored(running, ADMIN_KEY)["definition"]["sli"]


def test_an_explicit_suite_scope_is_stored_as_written(running: Running) -> None:
    mine = parse_suites(yaml.safe_load(SUITES.split("  offline:")[0]), "evals.yaml")
    SuiteStore(running.engine).apply(mine, scope="acme", actor="ml@acme")  # acme's support-live
    text = "slos:\n" + "".join(
        f"  {name}: {{route: support-answer, sli: {sli}, objective: 0.9}}\n"
        for name, sli in (
            ("unscoped", SHARED_LIVE),
            ("shared", SHARED_LIVE.replace("}", ", suite_scope: shared}")),
            ("own", ACME_LIVE.replace("}", ", suite_scope: tenant}")),
        )
    )
    r = apply_slos(running, text, OPERATOR_KEY)
    assert r.status_code == 200, r.text
    with running.engine.connect() as conn:
        rows = conn.execute(select(slos.c.name, slos.c.definition)).all()
    # only the unscoped SLO is pinned (to acme's own, which it now resolves to)
    assert {n: d["sli"]["suite_scope"] for n, d in rows} == {
        "unscoped": "tenant",
        "shared": "shared",
        "own": "tenant",
    }


def test_a_dry_run_reports_the_pin_it_would_store(running: Running) -> None:
    def planned(text: str, key: str, **extra: Any) -> tuple[str, str | None]:
        """The dry run's digest of the SLO and the suite scope it names."""
        r = apply_slos(running, text, key, dry_run=True, **extra)
        assert r.status_code == 200, r.text
        (answer,) = r.json()["slos"]
        return str(answer["digest"]), answer["suite_scope"]

    # what the apply then stores
    dry = planned(slo(SHARED_LIVE), OPERATOR_KEY)
    assert dry == (pinned(SHARED_LIVE, "shared").digest, "shared")
    (applied,) = apply_slos(running, slo(SHARED_LIVE), OPERATOR_KEY).json()["slos"]
    assert (applied["digest"], applied["suite_scope"]) == dry
    # a planned suite is the caller's: acme's own comes before the shared support-live
    suites = {"planned_suites": ["support-live", "new-live"]}
    assert planned(slo(SHARED_LIVE), OPERATOR_KEY, **suites) == (
        pinned(SHARED_LIVE, "tenant").digest,
        "tenant",
    )
    assert planned(slo(NEW_LIVE), OPERATOR_KEY, **suites) == (
        pinned(NEW_LIVE, "tenant").digest,
        "tenant",
    )
    # an admin's planned suite is a shared one; acme's own acme-live still comes first
    assert planned(slo(NEW_LIVE, "acme"), ADMIN_KEY, **suites) == (
        pinned(NEW_LIVE, "shared").digest,
        "shared",
    )
    acme_live = {"planned_suites": ["acme-live"]}
    assert planned(slo(ACME_LIVE, "acme"), ADMIN_KEY, **acme_live) == (
        pinned(ACME_LIVE, "tenant").digest,
        "tenant",
    )
    # without a tenant, the planned shared suite; an SLI naming no suite reads none
    (unscoped,) = load_slos(slo(NEW_LIVE))
    assert planned(slo(NEW_LIVE), ADMIN_KEY, **suites) == (unscoped.digest, "shared")
    (up,) = load_slos(slo(AVAILABILITY, "acme"))
    assert planned(slo(AVAILABILITY), OPERATOR_KEY) == (up.digest, None)


def _score(scoring: OnlineScoring, now: datetime) -> None:
    """Every applied suite with `online:` scores the answers recorded, by the real scorer."""
    asyncio.run(scoring.cycle(now))


def test_a_tenant_suite_applied_later_takes_effect_at_the_next_apply(running: Running) -> None:
    assert apply_slos(running, slo(SHARED_LIVE), OPERATOR_KEY).status_code == 200
    first = stored(running)
    now = datetime.now(UTC)
    TelemetryStore(running.engine).write([
        request(1, now.timestamp() - 30, route="support-answer",
                response_body=answer("Your parcel ships today.")),  # 24 characters
        request(2, now.timestamp() - 25, route="support-answer", response_body=answer("Shipped.")),
    ])  # fmt: skip
    scoring = OnlineScoring(running.engine, since=now - timedelta(minutes=5))
    _score(scoring, now)
    # the shared short (at most 40) passes both
    assert (stored(running)["good"], stored(running)["valid"]) == (2, 2)
    # acme's own support-live, stricter (at most 10), scores the same answers
    strict = SUITES.split("  offline:")[0].replace("max: 40", "max: 10")
    suites = parse_suites(yaml.safe_load(strict), "evals.yaml")
    SuiteStore(running.engine).apply(suites, scope="acme", actor="ml@acme")
    _score(scoring, now)
    with running.engine.connect() as conn:  # acme's suite has its scores now
        assert conn.scalar(
            select(func.count()).select_from(score_rollups).where(score_rollups.c.scope == "acme")
        )
    # no apply: the SLO reads the shared suite still, as stored
    before = stored(running)
    assert before["definition"] == first["definition"]
    assert (before["good"], before["valid"]) == (2, 2)
    # the next apply pins acme's own: the SLO changed, audited, and reads acme's suite
    again = apply_slos(running, slo(SHARED_LIVE), OPERATOR_KEY)
    want = pinned(SHARED_LIVE, "tenant")
    assert [(s["status"], s["digest"]) for s in again.json()["slos"]] == [("updated", want.digest)]
    with running.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.detail).where(audit_log.c.action == "slo.apply")
        ).all()
    assert [(r.detail["status"], r.detail["digest"]) for r in rows] == [
        ("created", pinned(SHARED_LIVE, "shared").digest),
        ("updated", want.digest),
    ]
    after = stored(running)
    assert after["definition"]["sli"]["suite_scope"] == "tenant"
    assert (after["good"], after["valid"]) == (1, 2)  # only "Shipped." within 10
