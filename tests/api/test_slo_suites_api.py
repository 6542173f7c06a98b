"""An eval-score SLO's suite checked at apply (POST /api/slos/apply) through a real gateway,
on SQLite and PostgreSQL: the suite its SLI means (`suite_scope`, else the SLO's tenant's
own suite of that name, else the shared one) must exist and score production answers with
its scorer; each refusal names the file, the SLO and the key, with the request id, and
applies nothing."""

from __future__ import annotations

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from tests.api.support import apply_slos, with_support_route
from tests.support import ADMIN_KEY, GLOBEX_OPERATOR_KEY, OPERATOR_KEY, GatewayFactory, Running
from trimtab.evals.suite_store import SuiteStore
from trimtab.evals.suites import parse_suites
from trimtab.store.tables import slos

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
