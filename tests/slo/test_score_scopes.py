"""The eval-score SLI of a suite named by scope and name (migration 0019), on SQLite and
PostgreSQL: a shared suite and acme's own suite of the same name, each with a scorer
`short`, both score acme's requests through the real online scorer; each SLO counts only
the suite it means — an SLO of acme its own suite (or the shared one with `suite_scope:
shared`), an SLO of globex (which has none) the shared one, a shared SLO the shared one —
through the evaluator's reads, the report's series and the stored form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from tests.evals.online_support import SUITE, answer, suites, write
from tests.slo.support import request
from trimtab.evals.online import OnlineScoring
from trimtab.evals.suite_store import SuiteStore
from trimtab.slo.burn import Counts
from trimtab.slo.evaluator import read_statuses
from trimtab.slo.kinds import minute_series
from trimtab.slo.score_reads import suite_scope
from trimtab.slo.spec import SlosError, load_slos, parse_slos

NOW = datetime.now(UTC).replace(microsecond=0)
# acme's own suite named as the shared one, its `short` stricter (at most 10 characters)
ACME_LIVE = SUITE.replace("max: 40", "max: 10")
SLOS = """
slos:
  shared:
    route: support
    sli: {kind: eval_score, suite: support-live, scorer: short}
    objective: 0.5
  acme-own:
    route: support
    tenant: acme
    sli: {kind: eval_score, suite: support-live, scorer: short}
    objective: 0.5
  acme-own-named:
    route: support
    tenant: acme
    sli: {kind: eval_score, suite: support-live, scorer: short, suite_scope: tenant}
    objective: 0.5
  acme-shared:
    route: support
    tenant: acme
    sli: {kind: eval_score, suite: support-live, scorer: short, suite_scope: shared}
    objective: 0.5
  globex:
    route: support
    tenant: globex
    sli: {kind: eval_score, suite: support-live, scorer: short}
    objective: 0.5
  globex-own:
    route: support
    tenant: globex
    sli: {kind: eval_score, suite: support-live, scorer: short, suite_scope: tenant}
    objective: 0.5
"""


async def test_each_slo_counts_only_the_suite_it_means(engine: Engine) -> None:
    store = SuiteStore(engine)
    store.apply(suites(), scope="", actor="ml@acme")
    store.apply(suites(ACME_LIVE), scope="acme", actor="lead@acme")
    t = NOW.timestamp()
    write(engine, [
        request(1, t - 30, response_body=answer("Your parcel ships today.")),  # 24 chars
        request(2, t - 25, response_body=answer("Shipped.")),  # 8
        request(3, t - 20, tenant="globex", response_body=answer("Done.")),
        request(4, t - 15, tenant="globex", response_body=answer("x" * 50)),
    ])  # fmt: skip
    await OnlineScoring(engine, since=NOW - timedelta(minutes=5)).cycle(NOW)

    definitions = load_slos(SLOS)
    got = {
        st.slo.name: st.counts
        for st in read_statuses(engine, definitions, NOW + timedelta(minutes=1))
    }
    assert got == {
        # the shared suite scored all four: 1, 2, 3 within 40 characters, 4 not
        "shared": Counts(good=3, valid=4),
        # acme's own suite (at most 10): request 2 only; acme's two requests once each
        "acme-own": Counts(good=1, valid=2),
        "acme-own-named": Counts(good=1, valid=2),
        # the shared suite's scores of acme's requests: both within 40
        "acme-shared": Counts(good=2, valid=2),
        # globex has no suite of its own: the shared one's of its requests
        "globex": Counts(good=1, valid=2),
        "globex-own": Counts(good=0, valid=0),
    }
    # the report's and the console's per-minute series count the same suites
    by_name = {d.name: d for d in definitions}
    with engine.connect() as conn:
        for name in ("acme-own", "acme-shared", "globex-own"):
            d = by_name[name]
            series = minute_series(conn, d.selector, d.sli, NOW - timedelta(minutes=5), NOW)
            assert sum(series.values(), Counts(0, 0)) == got[name], name
        assert suite_scope(conn, "support-live", None, "acme") == "acme"
        assert suite_scope(conn, "support-live", None, "globex") == ""
        assert suite_scope(conn, "support-live", None, None) == ""
        assert suite_scope(conn, "support-live", "tenant", None) is None
    # the stored form keeps the scope asked for; without one, it stays as it was
    named = by_name["acme-shared"]
    assert named.to_json()["sli"]["suite_scope"] == "shared"
    assert "suite_scope" not in by_name["acme-own"].to_json()["sli"]
    (again,) = parse_slos({"slos": {named.name: named.to_json()}})
    assert again == named
    assert named.sli.describe() == "eval_score support-live/short passed (shared suite)"


def test_the_spec_refuses_another_suite_scope() -> None:
    text = SLOS.replace("suite_scope: shared", "suite_scope: acme")
    try:
        load_slos(text, "f.yaml")
    except SlosError as exc:
        assert any(
            p.startswith("f.yaml: slos.acme-shared.sli.suite_scope: Input should be 'shared'")
            for p in exc.problems
        ), exc.problems
    else:
        raise AssertionError("suite_scope: acme was accepted")
